"""Reading in the consumer's task (`ConnectionBase._read_step`), over real sockets.

The OpenAI Realtime connection reads the WebSocket in the task that iterates
``receive()``; its reader task only stands in while nobody asks. These tests hold that
design to what the channel-based reader guaranteed: every event once and in order (also
when the consumer is cancelled mid-read, switches with the stand-in, or shares the
iteration with a second task), the time limit and ``aclose`` ending a read in progress in
the consumer's task, and the peer's close reported. The server is a bare WebSocket server
speaking the GA protocol; every event it sends and every client message it receives goes
through the official-type oracle.
"""

from __future__ import annotations

import base64
import functools
import json
import random
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from tests.models._shared import counting_reader_steps
from tests.oracles.openai import validate_client_message, validate_server_event
from trio_bidi import BidiOpenAIRealtimeModel
from trio_bidi._websocket import WebSocket, WebSocketClosed, serve_websocket
from trio_bidi.errors import BidiConnectionError, BidiModelTimeoutError
from trio_bidi.events import BidiAudioStreamEvent, BidiConnectionStartEvent, BidiOutputEvent
from trio_bidi.models._base import ConnectionBase


def _sent(message: dict[str, Any]) -> str:
    validate_server_event(message)
    return json.dumps(message)


def _delta(seq: int) -> str:
    return _sent(
        {
            "type": "response.output_audio.delta",
            "event_id": f"event_{seq}",
            "response_id": "resp_1",
            "item_id": "item_1",
            "output_index": 0,
            "content_index": 0,
            "delta": base64.b64encode(struct.pack("<I", seq)).decode(),
        }
    )


def _seq(event: BidiOutputEvent) -> int:
    assert isinstance(event, BidiAudioStreamEvent)
    (seq,) = struct.unpack("<I", base64.b64decode(event.audio))
    return int(seq)


class StreamServer:
    """Sends ``session.created`` and then numbered audio deltas when told to.

    ``go`` holds (count, pause_s) requests; ``close_with`` makes it close with that code.
    """

    def __init__(self) -> None:
        self.go_tx, self.go_rx = trio.open_memory_channel[tuple[int, float] | int](16)
        self.next_seq = 0
        self.client_messages = 0
        self.client_close: WebSocketClosed | None = None
        self.client_closed = trio.Event()

    async def handler(self, ws: WebSocket) -> None:
        created = {"type": "session.created", "event_id": "e0", "session": {"type": "realtime"}}
        await ws.send_text(_sent(created))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._check_client, ws, nursery.cancel_scope)
            async for order in self.go_rx:
                if isinstance(order, int):
                    await ws.aclose(order, "going away")
                    break
                count, pause_s = order
                for _ in range(count):
                    await ws.send_text(_delta(self.next_seq))
                    self.next_seq += 1
                    if pause_s:
                        await trio.sleep(random.uniform(0, pause_s))
            nursery.cancel_scope.cancel()

    async def _check_client(self, ws: WebSocket, scope: trio.CancelScope) -> None:
        try:
            while True:
                validate_client_message(json.loads(await ws.receive()))
                self.client_messages += 1
        except WebSocketClosed as exc:
            self.client_close = exc
            self.client_closed.set()
        scope.cancel()


@asynccontextmanager
async def stream_server() -> AsyncIterator[tuple[StreamServer, str]]:
    server = StreamServer()
    async with trio.open_nursery() as nursery:
        listening = await nursery.start(functools.partial(serve_websocket, server.handler))
        yield server, f"{listening.url}/v1/realtime"
        nursery.cancel_scope.cancel()


def _model(url: str, **extra: Any) -> BidiOpenAIRealtimeModel:
    return BidiOpenAIRealtimeModel(client_config={"api_key": "k", "url": url, **extra})


async def _first(events: AsyncIterator[BidiOutputEvent]) -> None:
    assert isinstance(await events.__anext__(), BidiConnectionStartEvent)


async def test_a_consumer_that_keeps_up_reads_every_event_itself() -> None:
    async with stream_server() as (server, url), _model(url).connect() as connection:
        assert isinstance(connection, ConnectionBase)
        events = connection.receive()
        await _first(events)
        with counting_reader_steps() as instrument:
            await server.go_tx.send((300, 0.002))
            got = [_seq(await events.__anext__()) for _ in range(300)]
    assert got == list(range(300))
    # The stand-in only wakes to see that the consumer still reads (every 0.25 s); with
    # a reader task handing events over it would run at least once per event.
    assert instrument.steps < 30, instrument.steps


