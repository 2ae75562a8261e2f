"""The gateway: an ASGI application (Starlette) that serves the page and one agent per WebSocket.

::

    def make_agent(session_id: str, identity: object) -> BidiAgent:
        return BidiAgent(model=model, tools=[get_weather], system_prompt="Be brief.",
                         session_manager=FileSessionManager(session_id, storage_dir="sessions"))

    app = create_app(make_agent, GatewaySettings(authenticate=bearer_token_auth(["s3cret"])))

Serve it with Hypercorn's Trio worker (``hypercorn --worker-class trio module:app``) or with
``trio-bidi serve``. Each WebSocket on ``/ws`` is one conversation:

1. The Origin header is checked, then the application's ``authenticate`` hook; a refused
   handshake gets HTTP 403 and no agent is built.
2. The session id comes from ``?session=<id>`` (a reconnecting page sends the one it was
   given) or is made up. A second connection with the same id replaces the first (which
   is closed with code 4001) once the first's agent has stopped, so the history it stored
   is complete.
3. Over ``max_sessions`` the connection is accepted, told ``GatewayBusyError`` and closed
   with code 1013 (try again later).
4. ``agent_factory(session_id, identity)`` builds the agent; ``agent.run`` bridges it
   with [`BidiWebSocketIO`][trio_bidi.server.BidiWebSocketIO] until either side ends.
"""

from __future__ import annotations

import contextlib
import hmac
import inspect
import json
import logging
import os
import re
import secrets
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import attrs
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Lifespan
from starlette.websockets import WebSocket, WebSocketState

from ..agent import BidiAgent
from ..errors import BidiError
from ..events import BidiErrorEvent
from ._io import BidiWebSocketIO
from ._wire import BidiClientDisconnectedError, BidiMessageRefusedError

__all__ = [
    "SUBPROTOCOL",
    "AgentFactory",
    "Authenticator",
    "GatewayBusyError",
    "GatewaySettings",
    "bearer_token_auth",
    "create_app",
]

logger = logging.getLogger(__name__)

SUBPROTOCOL = "trio-bidi"
"""The WebSocket subprotocol the page offers (the server selects it when offered)."""

STATIC_DIR = Path(__file__).parent / "static"

AgentFactory: TypeAlias = Callable[[str, Any], "BidiAgent | Awaitable[BidiAgent]"]
"""``factory(session_id, identity)`` returns the agent for one conversation."""

Authenticator: TypeAlias = Callable[[WebSocket], Any]
"""``authenticate(websocket)`` returns who connects (an identity), or None/False to refuse.

It may be a coroutine function. It sees the handshake only (headers, cookies, query,
``websocket.scope["subprotocols"]``); the WebSocket is not accepted yet.
"""

_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_STOP_DEADLINE_S = 10.0  # how long a replaced session may take to stop


def str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    """Any iterable of strings as a tuple."""
    return tuple(values)


def optional_tuple(values: Iterable[str] | None) -> tuple[str, ...] | None:
    """``None`` stays None; any other iterable of strings becomes a tuple."""
    return None if values is None else tuple(values)


class GatewayBusyError(BidiError):
    """The worker holds its maximum number of sessions; try again later (close code 1013)."""


@attrs.frozen
class GatewaySettings:
    """Who may connect and how much they may send.

    Attributes:
        authenticate: The auth hook (see `Authenticator`); None lets everyone in.
        allowed_origins: Origins allowed to open the WebSocket (``"https://app.example"``);
            None allows only the page's own origin (the Origin matches the Host header);
            ``("*",)`` allows any.
        allow_missing_origin: Accept clients that send no Origin (not a browser).
        max_sessions: Conversations at once in this worker.
        max_message_bytes: The largest message accepted from a page.
        max_messages_per_s: A page's average message rate (audio frames included).
        burst: Messages a page may send at once above the average rate.
        binary_audio: Send model audio as binary frames unless the page asks
            ``?audio=base64``.
        serve_page: Serve the bundled web page at ``/``.
        websocket_path: Where the WebSocket endpoint is.
        session_info: Extra JSON fields for the page's first message (``gateway_session``).
    """

    authenticate: Authenticator | None = None
    allowed_origins: tuple[str, ...] | None = attrs.field(default=None, converter=optional_tuple)
    allow_missing_origin: bool = True
    max_sessions: int = 100
    max_message_bytes: int = 256 * 1024
    max_messages_per_s: float = 100.0
    burst: float = 200.0
    binary_audio: bool = True
    serve_page: bool = True
    websocket_path: str = "/ws"
    session_info: Mapping[str, Any] = attrs.field(factory=dict)


