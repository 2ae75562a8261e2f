"""The WebSocket transport over real loopback sockets."""

from __future__ import annotations

import contextlib
import logging
import ssl
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import hypothesis
import hypothesis.strategies as st
import pytest
import trio
import trio.testing

from trio_bidi._transport._secrets import (
    MAX_SERVER_TEXT,
    REDACTED,
    printable,
    redact_query,
    secret_values,
)
from trio_bidi._websocket import (
    WebSocket,
    WebSocketClosed,
    WebSocketHandshakeError,
    WebSocketServer,
    open_websocket,
    serve_websocket,
)

from .test_tls_transport import TLSContexts, make_tls_contexts

_SERVER_TLS: list[ssl.SSLContext | None] = [None]
_CLIENT_TLS: list[ssl.SSLContext | None] = [None]


@pytest.fixture(scope="module")
def tls_contexts() -> TLSContexts:
    """A test CA's server and client contexts."""
    return make_tls_contexts()


@pytest.fixture(autouse=True, params=["ws", "wss"])
def scheme(request: pytest.FixtureRequest, tls_contexts: TLSContexts) -> Iterator[str]:
    """Run every test of this module over plaintext and over TLS (trustme test CA)."""
    secure = request.param == "wss"
    _SERVER_TLS[0] = tls_contexts.server if secure else None
    _CLIENT_TLS[0] = tls_contexts.client if secure else None
    yield request.param
    _SERVER_TLS[0] = _CLIENT_TLS[0] = None


def connect(url: str, **kwargs: Any) -> AbstractAsyncContextManager[WebSocket]:
    """``open_websocket`` with the module's TLS settings."""
    return open_websocket(url, ssl_context=_CLIENT_TLS[0], **kwargs)


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
                _echo, authorize=_authorize, ssl_context=_SERVER_TLS[0], task_status=task_status
            )
        )
        yield server
        server.close()


async def test_text_binary_and_large_messages() -> None:
    async with (
        echo_server() as server,
        connect(
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


async def test_both_sides_receive_through_the_fast_path() -> None:
    server_sides: list[WebSocket] = []

    async def echo_recording(ws: WebSocket) -> None:
        server_sides.append(ws)
        await _echo(ws)

    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            lambda task_status: serve_websocket(
                echo_recording, ssl_context=_SERVER_TLS[0], task_status=task_status
            )
        )
        async with connect(server.url) as ws:
            await ws.send_text("through the splitter")
            assert await ws.receive() == "through the splitter"
            # websockets' own parser is used only for control frames and fragments.
            assert ws._splitter is not None
            assert ws._splitter.active
            assert server_sides[0]._splitter is not None
            assert server_sides[0]._splitter.active
        server.close()


async def test_refused_handshake_reports_status() -> None:
    async with echo_server() as server:
        with pytest.raises(WebSocketHandshakeError, match="HTTP 401") as info:
            async with connect(server.url, headers={"Authorization": "Bearer bad"}):
                pass
        assert info.value.status == 401


async def test_connection_refused() -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(WebSocketHandshakeError, match="cannot connect"):
        async with connect(f"ws://127.0.0.1:{port}"):
            pass


async def test_peer_close_code_and_reason() -> None:
    async with (
        echo_server() as server,
        connect(server.url, headers={"Authorization": "Bearer good"}) as ws,
    ):
        await ws.send_text("close-now")
        with pytest.raises(WebSocketClosed) as info:
            await ws.receive()
        assert (info.value.code, info.value.reason, info.value.by_peer) == (4001, "asked to", True)
        with pytest.raises(WebSocketClosed):
            await ws.send_text("after")


async def test_abrupt_disconnect_is_1006() -> None:
    async def drop(ws: WebSocket) -> None:
        ws._wire.close_now()

    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            lambda task_status: serve_websocket(
                drop, ssl_context=_SERVER_TLS[0], task_status=task_status
            )
        )
        async with connect(server.url) as ws:
            with pytest.raises(WebSocketClosed) as info:
                await ws.receive()
            assert info.value.code == 1006
        server.close()


async def test_invalid_url() -> None:
    with pytest.raises(WebSocketHandshakeError, match="invalid WebSocket URL"):
        async with connect("http://example.invalid"):
            pass


async def test_close_is_idempotent() -> None:
    async with (
        echo_server() as server,
        connect(server.url, headers={"Authorization": "Bearer good"}) as ws,
    ):
        await ws.aclose()
        await ws.aclose()
        assert ws.closed is not None
        assert not ws.closed.by_peer


