"""Hostile servers during the WebSocket opening handshake (raw sockets, exact bytes).

Each server below is a plain TCP listener on 127.0.0.1 that reads the client's HTTP
request and answers with the bytes shown: a close frame or a bad text frame in the same
write as the ``101``, a truncated or garbage answer, a refusal that echoes the API key, a
TLS peer that is not TLS, a server that never answers. The suite's conftest checks that
no socket, task or thread outlives any test.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import logging
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from trio_bidi._websocket import WebSocketClosed, WebSocketHandshakeError, open_websocket

from .conftest import open_sockets

KEY = "sk-hostile-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

Script = Callable[[trio.SocketStream, bytes], Awaitable[None]]


async def read_request(stream: trio.SocketStream) -> bytes:
    """Read the client's HTTP request head."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        data += chunk
    return data


def accept_101(request: bytes) -> bytes:
    """A correct ``101 Switching Protocols`` answer to ``request``."""
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + _GUID.encode()).digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """One unmasked server frame."""
    head = bytes([(0x80 if fin else 0) | opcode])
    if len(payload) < 126:
        head += bytes([len(payload)])
    elif len(payload) < 65536:
        head += bytes([126]) + struct.pack("!H", len(payload))
    else:
        head += bytes([127]) + struct.pack("!Q", len(payload))
    return head + payload


def close_frame(code: int, reason: bytes = b"") -> bytes:
    return frame(0x8, struct.pack("!H", code) + reason)


async def read_client_frame(stream: trio.SocketStream, buffer: bytearray) -> tuple[int, bytes]:
    """Read one masked client frame; return its opcode and unmasked payload."""

    async def need(count: int) -> bytes:
        while len(buffer) < count:
            chunk = await stream.receive_some(65536)
            if not chunk:
                raise EOFError("the client ended the stream")
            buffer.extend(chunk)
        taken = bytes(buffer[:count])
        del buffer[:count]
        return taken

    first, second = await need(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await need(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await need(8))
    mask = await need(4)
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(await need(length)))
    return first & 0x0F, payload


