"""The Amazon Nova Sonic provider (Bedrock's bidirectional stream).

Pieces: :mod:`._wire` (Nova event builders and the payload codec), :mod:`._protocol`
(the sans-IO session state machine), :mod:`._model` (the Trio transport:
:class:`BidiNovaSonicModel` and its connection), plus the transport layers it stands on:
:mod:`._eventstream` (AWS event-stream framing), :mod:`._sigv4` (request and chunk
signatures) and :mod:`._http2` (an ``h2`` client on Trio's TLS).
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
