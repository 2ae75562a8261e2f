"""A lean WebSocket client and server for Trio, on the ``websockets`` sans-IO protocol.

Providers read messages in their own reader task, so this layer adds no task and no
channel hop of its own: :meth:`WebSocket.receive` parses every frame that one
``receive_some`` brought in and hands them out one by one, and writes go straight to the
stream under a lock. Frame masking and UTF-8 checks run in ``websockets``' C speedups.

Sending is fast because it rarely enters the scheduler: on a plain TCP socket a message
is written with one ``os.write`` when the kernel takes it whole, and only the rest goes
through ``send_all``. Every send is a cancel point (it raises ``Cancelled`` before
writing anything when its scope is cancelled), and it is a scheduling point whenever it
waits (lock held, socket full) and otherwise once every 16 messages, so a sending loop
cannot starve other tasks. A send cancelled while it waits for a full socket may leave
half a frame on the wire; the connection is then closed (code 1006) rather than reused.

Batching (opt-in): the system call per message is the biggest cost of sending. A
connection that runs :meth:`WebSocket.run_writer` in a nursery it outlives gets a writer
task: a send then encodes its frame, queues the bytes and returns, and the writer writes
everything queued so far with one system call once the sender yields, so a sender that
sends k messages between two of its scheduling points pays one write, not k. A send
waits while more than 1 MiB is queued (the peer reads slower than we write). A queued
frame is always written whole: cancelling a sender never leaves half a frame on the
wire. When the stream breaks, a later send raises :class:`WebSocketClosed`.

Errors: a peer's close or a broken stream raises :class:`WebSocketClosed` (with the close
code and reason), which providers turn into :class:`trio_bidi.errors.BidiConnectionError`.
"""

from __future__ import annotations

import logging
import math
import os
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import trio
from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHandshake, InvalidURI
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

__all__ = [
    "WebSocket",
    "WebSocketClosed",
    "WebSocketHandshakeError",
    "WebSocketServer",
    "open_websocket",
    "serve_websocket",
]

logger = logging.getLogger(__name__)

_RECEIVE_CHUNK = 256 * 1024
_DEFAULT_MAX_MESSAGE = 32 * 1024 * 1024
_CLOSE_TIMEOUT_S = 2.0
_WRITES_PER_YIELD = 16
_BURST_GAP_S = 0.001  # sends closer together than this go through the writer task
_HIGH_WATER = 1024 * 1024


