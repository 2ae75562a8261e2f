"""Helpers for the gateway tests: a running server and WebSocket clients over real sockets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from trio_bidi import BidiAgent
from trio_bidi._util import open_nursery_unwrapped
from trio_bidi._websocket import WebSocket, open_websocket
from trio_bidi.server import GatewaySettings, ServeSettings, create_app, hypercorn_config, serve
from trio_bidi.testing import OpenAIRealtimeEmulator

from ..fixtures.openai import openai_model


@asynccontextmanager
async def running(app: Any, settings: ServeSettings | None = None) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 (port 0) in this run; yield its ``http://`` base URL."""
    config = hypercorn_config(settings or ServeSettings(port=0))
    async with open_nursery_unwrapped() as nursery:
        binds = await nursery.start(serve, app, config)
        try:
            yield binds[0]
        finally:
            nursery.cancel_scope.cancel()


def gateway_for(
    emulator: OpenAIRealtimeEmulator,
    settings: GatewaySettings | None = None,
    **agent_kwargs: Any,
) -> Any:
    """A gateway whose agents talk to ``emulator``; records the session ids it built."""
    built: list[str] = []

    def factory(session_id: str, identity: Any) -> BidiAgent:
        built.append(session_id)
        return BidiAgent(model=openai_model(emulator), **agent_kwargs)

    app = create_app(factory, settings)
    app.state.built = built
    return app


def ws_url(base: str, path: str = "/ws", **query: str) -> str:
    url = base.replace("http://", "ws://").replace("https://", "wss://") + path
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return url


async def receive_json(ws: WebSocket) -> dict[str, Any]:
    """The next text message, decoded (binary audio frames are skipped)."""
    while True:
        message = await ws.receive()
        if isinstance(message, str):
            decoded: dict[str, Any] = json.loads(message)
            return decoded


async def receive_until(
    ws: WebSocket, accept: Callable[[dict[str, Any]], bool], frames: list[bytes] | None = None
) -> dict[str, Any]:
    """Receive until a JSON message satisfies ``accept``; binary frames go to ``frames``."""
    while True:
        message = await ws.receive()
        if isinstance(message, bytes):
            if frames is not None:
                frames.append(message)
            continue
        decoded: dict[str, Any] = json.loads(message)
        if accept(decoded):
            return decoded


__all__ = [
    "gateway_for",
    "open_websocket",
    "receive_json",
    "receive_until",
    "running",
    "ws_url",
]
