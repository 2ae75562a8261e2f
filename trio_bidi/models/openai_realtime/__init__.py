"""The OpenAI Realtime provider (GA API).

Three pieces: :mod:`._wire` (pure JSON codec and client message builders),
:mod:`._protocol` (the sans-IO session state machine) and :mod:`._model` (the Trio
transport: :class:`BidiOpenAIRealtimeModel` and its connection).
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
