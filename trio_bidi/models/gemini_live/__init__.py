"""The Gemini Live provider: Google's Live API over a raw WebSocket.

Three pieces, as every provider: `_wire` (pure JSON codec), `_protocol`
(sans-IO state: server messages to events, input events to client messages) and
`_model` (the Trio connection). `_config` resolves the configuration.
"""

from ._model import BidiGeminiLiveModel as BidiGeminiLiveModel
from ._model import GeminiLiveConnection as GeminiLiveConnection
from ._protocol import GeminiLiveProtocol as GeminiLiveProtocol

__all__ = ["BidiGeminiLiveModel", "GeminiLiveConnection", "GeminiLiveProtocol"]