def bearer_token_auth(tokens: Mapping[str, str] | Collection[str]) -> Authenticator:
    """An auth hook that accepts connections carrying one of ``tokens``.

    The token may come as a subprotocol ``bearer.<token>`` (what a browser page can send:
    ``new WebSocket(url, ["trio-bidi", "bearer." + token])``), as an
    ``Authorization: Bearer <token>`` header, or as the cookie ``trio_bidi_token``.
    Tokens are compared in constant time.

    Args:
        tokens: The accepted tokens, or a mapping of token -> identity.

    Returns:
        The hook: it returns the identity (the token's mapping value, else ``"user"``) or None.
    """
    table = dict(tokens) if isinstance(tokens, Mapping) else {t: "user" for t in tokens}
    if not table or not all(isinstance(t, str) and t for t in table):
        raise ValueError("bearer_token_auth needs at least one non-empty token")
    candidates = [(t.encode(), identity) for t, identity in table.items()]

    def authenticate(websocket: WebSocket) -> Any:
        offered: list[str] = []
        for protocol in websocket.scope.get("subprotocols") or ():
            if protocol.startswith("bearer."):
                offered.append(protocol.removeprefix("bearer."))
        header = websocket.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            offered.append(header[7:].strip())
        cookie = websocket.cookies.get("trio_bidi_token")
        if cookie:
            offered.append(cookie)
        for token in offered:
            given = token.encode()
            for expected, identity in candidates:
                if hmac.compare_digest(given, expected):
                    return identity
        return None

    return authenticate


@attrs.define(eq=False)
class _Session:
    session_id: str
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    done: trio.Event = attrs.field(factory=trio.Event)
    replaced: bool = False


class _Gateway:
    """The per-worker state: live sessions and counters."""

    def __init__(self, factory: AgentFactory, settings: GatewaySettings) -> None:
        self.factory = factory
        self.settings = settings
        self.sessions: dict[str, _Session] = {}
        self.refused_handshakes = 0
        self.busy_refusals = 0
        self.conversations = 0

    # ------------------------------------------------------------------ the handshake

    def _origin_ok(self, websocket: WebSocket) -> bool:
        origin = websocket.headers.get("origin")
        if origin is None:
            return self.settings.allow_missing_origin
        allowed = self.settings.allowed_origins
        if allowed is not None:
            return "*" in allowed or origin.rstrip("/") in {o.rstrip("/") for o in allowed}
        host = websocket.headers.get("host", "")
        return bool(host) and urlsplit(origin).netloc.lower() == host.lower()

    async def _identity(self, websocket: WebSocket) -> tuple[bool, Any]:
        hook = self.settings.authenticate
        if hook is None:
            await trio.lowlevel.checkpoint()
            return True, None
        identity = hook(websocket)
        if inspect.isawaitable(identity):
            identity = await identity
        else:
            await trio.lowlevel.checkpoint()
        return identity is not None and identity is not False, identity

    async def handle(self, websocket: WebSocket) -> None:
        client = websocket.client
        peer = f"{client.host}:{client.port}" if client else "?"
        if not self._origin_ok(websocket):
            self.refused_handshakes += 1
            logger.info(
                "peer=<%s>, origin=<%s> | WebSocket refused: origin not allowed",
                peer,
                websocket.headers.get("origin"),
            )
            await websocket.close(code=1008)
            return
        allowed, identity = await self._identity(websocket)
        if not allowed:
            self.refused_handshakes += 1
            logger.info("peer=<%s> | WebSocket refused by the auth hook", peer)
            await websocket.close(code=1008)
            return
        requested = websocket.query_params.get("session", "")
        session_id = requested if _SESSION_ID.fullmatch(requested) else secrets.token_urlsafe(16)
        offered = websocket.scope.get("subprotocols") or ()
        await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        previous = self.sessions.get(session_id)
        if previous is None and len(self.sessions) >= self.settings.max_sessions:
            self.busy_refusals += 1
            await _send_error_and_close(
                websocket,
                GatewayBusyError(
                    f"this worker holds its maximum of {self.settings.max_sessions} sessions; "
                    "try again later"
                ),
                1013,
            )
            return
        if previous is not None:
            logger.info(
                "session_id=<%s> | a new connection replaces the session's old one", session_id
            )
            previous.replaced = True
            previous.scope.cancel()
            with trio.move_on_after(_STOP_DEADLINE_S):
                await previous.done.wait()
        session = _Session(session_id)
        self.sessions[session_id] = session
        try:
            with session.scope:
                await self._converse(websocket, session, identity)
        finally:
            if self.sessions.get(session_id) is session:
                del self.sessions[session_id]
            session.done.set()
            if session.replaced:
                await _close(websocket, 4001, "replaced by a newer connection")

    async def _converse(self, websocket: WebSocket, session: _Session, identity: Any) -> None:
        try:
            made = self.factory(session.session_id, identity)
            agent = await made if inspect.isawaitable(made) else made
            if not isinstance(agent, BidiAgent):
                raise TypeError(
                    f"the agent factory returned {type(agent).__name__}, not a BidiAgent"
                )
        except Exception as exc:
            logger.exception("session_id=<%s> | the agent factory failed", session.session_id)
            await _send_error_and_close(
                websocket, BidiError(f"the agent could not be built: {exc}"), 1011
            )
            return
        settings = self.settings
        io = BidiWebSocketIO(
            websocket,
            session_id=session.session_id,
            binary_audio=binary_default(websocket, settings.binary_audio),
            max_message_bytes=settings.max_message_bytes,
            max_messages_per_s=settings.max_messages_per_s,
            burst=settings.burst,
            session_info=settings.session_info,
        )
        self.conversations += 1
        logger.info("session_id=<%s> | conversation starts", session.session_id)
        code, failure = 1000, None
        # The page leaving may coincide with a cancellation (a replaced session, the
        # server stopping): handle our errors and let Trio's own through.
        try:
            await agent.run(inputs=[io.input()], outputs=[io.output()])
        except* BidiClientDisconnectedError:
            logger.info("session_id=<%s> | the page went away", session.session_id)
            code = 0
        except* BidiMessageRefusedError as group:
            logger.info("session_id=<%s>, error=<%s> | closing", session.session_id, group)
            code = 1008
        except* Exception as group:
            failure = group.exceptions[0] if len(group.exceptions) == 1 else group
            logger.warning(
                "session_id=<%s>, error=<%s> | the conversation failed",
                session.session_id,
                failure,
                exc_info=failure,
            )
        if failure is not None:
            await _send_error_and_close(websocket, failure, 1011)
        elif code:
            await _close(websocket, code, "conversation ended" if code == 1000 else "policy")

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "sessions": len(self.sessions),
            "max_sessions": self.settings.max_sessions,
            "conversations": self.conversations,
            "refused_handshakes": self.refused_handshakes,
            "busy_refusals": self.busy_refusals,
            "pid": os.getpid(),
        }


