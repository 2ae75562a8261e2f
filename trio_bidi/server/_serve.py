"""Serving the gateway with Hypercorn's Trio worker: in this process, or in several workers.

`build_app` makes the application ``trio-bidi serve`` runs (a provider from the
environment, or the built-in OpenAI emulator); `serve` runs an application in the
current Trio run; `run_workers` runs N worker processes that share one listening
socket, restarting a worker that dies (Hypercorn's own multi-worker runner stops them
all instead), so a crashed worker costs its own conversations only; their pages reconnect
to another worker and, with a shared session store, go on where they were.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import IO, Any, cast

import attrs
import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import check_multiprocess_shutdown_event, wrap_app
from starlette.applications import Starlette

from ..agent import BidiAgent
from ..errors import BidiConfigurationError
from ._app import GatewaySettings, bearer_token_auth, create_app, optional_tuple, str_tuple

__all__ = [
    "ServeSettings",
    "build_app",
    "hypercorn_config",
    "run_workers",
    "serve",
]

logger = logging.getLogger(__name__)

_RESTART_WINDOW_S = 30.0
_MAX_RESTARTS_IN_WINDOW = 5
_WORKER_STOP_S = 10.0


@attrs.frozen
class ServeSettings:
    """What ``trio-bidi serve`` runs (picklable: it is handed to each worker process).

    Attributes:
        host: The address to bind (``127.0.0.1``: this machine only).
        port: The port (0: any free port).
        workers: Worker processes (1: serve in this process).
        certfile: TLS certificate (PEM) for ``https``/``wss``.
        keyfile: TLS private key (PEM).
        emulator: Serve against the built-in OpenAI emulator (offline, no key).
        provider: ``"openai"``, ``"gemini"`` or ``"nova"`` (credentials from the environment).
        model: The model id (default: the provider's).
        voice: The assistant's voice.
        url: The provider's WebSocket endpoint (a proxy, or an emulator).
        system_prompt: Instructions for the model.
        tools: Give the model the demo tools ``current_time`` and ``calculate``.
        session_dir: Keep conversations in this directory (``FileSessionManager``), so a
            page that reconnects, to any worker, continues its conversation.
        tokens: Accepted bearer tokens (empty: no authentication).
        allowed_origins: Origins allowed besides the page's own (None: its own only).
        max_sessions: Conversations at once per worker.
        max_message_bytes: The largest message accepted from a page.
        max_messages_per_s: A page's average message rate.
        emulator_reply_ms: With ``emulator``, the length of the emulator's spoken replies.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    certfile: str | None = None
    keyfile: str | None = None
    emulator: bool = False
    provider: str = "openai"
    model: str | None = None
    voice: str | None = None
    url: str | None = None
    system_prompt: str | None = None
    tools: bool = True
    session_dir: str | None = None
    tokens: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    allowed_origins: tuple[str, ...] | None = attrs.field(default=None, converter=optional_tuple)
    max_sessions: int = 100
    max_message_bytes: int = 256 * 1024
    max_messages_per_s: float = 100.0
    emulator_reply_ms: int = 3000

    @property
    def scheme(self) -> str:
        """``https`` with TLS, else ``http``."""
        return "https" if self.certfile else "http"


def _demo_tools(enabled: bool) -> list[Any]:
    if not enabled:
        return []
    from ..agent import tool
    from ..cli._tools import calculate, current_time

    return [tool(calculate), tool(current_time)]


def session_manager_kwargs(session_id: str, session_dir: str | None) -> dict[str, Any]:
    """``{"session_manager": FileSessionManager(...)}`` for a session directory, else ``{}``.

    Raises:
        BidiConfigurationError: ``trio_bidi.session`` is not available.
    """
    if session_dir is None:
        return {}
    manager = _session_module().FileSessionManager(session_id, storage_dir=session_dir)
    return {"session_manager": manager}


def _session_module() -> Any:
    try:
        return importlib.import_module("trio_bidi.session")
    except ImportError as exc:
        raise BidiConfigurationError(
            f"--session-dir needs trio_bidi.session (FileSessionManager): {exc}"
        ) from exc


def build_app(settings: ServeSettings) -> Starlette:
    """Build the application ``trio-bidi serve`` runs.

    With ``settings.emulator`` each worker starts its own OpenAI emulator (in the app's
    lifespan) and every conversation talks to it; typed text that mentions the time gets
    a ``current_time`` tool call, so the page shows tool calls offline too.

    Raises:
        BidiConfigurationError: The provider is unknown or its key is not set.
    """
    gateway = GatewaySettings(
        authenticate=bearer_token_auth(settings.tokens) if settings.tokens else None,
        allowed_origins=settings.allowed_origins,
        max_sessions=settings.max_sessions,
        max_message_bytes=settings.max_message_bytes,
        max_messages_per_s=settings.max_messages_per_s,
        # Which worker process serves the page (shown on the page; used by the load bench).
        session_info={"worker": os.getpid()},
    )
    tools = partial(_demo_tools, settings.tools)
    if settings.session_dir is not None:
        _session_module()  # fail now, not at the first page, when it is missing
    if not settings.emulator:
        from ..cli._chat import make_model

        def model_for_session() -> Any:
            return make_model(
                settings.provider, model_id=settings.model, voice=settings.voice, url=settings.url
            )

        model_for_session()  # fail now, not at the first page, when the key is missing

        def provider_agent(session_id: str, identity: Any) -> BidiAgent:
            return BidiAgent(
                model=model_for_session(),
                tools=tools(),
                system_prompt=settings.system_prompt,
                **session_manager_kwargs(session_id, settings.session_dir),
            )

        return create_app(provider_agent, gateway)

    holder: dict[str, Any] = {}

    @asynccontextmanager
    async def emulator_lifespan(app: Starlette) -> AsyncIterator[None]:
        from ..testing import FunctionCallReply, OpenAIRealtimeEmulator

        key = secrets.token_hex(16)
        async with OpenAIRealtimeEmulator(
            api_key=key, reply_audio_ms=settings.emulator_reply_ms
        ) as emulator:

            def tool_for_time(session: Any, message: dict[str, Any]) -> None:
                item = message.get("item") or {}
                if item.get("role") != "user":
                    return
                text = " ".join(str(p.get("text", "")) for p in item.get("content") or ())
                if "time" in text.lower():
                    emulator.queue(FunctionCallReply("current_time", {"timezone": "UTC"}))

            emulator.on_client("conversation.item.create", tool_for_time)
            holder["emulator"] = emulator
            holder["key"] = key
            logger.info("url=<%s> | serving against the built-in OpenAI emulator", emulator.url)
            yield
            holder.clear()

    def emulator_agent(session_id: str, identity: Any) -> BidiAgent:
        from ..models.openai_realtime import BidiOpenAIRealtimeModel

        emulator = holder["emulator"]
        model = BidiOpenAIRealtimeModel(
            client_config={"api_key": holder["key"], "url": emulator.url}
        )
        return BidiAgent(
            model=model,
            tools=tools(),
            system_prompt=settings.system_prompt,
            **session_manager_kwargs(session_id, settings.session_dir),
        )

    app = create_app(emulator_agent, gateway, lifespan=emulator_lifespan)
    app.state.emulator = holder
    return app


def hypercorn_config(settings: ServeSettings) -> Config:
    """Hypercorn's configuration for these settings (Trio worker, TLS, WebSocket limits)."""
    config = Config()
    config.bind = [
        f"[{settings.host}]:{settings.port}"
        if ":" in settings.host
        else f"{settings.host}:{settings.port}"
    ]
    config.worker_class = "trio"
    config.workers = settings.workers
    if settings.certfile or settings.keyfile:
        if not (settings.certfile and settings.keyfile):
            raise BidiConfigurationError("TLS needs both --certfile and --keyfile")
        config.certfile = settings.certfile
        config.keyfile = settings.keyfile
    # Hypercorn drops larger messages itself; up to this size the gateway answers with
    # an error event instead.
    config.websocket_max_message_size = 4 * settings.max_message_bytes
    config.websocket_ping_interval = 20.0  # find dead browser connections
    config.graceful_timeout = 5.0
    config.accesslog = None
    return config


async def serve(
    app: Any,
    config: Config,
    *,
    shutdown_trigger: Callable[[], Any] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve an ASGI app in the current Trio run until cancelled (or ``shutdown_trigger``).

    ``task_status.started`` receives the bound URLs (``["http://127.0.0.1:43123"]``), so
    ``await nursery.start(serve, app, config)`` tells the port when binding port 0.
    """
    await worker_serve(
        wrap_app(app, config.wsgi_max_body_size, "asgi"),
        config,
        shutdown_trigger=shutdown_trigger,
        task_status=task_status,
    )


def _worker_main(
    settings: ServeSettings, config: Config, sockets: Sockets, shutdown_event: Any
) -> None:
    """One worker process: build the app and serve on the shared sockets."""
    for sock in [*sockets.secure_sockets, *sockets.insecure_sockets]:
        sock.listen(config.backlog)
    if os.environ.get("TRIO_BIDI_SERVE_LOG"):
        logging.basicConfig(level=os.environ["TRIO_BIDI_SERVE_LOG"].upper())
    app = build_app(settings)
    trigger = partial(check_multiprocess_shutdown_event, shutdown_event, trio.sleep)
    trio.run(
        partial(
            worker_serve,
            wrap_app(cast(Any, app), config.wsgi_max_body_size, "asgi"),
            config,
            sockets=sockets,
            shutdown_trigger=trigger,
        )
    )


def bound_urls(sockets: Sockets, scheme: str) -> list[str]:
    """The URLs of the bound sockets (the real port when port 0 was asked)."""
    urls = []
    for sock in [*sockets.secure_sockets, *sockets.insecure_sockets]:
        host, port = sock.getsockname()[:2]
        urls.append(f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}")
    return urls


def run_workers(settings: ServeSettings, out: IO[str]) -> int:
    """Run ``settings.workers`` worker processes on one shared socket until SIGINT/SIGTERM.

    A worker that dies is replaced (and said so on ``out``, with its pid); more than
    five deaths in 30 seconds stop the server with status 1.

    Returns:
        The exit status.
    """
    build_app(settings)  # check the configuration (keys, tools) before binding
    config = hypercorn_config(settings)
    sockets = config.create_sockets()
    for sock in [*sockets.secure_sockets, *sockets.insecure_sockets]:
        sock.listen(config.backlog)  # connections wait in the backlog while workers start
    context = multiprocessing.get_context("spawn")
    shutdown_event = context.Event()
    workers: list[Any] = []
    deaths: list[float] = []

    def stop(signum: int, frame: Any) -> None:
        shutdown_event.set()

    def start_worker() -> None:
        process = context.Process(
            target=_worker_main,
            kwargs={
                "settings": settings,
                "config": config,
                "sockets": sockets,
                "shutdown_event": shutdown_event,
            },
            daemon=True,
        )
        process.start()
        workers.append(process)
        out.write(f"worker pid={process.pid} started\n")
        out.flush()

    # Workers ignore Ctrl-C (they inherit this); the parent tells them to stop.
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_term = signal.getsignal(signal.SIGTERM)
    status = 0
    try:
        for _ in range(settings.workers):
            start_worker()
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for url in bound_urls(sockets, settings.scheme):
            out.write(f"Serving on {url}/ with {settings.workers} workers\n")
        out.flush()
        try:
            while not shutdown_event.is_set():
                multiprocessing.connection.wait([p.sentinel for p in workers], timeout=0.5)
                for process in [p for p in workers if p.exitcode is not None]:
                    workers.remove(process)
                    process.join()
                    if shutdown_event.is_set():
                        continue
                    out.write(
                        f"worker pid={process.pid} exited with {process.exitcode}; restarting\n"
                    )
                    out.flush()
                    now = time.monotonic()
                    deaths[:] = [t for t in deaths if now - t < _RESTART_WINDOW_S] + [now]
                    if len(deaths) > _MAX_RESTARTS_IN_WINDOW:
                        out.write("workers keep dying; stopping\n")
                        status = 1
                        shutdown_event.set()
                        break
                    signal.signal(signal.SIGINT, signal.SIG_IGN)
                    start_worker()
                    signal.signal(signal.SIGINT, stop)
        finally:
            shutdown_event.set()
            deadline = time.monotonic() + _WORKER_STOP_S
            for process in workers:
                process.join(max(0.0, deadline - time.monotonic()))
            for process in workers:
                if process.exitcode is None:
                    process.kill()
                    process.join(5.0)
            signal.signal(signal.SIGTERM, previous_term)
    finally:
        signal.signal(signal.SIGINT, previous_int)
        for sock in [*sockets.secure_sockets, *sockets.insecure_sockets]:
            with contextlib.suppress(OSError):
                sock.close()
    return status