@asynccontextmanager
async def gated_server(
    handler_done: list[list[str | bytes]], gate: trio.Event, done: trio.Event
) -> AsyncIterator[WebSocketServer]:
    """A server that reads nothing until ``gate`` is set, then records every message."""

    async def record(ws: WebSocket) -> None:
        await gate.wait()
        received: list[str | bytes] = []
        try:
            while True:
                message = await ws.receive()
                if message == "end":
                    break
                received.append(message)
        finally:
            handler_done.append(received)
            done.set()

    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            lambda task_status: serve_websocket(
                record, ssl_context=_SERVER_TLS[0], task_status=task_status
            )
        )
        yield server
        server.close()


async def test_send_is_a_cancel_point_and_sends_nothing_when_cancelled() -> None:
    async with (
        echo_server() as server,
        connect(server.url, headers={"Authorization": "Bearer good"}) as ws,
    ):
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.send_text("never")
        assert scope.cancelled_caught
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.send_texts(["never", "either"])
        assert scope.cancelled_caught
        assert ws.closed is None
        await ws.send_text("after")
        assert await ws.receive() == "after"


async def test_sending_loop_lets_other_tasks_run() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with (
        echo_server() as server,
        connect(server.url, headers={"Authorization": "Bearer good"}) as ws,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(ticker)
        await trio.lowlevel.checkpoint()
        before = ticks
        for _ in range(160):
            await ws.send_text("x")
        assert ticks - before >= 160 // 16 - 1
        nursery.cancel_scope.cancel()


async def test_partial_writes_and_concurrent_senders_keep_frames_whole() -> None:
    results: list[list[str | bytes]] = []
    gate, done = trio.Event(), trio.Event()
    body = "y" * 65536
    async with gated_server(results, gate, done) as server, connect(server.url) as ws:

        async def sender(tag: str) -> None:
            for i in range(60):
                if i % 2:
                    await ws.send_texts([f"{tag}{i}a:{body}", f"{tag}{i}b:{body}"])
                else:
                    await ws.send_text(f"{tag}{i}:{body}")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender, "p")
            nursery.start_soon(sender, "q")
            # The peer reads nothing yet: the socket fills and writes go partial.
            await trio.sleep(0.05)
            gate.set()
        await ws.send_text("end")
        with trio.fail_after(10):
            await done.wait()
    (received,) = results
    assert len(received) == 2 * 90
    for tag in "pq":
        heads = [str(m).split(":", 1)[0] for m in received if str(m).startswith(tag)]
        expected = []
        for i in range(60):
            expected += [f"{tag}{i}a", f"{tag}{i}b"] if i % 2 else [f"{tag}{i}"]
        assert heads == expected
    assert all(str(m).split(":", 1)[1] == body for m in received)


async def test_send_cancelled_on_a_full_socket_closes_the_connection() -> None:
    results: list[list[str | bytes]] = []
    gate, done = trio.Event(), trio.Event()
    async with gated_server(results, gate, done) as server, connect(server.url) as ws:
        with trio.move_on_after(0.2) as scope:
            while True:
                await ws.send_text("z" * 1_000_000)
        assert scope.cancelled_caught
        assert ws.closed is not None
        assert ws.closed.code == 1006
        with pytest.raises(WebSocketClosed):
            await ws.send_text("after")
        gate.set()


async def test_send_on_a_stream_closed_underneath_raises_closed() -> None:
    async with (
        echo_server() as server,
        connect(server.url, headers={"Authorization": "Bearer good"}) as ws,
    ):
        ws._wire.close_now()
        with pytest.raises(WebSocketClosed) as info:
            await ws.send_text("x")
        assert info.value.code == 1006


async def test_send_after_peer_reset_raises_closed() -> None:
    async def drop(ws: WebSocket) -> None:
        ws._wire.close_now()

    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            lambda task_status: serve_websocket(
                drop, ssl_context=_SERVER_TLS[0], task_status=task_status
            )
        )
        async with connect(server.url) as ws:

            async def send_until_closed() -> None:
                while True:
                    await ws.send_text("x" * 1000)
                    await trio.sleep(0.001)

            with trio.fail_after(5), pytest.raises(WebSocketClosed) as info:
                await send_until_closed()
            assert info.value.code == 1006
        server.close()