def binary_default(websocket: WebSocket, default: bool) -> bool:
    """Whether to send audio as binary frames: ``?audio=binary|base64``, else ``default``."""
    audio = websocket.query_params.get("audio")
    return default if audio not in ("binary", "base64") else audio == "binary"


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, OSError):
            await websocket.close(code=code, reason=reason)
    else:
        await trio.lowlevel.checkpoint()


async def _send_error_and_close(websocket: WebSocket, error: BaseException, code: int) -> None:
    if websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, OSError):
            await websocket.send_text(json.dumps(BidiErrorEvent(error).to_dict()))
    await _close(websocket, code, type(error).__name__)


def create_app(
    agent_factory: AgentFactory,
    settings: GatewaySettings | None = None,
    *,
    lifespan: Lifespan[Starlette] | None = None,
    routes: Sequence[Any] = (),
) -> Starlette:
    """Build the gateway's ASGI application.

    Args:
        agent_factory: ``agent_factory(session_id, identity)`` returns a new (not started)
            [`BidiAgent`][trio_bidi.BidiAgent] for one conversation; it may be async. Give the
            agent a session manager keyed by ``session_id`` to keep conversations across
            reconnections.
        settings: Auth, origins and limits (default: `GatewaySettings`).
        lifespan: A Starlette lifespan (start shared resources here).
        routes: More routes, placed before the page.

    Returns:
        The application: the WebSocket at ``settings.websocket_path``, ``/healthz``
        (JSON counters) and, with ``serve_page``, the page at ``/``.
    """
    settings = settings or GatewaySettings()
    gateway = _Gateway(agent_factory, settings)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(gateway.health())

    app_routes: list[Any] = [
        WebSocketRoute(settings.websocket_path, gateway.handle),
        Route("/healthz", health),
        *routes,
    ]
    if settings.serve_page:
        app_routes.append(Mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="page"))
    app = Starlette(routes=app_routes, lifespan=lifespan)
    app.state.gateway = gateway
    return app
