"""The OpenAI Realtime provider (GA API).

Three pieces: `._wire` (pure JSON codec and client message builders),
`._protocol` (the sans-IO session state machine) and `._model` (the Trio
transport: `BidiOpenAIRealtimeModel` and its connection).
"""

from ._config import ClientSettings as ClientSettings
from ._model import BidiOpenAIRealtimeModel as BidiOpenAIRealtimeModel
from ._model import OpenAIRealtimeConnection as OpenAIRealtimeConnection
from ._protocol import OpenAIRealtimeProtocol as OpenAIRealtimeProtocol

__all__ = [
    "BidiOpenAIRealtimeModel",
    "ClientSettings",
    "OpenAIRealtimeConnection",
    "OpenAIRealtimeProtocol",
]
