"""Hostile servers after the handshake: bad frames, ping floods, a peer that stops reading.

The servers are raw TCP listeners on 127.0.0.1 (the exact bytes are in each test). They
answer the opening handshake correctly, then misbehave. Every failure must come out as
:class:`WebSocketClosed` with the precise close code, memory must stay bounded, and a
blocked call must stay cancellable; the suite's conftest checks for leaked sockets, tasks
and threads.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from trio_bidi._websocket import _HIGH_WATER, WebSocket, WebSocketClosed, open_websocket

from .test_transport_handshake import (
    Script,
    accept_101,
    close_frame,
    frame,
    raw_server,
    read_client_frame,
)


@asynccontextmanager
async def connected(script: Script, *, writer: bool, **kwargs: object) -> AsyncIterator[WebSocket]:
    """A client connection to a raw server that runs ``script`` after its ``101``."""

    async def full_script(stream: trio.SocketStream, request: bytes) -> None:
        await stream.send_all(accept_101(request))
        await script(stream, request)

    async with (
        raw_server(full_script) as port,
        open_websocket(f"ws://127.0.0.1:{port}", **kwargs) as ws,  # type: ignore[arg-type]
        trio.open_nursery() as nursery,
    ):
        if writer:
            await nursery.start(ws.run_writer)
        yield ws
        nursery.cancel_scope.cancel()


def _close_code(frames: list[tuple[int, bytes]]) -> int | None:
    for opcode, payload in frames:
        if opcode == 0x8:
            return int(struct.unpack("!H", payload[:2])[0])
    return None


async def _read_all_frames(stream: trio.SocketStream, into: list[tuple[int, bytes]]) -> None:
    """Record the client's frames until its close frame (then the server hangs up)."""
    buffer = bytearray()
    while not into or into[-1][0] != 0x8:
        into.append(await read_client_frame(stream, buffer))


@pytest.mark.parametrize("writer", [False, True], ids=["direct", "writer"])
@pytest.mark.parametrize(
    "frames",
    [
        pytest.param([(0x1, b"bad \xc3\x28 utf8", True)], id="alone"),
        pytest.param([(0x1, b"split \xc3", False), (0x0, b"\xff end", True)], id="fragmented"),
        pytest.param([(0x1, b"trunc \xe2\x82", True)], id="truncated-sequence"),
    ],
)
async def test_invalid_utf8_is_close_1007_and_the_socket_closes(
    frames: list[tuple[int, bytes, bool]], writer: bool
) -> None:
    sent_back: list[tuple[int, bytes]] = []

    async def script(stream: trio.SocketStream, request: bytes) -> None:
        # A character split across fragments is fine; the bad bytes are not.
        good = frame(0x1, b"caf\xc3", fin=False) + frame(0x0, b"\xa9", fin=True)
        bad = b"".join(frame(op, data, fin=fin) for op, data, fin in frames)
        await stream.send_all(good + bad + frame(0x1, b"after the bad one"))
        await _read_all_frames(stream, sent_back)

    async with connected(script, writer=writer) as ws:
        assert await ws.receive() == "café"
        with pytest.raises(WebSocketClosed) as info:
            await ws.receive()
        assert info.value.code == 1007
        assert info.value.by_peer
        with pytest.raises(WebSocketClosed):
            await ws.send_text("too late")
    assert _close_code(sent_back) == 1007


@pytest.mark.parametrize(
    ("bytes_sent", "code"),
    [
        pytest.param(bytes([0x81, 0x82, 1, 2, 3, 4, 0x69, 0x6A]), 1002, id="masked-by-server"),
        pytest.param(frame(0x3, b"reserved opcode"), 1002, id="reserved-opcode"),
        pytest.param(frame(0x9, b"p" * 126), 1002, id="control-frame-too-long"),
        pytest.param(frame(0x2, b"b" * 5000), 1009, id="message-too-big"),
        pytest.param(frame(0x8, b"\x03"), 1002, id="close-code-one-byte"),
    ],
)
async def test_a_bad_frame_is_a_protocol_close_with_its_code(bytes_sent: bytes, code: int) -> None:
    sent_back: list[tuple[int, bytes]] = []

    async def script(stream: trio.SocketStream, request: bytes) -> None:
        await stream.send_all(bytes_sent)
        await _read_all_frames(stream, sent_back)

    async with connected(script, writer=False, max_message_size=4096) as ws:
        with pytest.raises(WebSocketClosed) as info:
            await ws.receive()
        assert info.value.code == code
        assert info.value.by_peer
    assert _close_code(sent_back) == code


async def test_a_close_reason_is_shown_escaped() -> None:
    async def script(stream: trio.SocketStream, request: bytes) -> None:
        await stream.send_all(close_frame(4000, b"\x1b[2J\x00bye\nnow"))
        await _read_all_frames(stream, [])

    async with connected(script, writer=False) as ws:
        with pytest.raises(WebSocketClosed) as info:
            await ws.receive()
    assert info.value.code == 4000
    assert info.value.reason == "\\x1b[2J\\x00bye\\nnow"
    assert "\x1b" not in str(info.value)


@pytest.mark.parametrize("writer", [False, True], ids=["direct", "writer"])
async def test_a_ping_flood_from_a_peer_that_never_reads_stays_bounded(
    writer: bool, autojump_clock: trio.testing.MockClock
) -> None:
    sent = 0
    burst = frame(0x9, b"") * 20_000  # empty pings: the smallest frame, the most pongs

    async def script(stream: trio.SocketStream, request: bytes) -> None:
        nonlocal sent
        while True:  # never reads
            await stream.send_all(burst)
            sent += len(burst)

    largest_queue = 0
    async with connected(script, writer=writer) as ws:

        async def watch() -> None:
            nonlocal largest_queue
            while True:
                largest_queue = max(largest_queue, ws._queued_bytes())
                await trio.sleep(0.001)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            with trio.move_on_after(10) as scope:
                await ws.receive()  # only pings come: it waits, and stays cancellable
            nursery.cancel_scope.cancel()
        assert scope.cancelled_caught
        sent_when_stalled = sent
    # Each read of up to 256 KiB of pings owes 3x its size in pongs: the queue stops
    # growing past the high-water mark plus one read's worth, and the flood stalls.
    assert largest_queue <= _HIGH_WATER + 3 * 256 * 1024
    assert sent_when_stalled < 64 * 1024 * 1024


@pytest.mark.parametrize("writer", [False, True], ids=["direct", "writer"])
async def test_sends_to_a_peer_that_stopped_reading_block_and_stay_cancellable(
    writer: bool, autojump_clock: trio.testing.MockClock
) -> None:
    async def script(stream: trio.SocketStream, request: bytes) -> None:
        await trio.sleep_forever()  # never reads

    sent = 0
    async with connected(script, writer=writer) as ws:
        with trio.move_on_after(5) as scope:
            while True:
                await ws.send_bytes(b"\x00" * 100_000)
                sent += 1
        assert scope.cancelled_caught
        assert ws._queued_bytes() <= _HIGH_WATER + 100_100
    assert sent < 1000  # the sends blocked: nothing piles up without bound


async def test_a_peer_that_vanishes_mid_message_is_1006() -> None:
    async def script(stream: trio.SocketStream, request: bytes) -> None:
        await stream.send_all(frame(0x1, b"x" * 1000)[:300])

    async with connected(script, writer=True) as ws:
        with pytest.raises(WebSocketClosed) as info:
            await ws.receive()
    assert info.value.code == 1006
