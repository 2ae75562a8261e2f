"""The WebSocket transport over real loopback sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from trio_bidi._websocket import (
    WebSocket,
    WebSocketClosed,
    WebSocketHandshakeError,
    WebSocketServer,
    open_websocket,
    serve_websocket,
)


async def _echo(ws: WebSocket) -> None:
    try:
        while True:
            message = await ws.receive()
            if message == "close-now":
                await ws.aclose(4001, "asked to")
                return
            if isinstance(message, str):
                await ws.send_text(message)
            else:
                await ws.send_bytes(message)
    except WebSocketClosed:
        pass


def _authorize(request: object) -> tuple[int, str] | None:
    headers = request.headers  # type: ignore[attr-defined]
    return None if headers.get("Authorization") == "Bearer good" else (401, "invalid key")


@asynccontextmanager
async def echo_server() -> AsyncIterator[WebSocketServer]:
    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            lambda task_status: serve_websocket(
                _echo, authorize=_authorize, task_status=task_status
            )
        )
        yield server
        server.close()


async def test_text_binary_and_large_messages() -> None:
    async with (
        echo_server() as server,
        open_websocket(
            server.url + "/v1/realtime?model=m", headers={"Authorization": "Bearer good"}
        ) as ws,
    ):
        await ws.send_text("héllo")
        assert await ws.receive() == "héllo"
        await ws.send_bytes(b"\x00\x01")
        assert await ws.receive() == b"\x00\x01"
        big = "x" * 3_000_000
        await ws.send_text(big)
        assert await ws.receive() == big


async def test_refused_handshake_reports_status() -> None:
    async with echo_server() as server:
        with pytest.raises(WebSocketHandshakeError, match="HTTP 401") as info:
            async with open_websocket(server.url, headers={"Authorization": "Bearer bad"}):
                pass
        assert info.value.status == 401


async def test_connection_refused() -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(WebSocketHandshakeError, match="cannot connect"):
        async with open_websocket(f"ws://127.0.0.1:{port}"):
            pass


async def test_peer_close_code_and_reason() -> None:
    async with (
        echo_server() as server,
        open_websocket(server.url, headers={"Authorization": "Bearer good"}) as ws,
    ):
        await ws.send_text("close-now")
        with pytest.raises(WebSocketClosed) as info:
            await ws.receive()
        assert (info.value.code, info.value.reason, info.value.by_peer) == (4001, "asked to", True)
        with pytest.raises(WebSocketClosed):
            await ws.send_text("after")


async def test_abrupt_disconnect_is_1006() -> None:
    async def drop(ws: WebSocket) -> None:
        await trio.aclose_forcefully(ws._stream)

    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            lambda task_status: serve_websocket(drop, task_status=task_status)
        )
        async with open_websocket(server.url) as ws:
            with pytest.raises(WebSocketClosed) as info:
                await ws.receive()
            assert info.value.code == 1006
        server.close()


async def test_invalid_url() -> None:
    with pytest.raises(WebSocketHandshakeError, match="invalid WebSocket URL"):
        async with open_websocket("http://example.invalid"):
            pass


async def test_close_is_idempotent() -> None:
    async with (
        echo_server() as server,
        open_websocket(server.url, headers={"Authorization": "Bearer good"}) as ws,
    ):
        await ws.aclose()
        await ws.aclose()
        assert ws.closed is not None
        assert not ws.closed.by_peer