class WebSocketClosed(Exception):
    """The WebSocket is closed (by the peer, by us, or because the stream broke).

    Args:
        code: The close code received (1006 when the stream ended without a close frame).
        reason: The close reason received.
        by_peer: True when the peer (or the network) closed it, False when we did.
    """

    def __init__(self, code: int, reason: str, *, by_peer: bool) -> None:
        super().__init__(f"WebSocket closed with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason
        self.by_peer = by_peer


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
    """One open WebSocket connection over a Trio stream.

    Not created directly: use :func:`open_websocket` or :func:`serve_websocket`.
    ``receive`` must be called from one task at a time; ``send_text`` from any task.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        protocol: ClientProtocol | ServerProtocol,
        *,
        request: Request | None = None,
    ) -> None:
        self._stream = stream
        self._protocol = protocol
        self._send_lock = trio.Lock()
        self._writes_since_yield = 0
        self._socket = stream.socket if isinstance(stream, trio.SocketStream) else None
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
        self._closed: WebSocketClosed | None = None
        #: The HTTP request that opened the connection (server side only).
        self.request = request

    @property
    def closed(self) -> WebSocketClosed | None:
        """Why the connection closed, or None while it is open."""
        return self._closed

    # ------------------------------------------------------------------ receiving

    async def receive(self) -> str | bytes:
        """Return the next message (``str`` for text, ``bytes`` for binary).

        Raises:
            WebSocketClosed: The connection is closed; no message will come.
        """
        pending = self._pending
        while not pending:
            if self._closed is not None:
                raise self._closed
            await self._fill()
        return pending.popleft()

    def receive_nowait(self) -> str | bytes | None:
        """Return a message already received and parsed, or None without waiting."""
        return self._pending.popleft() if self._pending else None

    async def _fill(self) -> None:
        try:
            data = await self._stream.receive_some(_RECEIVE_CHUNK)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._mark_closed(1006, f"stream broke: {exc}", by_peer=True)
            return
        protocol = self._protocol
        if data:
            protocol.receive_data(data)
        else:
            protocol.receive_eof()
        for event in protocol.events_received():
            if isinstance(event, Frame):
                self._on_frame(event)
        if self._writer_running:
            self._enqueue()
        else:
            chunks = protocol.data_to_send()
            if chunks or self._outgoing:
                async with self._send_lock:
                    await self._write_locked([*self._take_outgoing(), *chunks])
        if (
            protocol.state is State.CLOSED
            or (not data and self._closed is None)
            or protocol.close_expected()
        ):
            self._close_from_protocol()

    def _on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
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

    def _close_from_protocol(self) -> None:
        if self._closed is not None:
            return
        protocol = self._protocol
        rcvd = protocol.close_rcvd
        if rcvd is not None:
            self._mark_closed(
                rcvd.code, rcvd.reason, by_peer=protocol.close_rcvd_then_sent is not False
            )
        else:
            exc = protocol.parser_exc
            reason = f"protocol error: {exc}" if exc is not None else "connection ended"
            self._mark_closed(1006, reason, by_peer=True)

    def _mark_closed(self, code: int, reason: str, *, by_peer: bool) -> None:
        if self._closed is None:
            self._closed = WebSocketClosed(code, reason, by_peer=by_peer)

    # ------------------------------------------------------------------ sending

    async def send_text(self, text: str) -> None:
        """Send one text message.

        A cancel point; it yields to the scheduler when the socket is full and otherwise
        at least every few messages (see the module docstring).

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
            if self._outgoing_bytes > _HIGH_WATER:
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
        if self._writes_since_yield >= _WRITES_PER_YIELD:
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
        """Write the encoded frames with one ``os.write``; queue what the kernel left.

        Never waits, so a cancelled sender cannot leave half a frame: the writer task
        finishes whatever did not fit.
        """
        payload = b"".join(self._protocol.data_to_send())
        socket = self._socket
        if payload and socket is not None and self._closed is None and socket.fileno() >= 0:
            try:
                sent = os.write(socket.fileno(), payload)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                self._mark_closed(1006, f"stream broke: {exc}", by_peer=True)
                raise self._closed from exc  # type: ignore[misc]
            payload = payload[sent:]
        self._queue_for_writer((payload,))

    def _encode(self, payloads: Iterable[bytes], *, text: bool) -> None:
        if self._closed is not None:
            raise self._closed
        try:
            send = self._protocol.send_text if text else self._protocol.send_binary
            for payload in payloads:
                send(payload)
        except Exception as exc:  # websockets raises InvalidState once closing
            self._mark_closed(1006, f"cannot send: {exc}", by_peer=True)
            raise self._closed from exc  # type: ignore[misc]

    def _enqueue(self) -> None:
        """Queue what the protocol has to send and wake the writer."""
        self._queue_for_writer(self._protocol.data_to_send())

    def _queue_for_writer(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            if chunk:  # an empty chunk asks for end-of-stream: closing handles that
                self._outgoing.append(chunk)
                self._outgoing_bytes += len(chunk)
        if self._outgoing:
            if self._drained.is_set():
                self._drained = trio.Event()
            self._wake.set()

    async def run_writer(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Write batches of queued frames until cancelled or :meth:`aclose` (see the module).

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
                    while self._outgoing and not self._closed_for_writing():
                        async with self._send_lock:  # may raise Cancelled: nothing taken yet
                            await self._write_locked(self._take_outgoing())
                    self._drained.set()
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
        closed = self._closed
        if closed is not None and closed.by_peer:
            raise closed

    def _closed_for_writing(self) -> bool:
        closed = self._closed
        return closed is not None and closed.by_peer

    async def _flush_locked(self) -> None:
        # Frames still queued for a writer task that has stopped go first, in order.
        chunks = [*self._take_outgoing(), *self._protocol.data_to_send()]
        if chunks:
            await self._write_locked(chunks)

    def _take_outgoing(self) -> list[bytes]:
        chunks = self._outgoing
        self._outgoing = []
        self._outgoing_bytes = 0
        return chunks

    async def _write_locked(self, chunks: list[bytes]) -> None:
        payload = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if not payload:
            return
        socket = self._socket
        if socket is not None and self._closed is None:
            # Plain TCP: write now without a pass through the scheduler; only what the
            # kernel does not take right away goes through trio's send_all. Like trio's
            # own socket calls, this relies on Python ignoring SIGPIPE (EPIPE is raised).
            fd = socket.fileno()
            if fd >= 0:
                try:
                    sent = os.write(fd, payload)
                except BlockingIOError:
                    sent = 0
                except OSError as exc:
                    self._mark_closed(1006, f"stream broke: {exc}", by_peer=True)
                    raise self._closed from exc  # type: ignore[misc]
                if sent == len(payload):
                    return
                payload = payload[sent:]
        # The socket is full (or not a plain socket): this write yields.
        self._writes_since_yield = 0
        try:
            await self._stream.send_all(payload)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._mark_closed(1006, f"stream broke: {exc}", by_peer=True)
            raise self._closed from exc  # type: ignore[misc]
        except trio.Cancelled:
            # Part of a frame may be on the wire and the rest is dropped: the stream can
            # no longer be framed, so the connection is over (no close handshake either).
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
                if self._outgoing and not self._closed_for_writing():
                    # The writer stopped before it wrote everything (it was cancelled as
                    # we closed): the close frame may be among what is left.
                    async with self._send_lock:
                        await self._flush_locked()
                if self._closed is None and self._protocol.state is State.OPEN:
                    async with self._send_lock:
                        self._protocol.send_close(code, reason)
                        await self._flush_locked()
                    self._mark_closed(code, reason, by_peer=False)
                if not self._closed_for_writing() and self._protocol.state is not State.CLOSED:
                    await self._drain_until_closed()
            except (WebSocketClosed, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
            finally:
                self._stop_writer()
                self._mark_closed(code, reason, by_peer=False)
                await trio.aclose_forcefully(self._stream)

    async def _drain_until_closed(self) -> None:
        """Read until the peer answers our close frame or ends the stream."""
        protocol = self._protocol
        while protocol.state is not State.CLOSED and not protocol.eof_sent:
            data = await self._stream.receive_some(_RECEIVE_CHUNK)
            if not data:
                protocol.receive_eof()
                break
            protocol.receive_data(data)
            protocol.events_received()
            async with self._send_lock:
                await self._flush_locked()
        # The side that is to close TCP first (the server, once both close frames have
        # crossed) asked for end-of-stream: the caller closes the stream now instead of
        # waiting for the peer's end-of-stream until the close timeout.


def _ssl_context_for(secure: bool, ssl_context: ssl.SSLContext | None) -> ssl.SSLContext | None:
    if not secure:
        return None
    return ssl_context or ssl.create_default_context()


async def _read_handshake(
    stream: trio.abc.Stream, protocol: ClientProtocol | ServerProtocol
) -> Request | Response:
    while True:
        data = await stream.receive_some(_RECEIVE_CHUNK)
        if data:
            protocol.receive_data(data)
        else:
            protocol.receive_eof()
        events = protocol.events_received()
        for index, event in enumerate(events):
            if isinstance(event, (Request, Response)):
                # Frames that came in the same read stay queued for the caller, which
                # collects them with ``events_received()`` (a server may speak first).
                protocol.events[:0] = events[index + 1 :]
                return event
        if not data:
            raise WebSocketHandshakeError("connection closed during the opening handshake")


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
        headers: Extra HTTP headers for the opening request (for example auth).
        connect_timeout_s: Limit for TCP connect, TLS and the opening handshake.
        max_message_size: Largest message accepted from the server, in bytes.
        ssl_context: TLS settings for ``wss://`` (default: the system's trust store).

    Yields:
        The open connection.

    Raises:
        WebSocketHandshakeError: The server could not be reached or refused the upgrade.
    """
    try:
        uri = parse_uri(url)
    except InvalidURI as exc:
        raise WebSocketHandshakeError(f"invalid WebSocket URL {url!r}: {exc}") from exc
    protocol = ClientProtocol(uri, max_size=max_message_size)
    stream: trio.abc.Stream | None = None
    try:
        with trio.fail_after(connect_timeout_s):
            tcp = await trio.open_tcp_stream(uri.host, uri.port)
            stream = tcp
            context = _ssl_context_for(uri.secure, ssl_context)
            if context is not None:
                tls = trio.SSLStream(tcp, context, server_hostname=uri.host)
                await tls.do_handshake()
                stream = tls
            request = protocol.connect()
            for name, value in (headers or {}).items():
                request.headers[name] = value
            protocol.send_request(request)
            await stream.send_all(b"".join(protocol.data_to_send()))
            response = await _read_handshake(stream, protocol)
    except trio.TooSlowError as exc:
        if stream is not None:
            await trio.aclose_forcefully(stream)
        raise WebSocketHandshakeError(
            f"no WebSocket handshake with {uri.host}:{uri.port} within {connect_timeout_s} s"
        ) from exc
    except (OSError, trio.BrokenResourceError) as exc:
        if stream is not None:
            await trio.aclose_forcefully(stream)
        raise WebSocketHandshakeError(f"cannot connect to {url}: {exc}") from exc
    except BaseException:
        if stream is not None:
            await trio.aclose_forcefully(stream)
        raise
    if protocol.handshake_exc is not None or protocol.state is not State.OPEN:
        await trio.aclose_forcefully(stream)
        status = int(response.status_code) if isinstance(response, Response) else None
        body = (
            response.body.decode(errors="replace")[:500] if isinstance(response, Response) else ""
        )
        detail = f"HTTP {status}" + (f": {body.strip()}" if body.strip() else "")
        exc_info = protocol.handshake_exc
        raise WebSocketHandshakeError(
            f"server refused the WebSocket upgrade ({detail})", status=status
        ) from (exc_info if isinstance(exc_info, InvalidHandshake) else None)
    websocket = WebSocket(stream, protocol)
    # Frames that arrived in the same read as the handshake response.
    for event in protocol.events_received():
        if isinstance(event, Frame):
            websocket._on_frame(event)
    try:
        yield websocket
    finally:
        await websocket.aclose()


Handler = Callable[[WebSocket], Awaitable[None]]
Authorizer = Callable[[Request], "tuple[int, str] | None"]


class WebSocketServer:
    """A listening WebSocket server, as returned by :func:`serve_websocket`.

    Attributes:
        port: The TCP port it listens on.
        host: The address it listens on.
    """

    def __init__(self, host: str, port: int, cancel_scope: trio.CancelScope) -> None:
        self.host = host
        self.port = port
        self._cancel_scope = cancel_scope

    @property
    def url(self) -> str:
        """``ws://host:port`` of the server."""
        return f"ws://{self.host}:{self.port}"

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
        task_status: Receives the :class:`WebSocketServer` once listening.
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound_port = listeners[0].socket.getsockname()[1]

    async def serve_one(stream: trio.SocketStream) -> None:
        protocol = ServerProtocol(max_size=max_message_size)
        try:
            request = await _read_handshake(stream, protocol)
        except (WebSocketHandshakeError, trio.BrokenResourceError, OSError):
            await trio.aclose_forcefully(stream)
            return
        assert isinstance(request, Request)
        refusal = authorize(request) if authorize is not None else None
        if refusal is not None:
            response = protocol.reject(refusal[0], refusal[1])
        else:
            response = protocol.accept(request)
        protocol.send_response(response)
        try:
            await stream.send_all(b"".join(protocol.data_to_send()))
        except (trio.BrokenResourceError, OSError):
            await trio.aclose_forcefully(stream)
            return
        if refusal is not None or protocol.state is not State.OPEN:
            await trio.aclose_forcefully(stream)
            return
        websocket = WebSocket(stream, protocol, request=request)
        for event in protocol.events_received():
            if isinstance(event, Frame):
                websocket._on_frame(event)
        try:
            await handler(websocket)
        finally:
            await websocket.aclose()

    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            server = WebSocketServer(host, bound_port, scope)
            nursery.start_soon(trio.serve_listeners, serve_one, listeners)
            task_status.started(server)


def request_headers(request: Request | None) -> Headers:
    """Return the headers of a server-side connection's opening request (empty if none)."""
    return request.headers if request is not None else Headers()


def header_items(headers: Any) -> dict[str, str]:
    """Return HTTP headers as a plain dict with lower-case names."""
    return {str(k).lower(): str(v) for k, v in headers.raw_items()}