async def test_simultaneous_close_does_not_wait_for_the_close_timeout() -> None:
    closing = trio.Event()
    server_closed = trio.Event()

    async def close_at_once(ws: WebSocket) -> None:
        closing.set()
        await ws.aclose(1001, "going away")
        server_closed.set()

    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            lambda task_status: serve_websocket(
                close_at_once, ssl_context=_SERVER_TLS[0], task_status=task_status
            )
        )
        # Both sides send their close frame before reading the other's: the server must
        # end TCP once the frames crossed instead of waiting out the 2 s close timeout.
        with trio.fail_after(1.0):
            async with connect(server.url) as ws:
                await closing.wait()
            await server_closed.wait()
        assert ws.closed is not None
        server.close()


# ---------------------------------------------------------------------- the writer task


async def test_writer_batches_and_keeps_order_and_frames_whole() -> None:
    results: list[list[str | bytes]] = []
    gate, done = trio.Event(), trio.Event()
    body = "w" * 65536
    async with (
        gated_server(results, gate, done) as server,
        connect(server.url) as ws,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(ws.run_writer)

        async def sender(tag: str) -> None:
            for i in range(40):
                if i % 2:
                    await ws.send_texts([f"{tag}{i}a:{body}", f"{tag}{i}b:{body}"])
                else:
                    await ws.send_text(f"{tag}{i}:{body}")

        async with trio.open_nursery() as senders:
            senders.start_soon(sender, "p")
            senders.start_soon(sender, "q")
            await trio.sleep(0.05)  # the peer reads nothing yet: the queue fills up
            gate.set()
        await ws.send_text("end")
        with trio.fail_after(10):
            await done.wait()
        nursery.cancel_scope.cancel()
    (received,) = results
    assert len(received) == 2 * 60
    for tag in "pq":
        heads = [str(m).split(":", 1)[0] for m in received if str(m).startswith(tag)]
        expected = []
        for i in range(40):
            expected += [f"{tag}{i}a", f"{tag}{i}b"] if i % 2 else [f"{tag}{i}"]
        assert heads == expected
    assert all(str(m).split(":", 1)[1] == body for m in received)


async def test_writer_send_is_a_cancel_point_and_a_cancelled_wait_keeps_the_frame() -> None:
    results: list[list[str | bytes]] = []
    gate, done = trio.Event(), trio.Event()
    big = "z" * 1_000_000
    returned = 0
    async with (
        gated_server(results, gate, done) as server,
        connect(server.url) as ws,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(ws.run_writer)
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.send_text("never")
        assert scope.cancelled_caught
        # The peer reads nothing: the queue passes 1 MiB and the send waits for room.
        with trio.move_on_after(0.2) as scope:
            while True:
                await ws.send_text(big)
                returned += 1
        assert scope.cancelled_caught
        assert ws.closed is None
        gate.set()
        await ws.send_text("end")
        with trio.fail_after(10):
            await done.wait()
        nursery.cancel_scope.cancel()
    (received,) = results
    # The cancelled send had queued its message before waiting: it arrives whole.
    assert len(received) in (returned, returned + 1)
    assert all(message == big for message in received)


async def test_writer_reports_a_broken_stream_on_a_later_send() -> None:
    async with (
        echo_server() as server,
        connect(server.url, headers={"Authorization": "Bearer good"}) as ws,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(ws.run_writer)
        ws._wire.close_now()

        async def send_twice() -> None:
            await ws.send_text("x")  # queued; the writer then finds the stream closed
            await trio.testing.wait_all_tasks_blocked()
            await ws.send_text("y")

        with pytest.raises(WebSocketClosed) as info:
            await send_twice()
        assert info.value.code == 1006
        with pytest.raises(RuntimeError, match="once"):
            await nursery.start(ws.run_writer)


async def test_frames_queued_when_the_writer_stops_are_sent_first_by_aclose() -> None:
    results: list[list[str | bytes]] = []
    gate, done = trio.Event(), trio.Event()
    gate.set()
    async with gated_server(results, gate, done) as server, connect(server.url) as ws:
        async with trio.open_nursery() as nursery:
            await nursery.start(ws.run_writer)
            for i in range(5):
                await ws.send_text(f"m{i}")
            # Stop the writer before it ran: the frames stay queued.
            nursery.cancel_scope.cancel()
        await ws.send_text("m5")  # a direct send writes the queue first, in order
        await ws.send_text("end")
        with trio.fail_after(10):
            await done.wait()
    assert results == [[f"m{i}" for i in range(6)]]


async def test_aclose_while_the_writer_is_being_cancelled_still_closes_cleanly() -> None:
    peer_close: list[int] = []
    peer_saw_close = trio.Event()

    async def read_until_closed(ws: WebSocket) -> None:
        try:
            while True:
                await ws.receive()
        except WebSocketClosed as exc:
            peer_close.append(exc.code)
            peer_saw_close.set()

    async with trio.open_nursery() as outer:
        server: WebSocketServer = await outer.start(
            lambda task_status: serve_websocket(
                read_until_closed, ssl_context=_SERVER_TLS[0], task_status=task_status
            )
        )
        with trio.fail_after(1.0):  # not the 2 s close timeout
            async with connect(server.url) as ws, trio.open_nursery() as nursery:
                await nursery.start(ws.run_writer)
                await ws.send_text("hello")
                # Cancel the writer's scope, then close before the writer task has run
                # again: the close frame must still go out.
                nursery.cancel_scope.cancel()
                await ws.aclose()
            await peer_saw_close.wait()
        server.close()
    assert peer_close == [1000]


async def test_writer_lone_sends_go_out_inline_and_bursts_are_queued() -> None:
    results: list[list[str | bytes]] = []
    gate, done = trio.Event(), trio.Event()
    gate.set()
    async with (
        gated_server(results, gate, done) as server,
        connect(server.url) as ws,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(ws.run_writer)
        await trio.sleep(0.01)
        await ws.send_text("lone")
        assert ws._outgoing == []  # written by the sender itself: no writer wake-up
        await ws.send_text("burst")
        assert ws._outgoing != []  # right after another send: left for the writer
        await ws.send_text("end")
        with trio.fail_after(10):
            await done.wait()
        nursery.cancel_scope.cancel()
    assert results == [["lone", "burst"]]


async def test_writer_sending_loop_lets_other_tasks_run() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with (
        echo_server() as server,
        connect(server.url, headers={"Authorization": "Bearer good"}) as ws,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(ws.run_writer)
        nursery.start_soon(ticker)
        await trio.lowlevel.checkpoint()
        before = ticks
        for _ in range(160):
            await ws.send_text("x")
        assert ticks - before >= 160 // 16 - 1
        for _ in range(160):
            assert await ws.receive() == "x"
        nursery.cancel_scope.cancel()


# ---------------------------------------------------------------------- Trio's contract


@asynccontextmanager
async def burst_connection(count: int) -> AsyncIterator[WebSocket]:
    """A connection whose server wrote ``count`` messages at once; the first is read."""
    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            lambda task_status: serve_websocket(
                _burst_handler(count), ssl_context=_SERVER_TLS[0], task_status=task_status
            )
        )
        async with connect(server.url) as ws:
            assert await ws.receive() == "m0"
            while len(ws._pending) < count - 1:  # the rest may come in more than one read
                ws._pending.append(await ws.receive())
            yield ws
        server.close()


def _burst_handler(count: int) -> Callable[[WebSocket], Awaitable[None]]:
    async def burst(ws: WebSocket) -> None:
        await ws.send_texts([f"m{index}" for index in range(count)])
        with contextlib.suppress(WebSocketClosed):
            await ws.receive()

    return burst


async def test_receive_of_a_waiting_message_is_a_cancel_point_and_yields_every_16() -> None:
    async with burst_connection(200) as ws:
        before = len(ws._pending)
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.receive()
        assert scope.cancelled_caught
        assert len(ws._pending) == before  # nothing was taken
        for _ in range(5):
            with trio.testing.assert_checkpoints():
                for _ in range(16):
                    await ws.receive()


async def test_a_receive_loop_over_waiting_messages_lets_deadlines_fire(
    mock_clock: trio.testing.MockClock,
) -> None:
    async with burst_connection(1000) as ws, trio.open_nursery() as nursery:

        async def heartbeat() -> None:
            while True:
                mock_clock.jump(1)
                await trio.lowlevel.checkpoint()

        nursery.start_soon(heartbeat)
        received = 0
        with trio.move_on_after(5) as scope:
            while True:
                await ws.receive()
                received += 1
        assert scope.cancelled_caught
        assert received < 990  # the deadline fired long before the messages ran out
        nursery.cancel_scope.cancel()


async def test_each_failing_call_raises_a_fresh_exception_of_constant_size() -> None:
    async with (
        echo_server() as server,
        connect(server.url, headers={"Authorization": "Bearer good"}) as ws,
    ):
        await ws.send_text("close-now")
        with pytest.raises(WebSocketClosed):
            await ws.receive()
        seen: list[WebSocketClosed] = []
        for index in range(1000):
            try:
                if index % 2:
                    await ws.send_text("after")
                else:
                    await ws.receive()
            except WebSocketClosed as exc:
                seen.append(exc)
        assert len({id(exc) for exc in seen}) == 1000
        sizes = {len(traceback.extract_tb(exc.__traceback__)) for exc in seen[-100:]}
        assert max(sizes) <= 6
        record = ws.closed
        assert record is not None
        assert all(exc.__cause__ is record for exc in seen)
        assert record.__traceback__ is None  # the record itself is never raised
        assert (seen[-1].code, seen[-1].reason) == (4001, "asked to")


async def test_a_send_blocked_on_a_peer_that_stopped_reading_is_cancellable() -> None:
    results: list[list[str | bytes]] = []
    gate, done = trio.Event(), trio.Event()
    async with gated_server(results, gate, done) as server, connect(server.url) as ws:
        # The peer reads nothing: the socket fills up and the send waits.
        with trio.move_on_after(0.5) as scope:
            while True:
                await ws.send_bytes(b"\x00" * 500_000)
        assert scope.cancelled_caught
        gate.set()


# ---------------------------------------------------------------------- secrets


async def test_no_credential_in_any_log_record_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "sk-test-0123456789abcdef"
    caplog.set_level(logging.DEBUG)
    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            lambda task_status: serve_websocket(
                _echo, ssl_context=_SERVER_TLS[0], task_status=task_status
            )
        )
        headers = {"Authorization": f"Bearer {secret}", "x-goog-api-key": secret}
        async with connect(server.url + f"/v1?key={secret}&model=m", headers=headers) as ws:
            await ws.send_text("hello")
            assert await ws.receive() == "hello"
        server.close()
    assert any("[redacted]" in record.getMessage() for record in caplog.records)
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in str(record.args)


async def test_a_refusal_that_echoes_the_key_keeps_it_out_of_the_exception() -> None:
    secret = "sk-echoed-0123456789"

    def echo_the_key(request: object) -> tuple[int, str]:
        key = request.headers.get("Authorization", "")  # type: ignore[attr-defined]
        return 401, f'{{"error": "invalid key {key}"}}\n\x1b[31m' + "x" * 5000

    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            lambda task_status: serve_websocket(
                _echo,
                authorize=echo_the_key,
                ssl_context=_SERVER_TLS[0],
                task_status=task_status,
            )
        )
        with pytest.raises(WebSocketHandshakeError) as info:
            async with connect(server.url, headers={"Authorization": f"Bearer {secret}"}):
                pass
        server.close()
    message = str(info.value)
    assert secret not in message
    assert "invalid key [redacted]" in message
    assert "\x1b" not in message
    assert "\\x1b" in message
    assert len(message) < 400
    assert info.value.status == 401


# ---------------------------------------------------------------------- secrets, sans-IO


@hypothesis.given(
    text=st.text(max_size=600),
    secret=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=4),
)
def test_printable_text_holds_no_secret_no_control_character_and_is_short(
    text: str, secret: str
) -> None:
    shown = printable(text + secret + text, {secret})
    assert secret not in shown or secret in REDACTED
    assert all(ch.isprintable() for ch in shown)
    assert len(shown) <= MAX_SERVER_TEXT * 4 + 40  # escapes are at most 4 characters each


def test_secret_values_come_from_sensitive_headers_and_query_parameters() -> None:
    found = secret_values(
        {"Authorization": "Bearer sk-abc123", "x-goog-api-key": "AIzaKEY", "User-Agent": "me"},
        "wss://host/v1?key=QUERYKEY&model=gpt&access_token=TOK123",
    )
    assert {"Bearer sk-abc123", "sk-abc123", "AIzaKEY", "QUERYKEY", "TOK123"} <= found
    assert "me" not in found
    assert "gpt" not in found
    assert (
        redact_query("GET /v1?model=m&api_key=XYZ1&x=1") == "GET /v1?model=m&api_key=[redacted]&x=1"
    )


async def test_aclose_while_another_task_waits_in_receive_closes_and_wakes_it() -> None:
    async with echo_server() as server:
        async with (
            connect(server.url, headers={"Authorization": "Bearer good"}) as ws,
            trio.open_nursery() as nursery,
        ):
            outcome: list[BaseException] = []

            async def receive_forever() -> None:
                try:
                    await ws.receive()
                except WebSocketClosed as exc:
                    outcome.append(exc)

            nursery.start_soon(receive_forever)
            await trio.testing.wait_all_tasks_blocked()
            with trio.fail_after(5):
                await ws.aclose()
        assert len(outcome) == 1
        assert ws.closed is not None
