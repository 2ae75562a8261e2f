"""A lean WebSocket client and server for Trio, on the ``websockets`` sans-IO protocol.

Providers read messages in their own reader task, so this layer adds no task and no
channel hop of its own: `WebSocket.receive` parses every frame that one read of the
connection brought in and hands them out one by one, and writes go straight to the
connection under a lock. ``websockets`` does the handshake and every control frame;
whole, unfragmented data frames are cut out of the received bytes and encoded by
`trio_bidi._transport._frames` directly (its parser and frame objects cost more than
the rest of a message's receive path). Frame masking runs in ``websockets``' C
speedups. The bytes
travel over a `Wire`: plaintext for ``ws://``, TLS done
in place (``ssl.SSLObject`` over memory BIOs) for ``wss://``; both write with one
``os.write`` when the kernel takes the bytes at once (POSIX) and decrypt everything a
socket read brought in at once.

Trio's contract: every `WebSocket.receive` and every send is a cancel point (it
raises ``Cancelled`` before taking a message or writing anything when its scope is
cancelled), and a schedule point whenever it waits and otherwise once every 16 calls, so
a loop over them cannot starve other tasks or hold off a deadline. A send cancelled
while it waits for a full socket may leave half a frame on the wire; the connection is
then closed (code 1006) rather than reused.

Batching (opt-in): the system call per message is the biggest cost of sending. A
connection that runs `WebSocket.run_writer` in a nursery it outlives gets a writer
task: a send then encodes its frame, queues the bytes and returns, and the writer writes
everything queued so far with one system call once the sender yields, so a sender that
sends k messages between two of its scheduling points pays one write, not k. A send
that comes alone (more than 1 ms after the previous one, nothing queued) writes inline
instead of waking the writer. Replies the reader owes the peer (pongs, the close echo)
go through the same queue. Memory is bounded: while more than 1 MiB is queued, sends
wait and the reader stops reading (a peer that floods pings and never reads gets
backpressure, not an ever-growing queue). A queued frame is always written whole:
cancelling a sender never leaves half a frame on the wire.

Errors: a peer's close or a broken stream raises `WebSocketClosed` (with the close
code and reason), which providers turn into
[`BidiConnectionError`][trio_bidi.errors.BidiConnectionError].
Each raise is a new exception chained to the record of why the connection closed. A
text message that is not valid UTF-8 fails the connection with close code 1007. Header
values that carry credentials never reach a log line (``websockets`` logs headers at
DEBUG level), and server-chosen text in an exception (an HTTP body, a close reason) has
the credentials scrubbed, its control characters escaped and its length limited.
"""

from __future__ import annotations

import logging
import math
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import trio
from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.exceptions import InvalidURI
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from ._transport._frames import FrameEncoder, FrameSplitter
from ._transport._secrets import RedactingLogger, printable, secret_values
from ._transport._wire import Wire, open_wire, wrap_server_wire

__all__ = [
    "WebSocket",
    "WebSocketClosed",
    "WebSocketHandshakeError",
    "WebSocketServer",
    "open_websocket",
    "serve_websocket",
]

logger = logging.getLogger(__name__)

_DEFAULT_MAX_MESSAGE = 32 * 1024 * 1024
_CLOSE_TIMEOUT_S = 2.0
_BUSY_CLOSE_POLL_S = 0.005  # closing while another task reads: how often to look again
_CALLS_PER_YIELD = 16
_BURST_GAP_S = 0.001  # sends closer together than this go through the writer task
_HIGH_WATER = 1024 * 1024
_MAX_HEAD = 64 * 1024  # an HTTP head longer than this is left to websockets to refuse
_CLIENT_LOGGER = logging.getLogger("websockets.client")
_SERVER_LOGGER = logging.getLogger("websockets.server")