@asynccontextmanager
async def raw_server(script: Script) -> AsyncIterator[int]:
    """Serve one connection with ``script(stream, request)``; yield the port."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]

    async def serve() -> None:
        stream = await listener.accept()
        try:
            await script(stream, await read_request(stream))
        except (trio.BrokenResourceError, trio.ClosedResourceError, EOFError):
            pass
        finally:
            stream.socket.close()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            yield port
            nursery.cancel_scope.cancel()
    finally:
        await listener.aclose()


async def test_a_close_frame_with_the_101_reports_the_servers_code_and_reason() -> None:
    echoed: list[tuple[int, bytes]] = []

    async def script(stream: trio.SocketStream, request: bytes) -> None:
        await stream.send_all(accept_101(request) + close_frame(1008, b"policy: no model"))
        echoed.append(await read_client_frame(stream, bytearray()))

    async with raw_server(script) as port, open_websocket(f"ws://127.0.0.1:{port}") as ws:
        with pytest.raises(WebSocketClosed) as info:
            await ws.receive()
    assert (info.value.code, info.value.reason, info.value.by_peer) == (
        1008,
        "policy: no model",
        True,
    )
    assert "refused" not in str(info.value)
    assert echoed == [(0x8, struct.pack("!H", 1008) + b"policy: no model")]


async def test_invalid_utf8_with_the_101_fails_the_connection_with_1007() -> None:
    answer: list[tuple[int, bytes]] = []

    async def script(stream: trio.SocketStream, request: bytes) -> None:
        await stream.send_all(accept_101(request) + frame(0x1, b"ok") + frame(0x1, b"\xff\xfe"))
        answer.append(await read_client_frame(stream, bytearray()))

    async with raw_server(script) as port, open_websocket(f"ws://127.0.0.1:{port}") as ws:
        assert await ws.receive() == "ok"  # what came before the bad frame still counts
        with pytest.raises(WebSocketClosed) as info:
            await ws.receive()
        assert info.value.code == 1007
        assert "UTF-8" in info.value.reason
        assert isinstance(ws.closed.__cause__, UnicodeDecodeError)  # type: ignore[union-attr]
    (opcode, payload), *_ = answer
    assert opcode == 0x8
    assert struct.unpack("!H", payload[:2]) == (1007,)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(b"HTTP/1.1 101 Switching Protocols\r\nUpgr", id="truncated"),
        pytest.param(b"\x00\xffNOT HTTP AT ALL\r\n\r\n", id="garbage"),
        pytest.param(b"", id="closed-at-once"),
    ],
)
async def test_a_broken_answer_is_a_handshake_error_and_the_socket_closes(
    answer: bytes,
) -> None:
    async def script(stream: trio.SocketStream, request: bytes) -> None:
        await stream.send_all(answer)
        if answer.startswith(b"\x00"):
            await trio.sleep_forever()  # a garbage answer must not wait for more

    before = open_sockets()
    gc.disable()  # the client's socket must be closed by the code, not by the collector
    try:
        async with raw_server(script) as port:
            with trio.fail_after(5), pytest.raises(WebSocketHandshakeError) as info:
                async with open_websocket(f"ws://127.0.0.1:{port}", connect_timeout_s=30):
                    pass
        assert not open_sockets() - before
    finally:
        gc.enable()
    assert info.value.status is None
    assert "127.0.0.1" in str(info.value)


async def test_a_101_with_a_wrong_accept_is_refused() -> None:
    async def script(stream: trio.SocketStream, request: bytes) -> None:
        await stream.send_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: bm9wZQ==\r\n\r\n"
        )
        await trio.sleep_forever()

    before = open_sockets()
    gc.disable()  # the client's socket must be closed by the code, not by the collector
    try:
        async with raw_server(script) as port:
            with pytest.raises(WebSocketHandshakeError, match=r"HTTP 101; .*Sec-WebSocket-Accept"):
                async with open_websocket(f"ws://127.0.0.1:{port}"):
                    pass
        assert not open_sockets() - before
    finally:
        gc.enable()


async def test_a_refusal_echoing_the_key_leaks_it_nowhere(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    async def script(stream: trio.SocketStream, request: bytes) -> None:
        auth = next(
            line for line in request.split(b"\r\n") if line.lower().startswith(b"authorization")
        )
        body = b'{"error": {"message": "Incorrect API key: ' + auth + b'"}}\r\n\x07' * 50
        await stream.send_all(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
            b"X-Echo: "
            + auth
            + b"\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

    async with raw_server(script) as port:
        with pytest.raises(WebSocketHandshakeError) as info:
            async with open_websocket(f"ws://127.0.0.1:{port}/v1?model=m", headers=AUTH):
                pass
    message = str(info.value)
    assert info.value.status == 401
    assert KEY not in message
    assert "[redacted]" in message
    assert "\x07" not in message
    assert len(message) < 400
    assert caplog.records
    for record in caplog.records:
        assert KEY not in record.getMessage()


async def test_a_server_that_never_answers_hits_the_connect_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def script(stream: trio.SocketStream, request: bytes) -> None:
        await trio.sleep_forever()

    async with raw_server(script) as port:
        with pytest.raises(WebSocketHandshakeError, match="within 3"):
            async with open_websocket(f"ws://127.0.0.1:{port}", connect_timeout_s=3):
                pass


async def test_a_tls_peer_that_speaks_no_tls_is_a_handshake_error() -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]

    async def serve() -> None:
        stream = await listener.accept()
        try:
            await stream.receive_some(65536)  # the ClientHello
            await stream.send_all(b"HTTP/1.1 400 Bad Request\r\n\r\nthis is not TLS")
        finally:
            stream.socket.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        with pytest.raises(WebSocketHandshakeError, match="cannot connect"):
            async with open_websocket(
                f"wss://127.0.0.1:{port}", ssl_context=ssl.create_default_context()
            ):
                pass
    await listener.aclose()