async def test_a_consumer_cancelled_mid_read_loses_and_repeats_nothing() -> None:
    async with stream_server() as (server, url), _model(url).connect() as connection:
        events = connection.receive()
        await _first(events)
        await server.go_tx.send((400, 0.001))
        got: list[int] = []
        cancelled = 0
        while len(got) < 400:
            with trio.move_on_after(random.uniform(0, 0.002)) as scope:
                got.append(_seq(await events.__anext__()))
            cancelled += scope.cancelled_caught
    assert got == list(range(400))
    assert cancelled > 10  # the test did cancel reads in progress


async def test_the_stand_in_reads_while_nobody_asks_and_the_order_holds() -> None:
    async with stream_server() as (server, url), _model(url).connect() as connection:
        assert isinstance(connection, ConnectionBase)
        events = connection.receive()
        await _first(events)
        await server.go_tx.send((50, 0))
        got = [_seq(await events.__anext__()) for _ in range(20)]
        # Nobody asks for a while: the reader task stands in and fills the channel.
        await server.go_tx.send((100, 0))
        await trio.sleep(0.6)
        assert connection._event_rx.statistics().current_buffer_used > 0
        await server.go_tx.send((50, 0))
        got += [_seq(await events.__anext__()) for _ in range(180)]
    assert got == list(range(200))


async def test_two_consumers_share_the_events_without_loss_or_repeat() -> None:
    got: list[int] = []
    async with stream_server() as (server, url), _model(url).connect() as connection:
        events = connection.receive()
        await _first(events)

        async def consume() -> None:
            while len(got) < 300:
                with trio.move_on_after(1):
                    got.append(_seq(await events.__anext__()))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            nursery.start_soon(consume)
            await server.go_tx.send((300, 0.001))
    assert sorted(got) == list(range(300))


async def test_the_time_limit_ends_a_read_in_the_consumers_task() -> None:
    async with (
        stream_server() as (_server, url),
        _model(url, timeout_s=0.5).connect() as connection,
    ):
        events = connection.receive()
        await _first(events)
        started = trio.current_time()
        with trio.fail_after(5), pytest.raises(BidiModelTimeoutError):
            await events.__anext__()  # nothing comes: the deadline ends the read
    assert trio.current_time() - started < 2


async def test_closing_from_another_task_ends_a_read_in_progress() -> None:
    async with stream_server() as (server, url):
        async with _model(url).connect() as connection:
            events = connection.receive()
            await _first(events)

            async def close_soon() -> None:
                await trio.sleep(0.1)
                with trio.fail_after(1):  # the handshake, not the close timeout (2 s)
                    await connection.aclose()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(close_soon)
                with trio.fail_after(5), pytest.raises(StopAsyncIteration):
                    await events.__anext__()
            ws = connection._ws  # type: ignore[attr-defined]
            assert ws._protocol.close_rcvd is not None  # the server's answer was read
        with trio.fail_after(5):
            await server.client_closed.wait()
        assert server.client_close is not None
    # A whole close handshake although the consumer's read held the socket: the read in
    # progress took in the server's answer, and the server saw the client's close frame.
    assert server.client_close.code == 1000


async def test_the_peers_close_during_a_read_is_a_connection_error() -> None:
    async with stream_server() as (server, url), _model(url).connect() as connection:
        events = connection.receive()
        await _first(events)

        async def close_soon() -> None:
            await trio.sleep(0.1)
            await server.go_tx.send(1011)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(close_soon)
            with trio.fail_after(5), pytest.raises(BidiConnectionError) as info:
                await events.__anext__()
    assert info.value.code == 1011


async def test_the_end_of_a_connection_nobody_reads_is_noticed() -> None:
    async with stream_server() as (server, url), _model(url).connect() as connection:
        assert isinstance(connection, ConnectionBase)
        await server.go_tx.send(1011)
        with trio.fail_after(5):
            await connection._reader_done.wait()  # the stand-in read the close
        assert not connection.is_open
        events = connection.receive()
        await _first(events)
        with pytest.raises(BidiConnectionError):
            await events.__anext__()
