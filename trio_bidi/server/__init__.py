"""Voice in the browser: a WebSocket gateway (ASGI, Starlette on Hypercorn's Trio worker).

Install with ``pip install 'trio-bidi[server]'``. `create_app` builds the
application (the page at ``/``, one agent per WebSocket at ``/ws``);
`BidiWebSocketIO` bridges one WebSocket with an agent in any Starlette app;
``trio-bidi serve`` runs it. See ``docs/serving.md``.
"""

from ._app import SUBPROTOCOL as SUBPROTOCOL
from ._app import AgentFactory as AgentFactory
from ._app import Authenticator as Authenticator
from ._app import GatewayBusyError as GatewayBusyError
from ._app import GatewaySettings as GatewaySettings
from ._app import bearer_token_auth as bearer_token_auth
from ._app import create_app as create_app
from ._io import BidiWebSocketInput as BidiWebSocketInput
from ._io import BidiWebSocketIO as BidiWebSocketIO
from ._io import BidiWebSocketOutput as BidiWebSocketOutput
from ._io import WebSocketIOStatistics as WebSocketIOStatistics
from ._serve import ServeSettings as ServeSettings
from ._serve import build_app as build_app
from ._serve import hypercorn_config as hypercorn_config
from ._serve import run_workers as run_workers
from ._serve import serve as serve
from ._wire import AudioFormat as AudioFormat
from ._wire import BidiClientDisconnectedError as BidiClientDisconnectedError
from ._wire import BidiMessageRefusedError as BidiMessageRefusedError
from ._wire import BidiMessageTooLargeError as BidiMessageTooLargeError
from ._wire import BidiRateLimitError as BidiRateLimitError

__all__ = [
    "SUBPROTOCOL",
    "AgentFactory",
    "AudioFormat",
    "Authenticator",
    "BidiClientDisconnectedError",
    "BidiMessageRefusedError",
    "BidiMessageTooLargeError",
    "BidiRateLimitError",
    "BidiWebSocketIO",
    "BidiWebSocketInput",
    "BidiWebSocketOutput",
    "GatewayBusyError",
    "GatewaySettings",
    "ServeSettings",
    "WebSocketIOStatistics",
    "bearer_token_auth",
    "build_app",
    "create_app",
    "hypercorn_config",
    "run_workers",
    "serve",
]
