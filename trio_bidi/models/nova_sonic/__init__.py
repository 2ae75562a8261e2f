"""The Amazon Nova Sonic provider (Bedrock's bidirectional stream).

Pieces: `_wire` (Nova event builders and the payload codec), `_protocol`
(the sans-IO session state machine), `_model` (the Trio transport:
[`BidiNovaSonicModel`][trio_bidi.models.nova_sonic.BidiNovaSonicModel] and its connection), plus the
transport layers it stands on: `_eventstream` (AWS event-stream framing), `_sigv4` (request and
chunk signatures) and `_http2` (an ``h2`` client on Trio's TLS).
"""

from ._config import ClientSettings as ClientSettings
from ._model import BidiNovaSonicModel as BidiNovaSonicModel
from ._model import NovaSonicConnection as NovaSonicConnection
from ._protocol import NovaSonicProtocol as NovaSonicProtocol

__all__ = [
    "BidiNovaSonicModel",
    "ClientSettings",
    "NovaSonicConnection",
    "NovaSonicProtocol",
]