class WebSocketClosed(Exception):
    """The WebSocket is closed (by the peer, by us, or because the stream broke).

    Args:
        code: The close code received (1006 when the stream ended without a close frame,
            1007 when the peer sent a text message that is not UTF-8).
        reason: The close reason (printable, at most about 200 characters).
        by_peer: True when the peer (or the network) closed it, False when we did.
    """

    def __init__(self, code: int, reason: str, *, by_peer: bool) -> None:
        super().__init__(f"WebSocket closed with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason
        self.by_peer = by_peer

    def fresh(self) -> WebSocketClosed:
        """Return a new exception that says the same (to raise, chained to this one)."""
        return WebSocketClosed(self.code, self.reason, by_peer=self.by_peer)


class WebSocketHandshakeError(Exception):
    """The opening handshake failed (refused connection, HTTP error status, bad URL).

    Args:
        message: What went wrong.
        status: The HTTP status the server answered with, when it answered.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WebSocket:
    """One open WebSocket connection over a `Wire`.

    Not created directly: use `open_websocket` or `serve_websocket`.
    ``receive`` must be called from one task at a time; ``send_text`` from any task.
    """

    def __init__(
        self,
        wire: Wire,
        protocol: ClientProtocol | ServerProtocol,
        *,
        request: Request | None = None,
        secrets: frozenset[str] = frozenset(),
        leftover: bytes | None = None,
    ) -> None:
        self._wire = wire
        self._protocol = protocol
        # The receive fast path, when the handshake left websockets' parser at a frame
        # boundary (``leftover``: what came after the HTTP head in the same read).
        self._splitter: FrameSplitter | None = None
        # The send fast path (websockets encodes when an extension was negotiated).
        self._encoder: FrameEncoder | None = None
        if not protocol.extensions:
            self._encoder = FrameEncoder(masked=isinstance(protocol, ClientProtocol))
        if leftover is not None:
            splitter = FrameSplitter(protocol, leftover)
            if splitter.active:
                self._splitter = splitter
            elif leftover:
                protocol.receive_data(leftover)
        self._secrets = secrets
        self._send_lock = trio.Lock()
        self._writes_since_yield = 0
        self._receives_since_yield = 0
        # Bytes queued for the writer task (while it runs), and its wake-up/drained events.
        self._outgoing: list[bytes] = []
        self._last_send_at = -math.inf
        self._outgoing_bytes = 0
        self._wake = trio.Event()
        self._drained = trio.Event()
        self._drained.set()
        self._writer_started = self._writer_running = False
        self._writer_scope = trio.CancelScope()
        self._pending: deque[str | bytes] = deque()
        self._fragments: list[bytes] = []
        self._fragment_is_text = True
        # Why the connection closed: a record that is never raised itself (each raise is
        # a fresh copy chained to it), and whether the stream itself is broken.
        self._closed: WebSocketClosed | None = None
        self._broken = False
        #: The HTTP request that opened the connection (server side only).
        self.request = request

    @property
    def closed(self) -> WebSocketClosed | None:
        """Why the connection closed, or None while it is open."""
        return self._closed

    @property
    def is_tls(self) -> bool:
        """Whether the connection is encrypted (``wss://``)."""
        return self._wire.is_tls

    @property
    def _stream(self) -> Wire:
        # The old name of the connection's byte stream, for code that drops it with
        # ``trio.aclose_forcefully(ws._stream)``; `abort` says it directly.
        return self._wire

    def abort(self) -> None:
        """Drop the TCP connection at once, without a close handshake (never raises).

        Meant for emulators and tests that play a peer vanishing; the next receive or
        send raises `WebSocketClosed` with code 1006.
        """
        self._wire.close_now()

    def _closed_error(self) -> WebSocketClosed:
        closed = self._closed
        assert closed is not None
        error = closed.fresh()
        error.__cause__ = closed
        return error

    # ------------------------------------------------------------------ receiving

    async def receive(self) -> str | bytes:
        """Return the next message (``str`` for text, ``bytes`` for binary).

        A cancel point; a schedule point when it waits for the peer and otherwise at
        least once every 16 calls.

        Raises:
            WebSocketClosed: The connection is closed; no message will come.
        """
        pending = self._pending
        if pending:
            self._receives_since_yield += 1
            if self._receives_since_yield >= _CALLS_PER_YIELD:
                self._receives_since_yield = 0
                await trio.lowlevel.checkpoint()
            else:
                await trio.lowlevel.checkpoint_if_cancelled()
            if pending:
                return pending.popleft()
        while not pending:
            if self._closed is not None:
                await trio.lowlevel.checkpoint()
                raise self._closed_error()
            self._receives_since_yield = 0
            await self._fill()
        return pending.popleft()

    def receive_nowait(self) -> str | bytes | None:
        """Return a message already received and parsed, or None without waiting."""
        return self._pending.popleft() if self._pending else None

    async def _fill(self) -> None:
        try:
            data = await self._wire.receive_some()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._mark_broken(exc)
            return
        protocol = self._protocol
        splitter = self._splitter
        if splitter is not None and splitter.active:
            if data:
                splitter.feed(data, self._on_message, self._absorb_events)
            else:
                splitter.hand_over()
                protocol.receive_eof()
                self._absorb_events()
        else:
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            self._absorb_events()
        if self._writer_running:
            self._enqueue()
            if self._queued_bytes() > _HIGH_WATER:
                # Replies (pongs) pile up faster than the peer reads them: stop reading
                # until the writer got them out.
                await self._drained.wait()
        else:
            chunks = protocol.data_to_send()
            if chunks or self._outgoing or self._wire.unsent:
                async with self._send_lock:
                    await self._write_locked([*self._take_outgoing(), *chunks])
        if (
            protocol.state is State.CLOSED
            or (not data and self._closed is None)
            or protocol.close_expected()
        ):
            self._close_from_protocol()

    async def _take_early_events(self) -> None:
        """Handle frames that came in the same read as the handshake.

        A server may speak first, or fail at once; what those frames call for (a pong, a
        close frame) is sent now.
        """
        splitter = self._splitter
        if splitter is not None and splitter.active:
            splitter.feed(b"", self._on_message, self._absorb_events)
        self._absorb_events()
        protocol = self._protocol
        if protocol.state is State.CLOSED or protocol.close_expected():
            self._close_from_protocol()
        chunks = protocol.data_to_send()
        if chunks:
            try:
                async with self._send_lock:
                    await self._write_locked(chunks)
            except WebSocketClosed:
                pass  # the first receive or send reports it

    def _absorb_events(self) -> None:
        for event in self._protocol.events_received():
            if self._closed is not None and self._closed.code == 1007:
                break  # the connection failed: nothing after the bad frame counts
            if isinstance(event, Frame):
                self._on_frame(event)

    def _on_message(self, opcode: int, payload: bytes) -> bool:
        """Take a whole message from the fast path; False: the connection failed."""
        if opcode == 1:
            try:
                self._pending.append(payload.decode())
            except UnicodeDecodeError as exc:
                self._fail(1007, "invalid UTF-8 in a text message", exc)
                return False
        else:
            self._pending.append(payload)
        return True

    def _on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        try:
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                if frame.fin:
                    self._pending.append(
                        bytes(frame.data).decode() if opcode is Opcode.TEXT else bytes(frame.data)
                    )
                else:
                    self._fragment_is_text = opcode is Opcode.TEXT
                    self._fragments = [bytes(frame.data)]
            elif opcode is Opcode.CONT:
                self._fragments.append(bytes(frame.data))
                if frame.fin:
                    whole = b"".join(self._fragments)
                    self._fragments = []
                    self._pending.append(whole.decode() if self._fragment_is_text else whole)
            elif opcode is Opcode.CLOSE:
                self._close_from_protocol()
        except UnicodeDecodeError as exc:
            self._fail(1007, "invalid UTF-8 in a text message", exc)

    def _fail(self, code: int, reason: str, cause: BaseException) -> None:
        """Fail the connection for a protocol error of the peer (close frame ``code``)."""
        self._fragments = []
        if self._closed is not None:
            return
        logger.debug("code=<%d>, reason=<%s> | failing the WebSocket connection", code, reason)
        try:
            self._protocol.fail(code, reason)
        except Exception:  # websockets refuses once closing: the stream ends all the same
            logger.debug("the WebSocket protocol could not send close code %d", code)
        self._mark_closed(code, reason, by_peer=True, cause=cause)

    def _close_from_protocol(self) -> None:
        if self._closed is not None:
            return
        protocol = self._protocol
        rcvd = protocol.close_rcvd
        if rcvd is not None:
            self._mark_closed(
                rcvd.code, rcvd.reason, by_peer=protocol.close_rcvd_then_sent is not False
            )
            return
        exc = protocol.parser_exc
        if exc is not None:
            sent = protocol.close_sent
            self._mark_closed(
                sent.code if sent is not None else 1006,
                f"protocol error: {exc}",
                by_peer=True,
                cause=exc,
            )
        else:
            self._mark_closed(1006, "connection ended", by_peer=True)

    def _mark_closed(
        self, code: int, reason: str, *, by_peer: bool, cause: BaseException | None = None
    ) -> None:
        if self._closed is None:
            self._closed = WebSocketClosed(code, printable(reason, self._secrets), by_peer=by_peer)
            self._closed.__cause__ = cause

    def _mark_broken(self, exc: BaseException) -> None:
        self._broken = True
        self._mark_closed(1006, f"stream broke: {exc}", by_peer=True, cause=exc)
        self._wake.set()  # a writer task has nothing left to do: it ends

    # ------------------------------------------------------------------ sending

    async def send_text(self, text: str) -> None:
        """Send one text message.

        A cancel point; a schedule point when it waits (lock held, socket full, more
        than 1 MiB queued) and otherwise at least once every 16 messages.

        Raises:
            WebSocketClosed: The connection is closed.
        """
        await self._send_frames((text.encode(),), text=True)

    async def send_texts(self, texts: Iterable[str]) -> None:
        """Send several text messages with one write to the stream.

        Raises:
            WebSocketClosed: The connection is closed.
        """
        await self._send_frames([text.encode() for text in texts], text=True)

    async def send_bytes(self, data: bytes) -> None:
        """Send one binary message.

        Raises:
            WebSocketClosed: The connection is closed.
        """
        await self._send_frames((data,), text=False)

    async def _send_frames(self, payloads: Iterable[bytes], *, text: bool) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._writer_running:
            write_now = self._lone_send()
            self._encode(payloads, text=text)
            if write_now:
                self._write_now_or_enqueue()
            else:
                self._enqueue()
            if self._queued_bytes() > _HIGH_WATER:
                self._writes_since_yield = 0
                await self._drained.wait()
                self._raise_if_broken()
                return
        else:
            lock = self._send_lock
            if lock.locked():
                await lock.acquire()
            else:
                lock.acquire_nowait()
            try:
                self._encode(payloads, text=text)
                await self._flush_locked()
            finally:
                lock.release()
        self._writes_since_yield += 1
        if self._writes_since_yield >= _CALLS_PER_YIELD:
            self._writes_since_yield = 0
            await trio.lowlevel.cancel_shielded_checkpoint()

    def _lone_send(self) -> bool:
        """With a writer task: may this send try its system call itself?

        Batching pays only for sends in quick succession; for a lone frame (real-time
        audio: one every 20 ms) waking the writer costs a task switch that an inline
        write does not. Only when nothing is queued or being written, to keep the order.
        """
        now = time.perf_counter()
        lone = now - self._last_send_at >= _BURST_GAP_S
        self._last_send_at = now
        return lone and not self._outgoing and not self._send_lock.locked()

    def _write_now_or_enqueue(self) -> None:
        """Hand the encoded frames to the wire now; the writer finishes what is left.

        Never waits, so a cancelled sender cannot leave half a frame: the wire keeps
        what the kernel did not take, and the writer task writes it.
        """
        payload = b"".join(self._protocol.data_to_send())
        if self._broken:
            raise self._closed_error()
        try:
            self._wire.write_nowait(payload)
        except (trio.BrokenResourceError, OSError) as exc:
            self._mark_broken(exc)
            raise self._closed_error() from None
        if self._wire.unsent:
            self._signal_writer()

    def _encode(self, payloads: Iterable[bytes], *, text: bool) -> None:
        if self._closed is not None:
            raise self._closed_error()
        protocol = self._protocol
        encoder = self._encoder
        if (
            encoder is not None
            and protocol.state is State.OPEN
            and not protocol.expect_continuation_frame
        ):
            # The fast path: after whatever websockets has queued (a pong), in order.
            writes = protocol.writes
            opcode = 1 if text else 2
            for payload in payloads:
                writes.append(encoder.encode(opcode, payload))
            return
        try:
            send = protocol.send_text if text else protocol.send_binary
            for payload in payloads:
                send(payload)
        except Exception as exc:  # websockets raises InvalidState once closing
            self._mark_closed(1006, f"cannot send: {exc}", by_peer=True, cause=exc)
            raise self._closed_error() from None

    def _queued_bytes(self) -> int:
        return self._outgoing_bytes + self._wire.unsent

    def _enqueue(self) -> None:
        """Queue what the protocol has to send and wake the writer."""
        for chunk in self._protocol.data_to_send():
            if chunk:  # an empty chunk asks for end-of-stream: closing handles that
                self._outgoing.append(chunk)
                self._outgoing_bytes += len(chunk)
        if self._outgoing:
            self._signal_writer()

    def _signal_writer(self) -> None:
        if self._drained.is_set():
            self._drained = trio.Event()
        self._wake.set()

    async def run_writer(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Write batches of queued frames until cancelled or `aclose` (see the module).

        Start it once per connection with ``nursery.start(ws.run_writer)`` in a nursery
        that the connection outlives (a provider's reader nursery, for example). While it
        runs, sends queue their frames and return; when it stops, sends write directly
        again, after whatever was still queued.

        Raises:
            RuntimeError: It was started before.
        """
        if self._writer_started:
            raise RuntimeError("run_writer runs once per connection")
        self._writer_started = self._writer_running = True
        try:
            with self._writer_scope:
                task_status.started()
                while True:
                    await self._wake.wait()
                    self._wake = trio.Event()
                    while (self._outgoing or self._wire.unsent) and not self._broken:
                        async with self._send_lock:  # may raise Cancelled: nothing taken yet
                            await self._write_locked(self._take_outgoing())
                    self._drained.set()
                    if self._broken:
                        return
        except WebSocketClosed:
            pass
        finally:
            # Whatever is still queued goes out with the next direct write (or aclose).
            self._writer_running = False
            self._drained.set()

    def _stop_writer(self) -> None:
        self._writer_running = False
        self._writer_scope.cancel()

    def _raise_if_broken(self) -> None:
        if self._broken:
            raise self._closed_error()

    async def _flush_locked(self) -> None:
        # Frames still queued for a writer task that has stopped go first, in order.
        chunks = [*self._take_outgoing(), *self._protocol.data_to_send()]
        if chunks or self._wire.unsent:
            await self._write_locked(chunks)

    def _take_outgoing(self) -> list[bytes]:
        chunks = self._outgoing
        self._outgoing = []
        self._outgoing_bytes = 0
        return chunks

    async def _write_locked(self, chunks: list[bytes]) -> None:
        if self._broken:
            raise self._closed_error()
        payload = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        wire = self._wire
        try:
            # Written at once when the kernel takes it all (no pass through the
            # scheduler); only the rest waits for the socket.
            wire.write_nowait(payload)
            if wire.unsent:
                self._writes_since_yield = 0
                await wire.flush()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._mark_broken(exc)
            raise self._closed_error() from None
        except trio.Cancelled:
            # Part of a frame may be on the wire and the rest is dropped: the stream can
            # no longer be framed, so the connection is over (no close handshake either).
            self._broken = True
            self._mark_closed(1006, "stream broke: a send was cancelled mid-frame", by_peer=True)
            raise

    # ------------------------------------------------------------------ closing

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (close handshake, bounded in time), then the stream.

        Idempotent; never raises for a connection that is already broken.
        """
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + _CLOSE_TIMEOUT_S
            try:
                if self._writer_running:
                    if self._closed is None and self._protocol.state is State.OPEN:
                        self._protocol.send_close(code, reason)
                        self._enqueue()
                        self._mark_closed(code, reason, by_peer=False)
                    await self._drained.wait()
                self._stop_writer()
                if (self._outgoing or self._wire.unsent) and not self._broken:
                    # The writer stopped before it wrote everything (it was cancelled as
                    # we closed): the close frame may be among what is left.
                    async with self._send_lock:
                        await self._flush_locked()
                if self._closed is None and self._protocol.state is State.OPEN:
                    async with self._send_lock:
                        self._protocol.send_close(code, reason)
                        await self._flush_locked()
                    self._mark_closed(code, reason, by_peer=False)
                while not self._broken and self._protocol.state is not State.CLOSED:
                    try:
                        await self._drain_until_closed()
                        break
                    except trio.BusyResourceError:
                        # Another task is reading (a connection read in its consumer's
                        # task): its read takes in the peer's answer. Look again shortly,
                        # and read ourselves once it has left; the close timeout bounds it.
                        await trio.sleep(_BUSY_CLOSE_POLL_S)
            except (
                WebSocketClosed,
                trio.BrokenResourceError,
                trio.ClosedResourceError,
                OSError,
            ):
                pass
            finally:
                self._stop_writer()
                self._mark_closed(code, reason, by_peer=False)
                if trio.current_time() >= scope.deadline:
                    logger.debug(
                        "no close handshake within %s s: closing the socket", _CLOSE_TIMEOUT_S
                    )
                await self._wire.aclose()

    async def _drain_until_closed(self) -> None:
        """Read until the peer answers our close frame or ends the stream."""
        protocol = self._protocol
        wire = self._wire
        if self._splitter is not None and self._splitter.active:
            self._splitter.hand_over()  # websockets reads the close handshake
            protocol.events_received()
        while True:
            # Replies still owed (the echo of the peer's close frame) go out first.
            async with self._send_lock:
                await self._flush_locked()
            if protocol.state is State.CLOSED or protocol.eof_sent:
                break
            data = await wire.receive_some()
            if not data:
                protocol.receive_eof()
                break
            protocol.receive_data(data)
            protocol.events_received()
        # The side that is to close TCP first (the server, once both close frames have
        # crossed) asked for end-of-stream: the caller closes the stream now instead of
        # waiting for the peer's end-of-stream until the close timeout.


def _ssl_context_for(secure: bool, ssl_context: ssl.SSLContext | None) -> ssl.SSLContext | None:
    if not secure:
        return None
    return ssl_context or ssl.create_default_context()


async def _read_handshake(
    wire: Wire, protocol: ClientProtocol | ServerProtocol
) -> tuple[Request | Response, bytes | None]:
    """Read the peer's HTTP head; return it with the bytes that followed it, if split.

    ``websockets`` is fed the HTTP head alone when it can be (the usual case), so its
    parser sits at a frame boundary afterwards and the frames that came in the same read
    (a server may speak first) are returned for the receive fast path. Otherwise
    (``None``: a body, or no head end within 64 KiB) it gets every byte, as it would.
    """
    head: bytearray | None = bytearray()
    while True:
        data = await wire.receive_some()
        after: bytes | None = None
        if head is not None and data:
            head += data
            end = head.find(b"\r\n\r\n")
            if end >= 0:
                protocol.receive_data(bytes(head[: end + 4]))
                after = bytes(head[end + 4 :])
                head = None
            elif len(head) > _MAX_HEAD:
                protocol.receive_data(bytes(head))
                head = None
        elif data:
            protocol.receive_data(data)
        else:
            if head:
                protocol.receive_data(bytes(head))
            head = None
            protocol.receive_eof()
        events = protocol.events_received()
        for index, event in enumerate(events):
            if isinstance(event, (Request, Response)):
                # Frames that came in the same read stay queued for the caller, which
                # collects them with ``events_received()`` (a server may speak first).
                protocol.events[:0] = events[index + 1 :]
                return event, after
        if after:
            # The head was not all (a body follows): websockets reads the rest itself.
            protocol.receive_data(after)
            events = protocol.events_received()
            for index, event in enumerate(events):
                if isinstance(event, (Request, Response)):
                    protocol.events[:0] = events[index + 1 :]
                    return event, None
        if protocol.handshake_exc is not None:
            # Not HTTP at all (websockets gave up parsing): no answer will make sense.
            raise WebSocketHandshakeError(
                f"invalid opening handshake: {printable(str(protocol.handshake_exc))}"
            )
        if not data:
            raise WebSocketHandshakeError("connection closed during the opening handshake")


def _describe_refusal(
    response: Response, handshake_exc: BaseException | None, secrets: frozenset[str]
) -> str:
    status = int(response.status_code)
    body = (
        printable(response.body.decode(errors="replace").strip(), secrets) if response.body else ""
    )
    detail = f"HTTP {status}" + (f": {body}" if body else "")
    if status == 101 and handshake_exc is not None:
        detail += f"; {printable(str(handshake_exc), secrets)}"
    return f"server refused the WebSocket upgrade ({detail})"


@asynccontextmanager
async def open_websocket(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    connect_timeout_s: float = 10.0,
    max_message_size: int = _DEFAULT_MAX_MESSAGE,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[WebSocket]:
    """Open a client WebSocket; close it when the block ends.

    Args:
        url: ``ws://`` or ``wss://`` URL.
        headers: Extra HTTP headers for the opening request (for example auth). Values of
            headers that carry credentials are never logged nor put in exceptions.
        connect_timeout_s: Limit for TCP connect, TLS and the opening handshake.
        max_message_size: Largest message accepted from the server, in bytes.
        ssl_context: TLS settings for ``wss://`` (default: the system's trust store);
            its certificate checks and ALPN protocols apply.

    Yields:
        The open connection.

    Raises:
        WebSocketHandshakeError: The server could not be reached or refused the upgrade.
    """
    secrets = secret_values(headers, url)
    try:
        uri = parse_uri(url)
    except InvalidURI as exc:
        raise WebSocketHandshakeError(
            f"invalid WebSocket URL {printable(url, secrets)!r}: {printable(str(exc), secrets)}"
        ) from None
    where = f"{uri.host}:{uri.port}"
    protocol = ClientProtocol(
        uri, max_size=max_message_size, logger=RedactingLogger(_CLIENT_LOGGER, secrets)
    )
    wire: Wire | None = None
    try:
        with trio.fail_after(connect_timeout_s):
            wire = await open_wire(
                uri.host,
                uri.port,
                ssl_context=_ssl_context_for(uri.secure, ssl_context),
                server_hostname=uri.host,
            )
            request = protocol.connect()
            for name, value in (headers or {}).items():
                request.headers[name] = value
            protocol.send_request(request)
            await wire.write(b"".join(protocol.data_to_send()))
            response, leftover = await _read_handshake(wire, protocol)
    except trio.TooSlowError:
        if wire is not None:
            wire.close_now()
        raise WebSocketHandshakeError(
            f"no WebSocket handshake with {where} within {connect_timeout_s} s"
        ) from None
    except (OSError, trio.BrokenResourceError, WebSocketHandshakeError) as exc:
        if wire is not None:
            wire.close_now()
        raise WebSocketHandshakeError(
            f"cannot connect to {where}: {printable(str(exc), secrets)}"
        ) from None
    except BaseException:
        if wire is not None:
            wire.close_now()
        raise
    if (
        protocol.handshake_exc is not None
        or not isinstance(response, Response)
        or response.status_code != 101
    ):
        wire.close_now()
        status = int(response.status_code) if isinstance(response, Response) else None
        message = (
            _describe_refusal(response, protocol.handshake_exc, secrets)
            if isinstance(response, Response)
            else "server sent no HTTP response"
        )
        raise WebSocketHandshakeError(message, status=status)
    websocket = WebSocket(wire, protocol, secrets=secrets, leftover=leftover)
    try:
        # Frames that arrived in the same read as the handshake response (a close frame
        # among them is reported by the first receive, with its code and reason).
        await websocket._take_early_events()
        yield websocket
    finally:
        await websocket.aclose()


Handler = Callable[[WebSocket], Awaitable[None]]
Authorizer = Callable[[Request], "tuple[int, str] | None"]


class WebSocketServer:
    """A listening WebSocket server, as returned by `serve_websocket`.

    Attributes:
        port: The TCP port it listens on.
        host: The address it listens on.
    """

    def __init__(
        self, host: str, port: int, cancel_scope: trio.CancelScope, *, tls: bool = False
    ) -> None:
        self.host = host
        self.port = port
        self._cancel_scope = cancel_scope
        self._tls = tls

    @property
    def url(self) -> str:
        """``ws://host:port`` (``wss://`` with TLS) of the server."""
        return f"{'wss' if self._tls else 'ws'}://{self.host}:{self.port}"

    def close(self) -> None:
        """Stop listening and end every connection's handler."""
        self._cancel_scope.cancel()


async def serve_websocket(
    handler: Handler,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    authorize: Authorizer | None = None,
    max_message_size: int = _DEFAULT_MAX_MESSAGE,
    ssl_context: ssl.SSLContext | None = None,
    task_status: trio.TaskStatus[WebSocketServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve WebSocket connections until cancelled (``nursery.start`` returns the server).

    Args:
        handler: Called with each open connection; the connection closes when it returns.
        host: Address to bind (loopback by default).
        port: Port to bind (0 picks a free one).
        authorize: Called with each opening request; returns None to accept or
            ``(status, text)`` to refuse with that HTTP status.
        max_message_size: Largest message accepted from a client, in bytes.
        ssl_context: A server-side TLS context to serve ``wss://`` (None: ``ws://``).
        task_status: Receives the `WebSocketServer` once listening.
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound_port = listeners[0].socket.getsockname()[1]
    protocol_logger = RedactingLogger(_SERVER_LOGGER)

    async def serve_one(stream: trio.SocketStream) -> None:
        protocol = ServerProtocol(max_size=max_message_size, logger=protocol_logger)
        try:
            wire = await wrap_server_wire(stream, ssl_context)
        except (trio.BrokenResourceError, OSError):
            return  # the socket is closed already
        try:
            request, leftover = await _read_handshake(wire, protocol)
            assert isinstance(request, Request)
            refusal = authorize(request) if authorize is not None else None
            if refusal is not None:
                response = protocol.reject(refusal[0], refusal[1])
            else:
                response = protocol.accept(request)
            protocol.send_response(response)
            await wire.write(b"".join(protocol.data_to_send()))
        except (WebSocketHandshakeError, trio.BrokenResourceError, OSError):
            wire.close_now()
            return
        except BaseException:
            wire.close_now()
            raise
        if refusal is not None or protocol.state is not State.OPEN:
            wire.close_now()
            return
        websocket = WebSocket(wire, protocol, request=request, leftover=leftover)
        try:
            await websocket._take_early_events()
            await handler(websocket)
        finally:
            await websocket.aclose()

    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            server = WebSocketServer(host, bound_port, scope, tls=ssl_context is not None)
            nursery.start_soon(trio.serve_listeners, serve_one, listeners)
            task_status.started(server)


def request_headers(request: Request | None) -> Headers:
    """Return the headers of a server-side connection's opening request (empty if none)."""
    return request.headers if request is not None else Headers()


def header_items(headers: Any) -> dict[str, str]:
    """Return HTTP headers as a plain dict with lower-case names."""
    return {str(k).lower(): str(v) for k, v in headers.raw_items()}
