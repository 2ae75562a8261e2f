"""A small HTTP/2 client for one long bidirectional request, on Trio with ``h2``.

Bedrock's bidirectional stream is a single ``POST`` whose request body (events in) and
response body (events out) stay open together. `Http2Client` opens TLS with ALPN
``h2``, sends the request, and then:

- one writer task (`Http2Client.run_writer`) is the only task that writes to the TLS
  stream (Trio's ``SSLStream`` refuses concurrent ``send_all``); everyone else changes the
  ``h2`` state and wakes it. It sends DATA only within the peer's flow-control window.
- the reader calls `Http2Client.receive_events` and acknowledges DATA it has
  consumed (`Http2Client.acknowledge`), so the receive window reopens as the
  application keeps up; the initial receive window is raised well above the 64 KiB
  default so long audio output never stalls on window updates.
"""

from __future__ import annotations

import logging
import ssl
from collections import deque
from collections.abc import Sequence
from typing import Final

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import trio

from ._http2_events import (
    BodyData,
    BodyEnd,
    ConnectionTerminated,
    Http2Error,
    ResponseEvent,
    ResponseHeaders,
    StreamReset,
)

__all__ = [
    "BodyData",
    "BodyEnd",
    "ConnectionTerminated",
    "Http2Client",
    "Http2Error",
    "ResponseEvent",
    "ResponseHeaders",
    "StreamReset",
]

logger = logging.getLogger(__name__)

RECEIVE_WINDOW: Final = 8 * 1024 * 1024
_READ_SIZE: Final = 65536
_MAX_BUFFERED: Final = 1024 * 1024
_WRITE_TIMEOUT_S: Final = 10.0


class Http2Client:
    """One TLS HTTP/2 connection carrying one streaming request.

    Build it with `connect`; it never starts tasks itself: the owner runs
    `run_writer` in its nursery and reads with `receive_events`.
    """

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self._h2 = h2.connection.H2Connection(config=config)
        self._stream_id: int | None = None
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._end_requested = False
        self._ended = False
        self._closed = False
        self._failure: str | None = None
        self._wake = trio.Event()
        self._progress = trio.Event()
        self._idle = False
        self._writer_running = False

    # ------------------------------------------------------------------ opening

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
    ) -> Http2Client:
        """Open TCP + TLS (ALPN ``h2``) and send the connection preface.

        ``ssl_context`` gets ALPN set to ``["h2"]``.

        Raises:
            Http2Error: The server cannot be reached, TLS fails, or ALPN did not pick h2.
        """
        ssl_context.set_alpn_protocols(["h2"])
        try:
            tcp = await trio.open_tcp_stream(host, port)
        except OSError as exc:
            raise Http2Error(f"cannot connect to {host}:{port}: {exc}") from exc
        stream = trio.SSLStream(
            tcp, ssl_context, server_hostname=server_hostname or host, https_compatible=True
        )
        try:
            await stream.do_handshake()
        except (trio.BrokenResourceError, ssl.SSLError, OSError) as exc:
            await trio.aclose_forcefully(stream)
            raise Http2Error(f"TLS handshake with {host}:{port} failed: {exc}") from exc
        if stream.selected_alpn_protocol() != "h2":
            await trio.aclose_forcefully(stream)
            raise Http2Error(f"{host}:{port} does not speak HTTP/2 (ALPN h2 refused)")
        client = cls(stream)
        client._h2.initiate_connection()
        client._h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: RECEIVE_WINDOW})
        client._h2.increment_flow_control_window(RECEIVE_WINDOW)
        return client

    def start_request(self, headers: Sequence[tuple[str, str]]) -> None:
        """Queue the request's HEADERS (pseudo-headers first); the body stays open."""
        if self._stream_id is not None:
            raise Http2Error("the request was already started")
        self._stream_id = self._h2.get_next_available_stream_id()
        self._h2.send_headers(self._stream_id, list(headers), end_stream=False)
        self._kick()

    # ------------------------------------------------------------------ writing

    @property
    def broken(self) -> bool:
        """True once the transport failed or closed."""
        return self._failure is not None or self._closed

    def _check(self) -> None:
        if self._failure is not None:
            raise Http2Error(self._failure)
        if self._closed:
            raise Http2Error("the HTTP/2 connection is closed")

    def _kick(self) -> None:
        self._idle = False
        self._wake.set()

    def queue_data(self, data: bytes) -> None:
        """Queue request body bytes without waiting (the writer sends them in order).

        Raises:
            Http2Error: The connection failed, closed, or the body was ended.
        """
        self._check()
        if self._end_requested:
            raise Http2Error("the request body was already ended")
        self._pending.append(data)
        self._pending_bytes += len(data)
        self._kick()

    async def send_data(self, data: bytes) -> None:
        """Queue request body bytes; waits while more than 1 MiB is unsent.

        A checkpoint on every call.

        Raises:
            Http2Error: The connection failed, closed, or the body was ended.
        """
        await trio.lowlevel.checkpoint()
        self.queue_data(data)
        while self._pending_bytes > _MAX_BUFFERED:
            await self._progress_wait()
            self._check()

    async def wait_writable(self) -> None:
        """A checkpoint that waits while more than 1 MiB of body is unsent.

        Raises:
            Http2Error: The connection failed or closed meanwhile.
        """
        await trio.lowlevel.checkpoint()
        while self._pending_bytes > _MAX_BUFFERED:
            self._check()
            await self._progress_wait()
        self._check()

    def end_body(self) -> None:
        """Queue END_STREAM after the queued body bytes."""
        self._end_requested = True
        self._kick()

    async def _progress_wait(self) -> None:
        await self._progress.wait()

    def _notify_progress(self) -> None:
        self._progress.set()
        self._progress = trio.Event()

    @property
    def unsent(self) -> int:
        """Body bytes queued but not yet handed to the TLS stream."""
        return self._pending_bytes

    async def wait_flushed(self) -> None:
        """Wait until every queued byte (and END_STREAM, if asked) was written.

        Raises:
            Http2Error: The connection failed before that.
        """
        while self._pending or (self._end_requested and not self._ended) or not self._idle:
            self._check()
            if self._writer_running:
                await self._progress_wait()
                continue
            # The writer is gone (cancelled with its nursery): write from here; what
            # the peer's flow-control window holds back cannot go without a reader.
            await self.flush_now()
            if self._pending:
                raise Http2Error("the peer's flow-control window holds back the rest")
        await trio.lowlevel.checkpoint()

    def _move_pending_into_h2(self) -> None:
        stream_id = self._stream_id
        if stream_id is None:
            return
        while self._pending:
            window = self._h2.local_flow_control_window(stream_id)
            if window <= 0:
                return
            chunk = self._pending[0]
            size = min(len(chunk), window, self._h2.max_outbound_frame_size)
            self._h2.send_data(stream_id, chunk[:size])
            self._pending_bytes -= size
            if size == len(chunk):
                self._pending.popleft()
            else:
                self._pending[0] = chunk[size:]
        if self._end_requested and not self._ended:
            self._h2.end_stream(stream_id)
            self._ended = True

    async def flush_now(self) -> None:
        """Write what can be sent now, from the calling task (only before the writer runs).

        Raises:
            Http2Error: The transport broke.
        """
        self._check()
        try:
            self._move_pending_into_h2()
            out = self._h2.data_to_send()
            if out:
                await self._write(out)
            else:
                await trio.lowlevel.checkpoint()
            self._idle = not self._pending
        except h2.exceptions.ProtocolError as exc:
            self._fail(f"HTTP/2 protocol error while sending: {exc}")
            raise Http2Error(f"HTTP/2 protocol error while sending: {exc}") from exc
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._fail(f"the connection broke while sending: {exc or type(exc).__name__}")
            raise Http2Error(f"the connection broke while sending: {exc}") from exc

    async def run_writer(
        self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Write everything the connection has to send until it closes or breaks.

        Never raises on a broken transport: the failure is kept and reported by the next
        send or read.
        """
        task_status.started()
        self._writer_running = True
        try:
            while not self._closed:
                self._wake = trio.Event()
                try:
                    self._move_pending_into_h2()
                except h2.exceptions.ProtocolError as exc:
                    self._fail(f"HTTP/2 protocol error while sending: {exc}")
                    return
                out = self._h2.data_to_send()
                if out:
                    await self._write(out)
                    self._notify_progress()
                    continue
                self._idle = True
                self._notify_progress()
                await self._wake.wait()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            if not self._closed:
                self._fail(f"the connection broke while sending: {exc or type(exc).__name__}")
        finally:
            self._writer_running = False
            self._notify_progress()

    async def _write(self, data: bytes) -> None:
        # A send_all cancelled half way leaves the TLS stream broken; finish the write
        # (bounded) so that cancellation lands between writes and closing can still
        # send the end of the stream.
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + _WRITE_TIMEOUT_S
            await self._stream.send_all(data)
        if scope.cancelled_caught:
            raise trio.BrokenResourceError(f"no write progress in {_WRITE_TIMEOUT_S:g} s")
        await trio.lowlevel.checkpoint_if_cancelled()

    def _fail(self, reason: str) -> None:
        if self._failure is None:
            self._failure = reason
            logger.debug("reason=<%s> | HTTP/2 connection failed", reason)
        self._notify_progress()
        self._kick()

    # ------------------------------------------------------------------ reading

    async def receive_events(self) -> list[ResponseEvent]:
        """Read from the socket once and return what happened to the request.

        An empty list means nothing concerning the request arrived (settings, pings...).

        Raises:
            Http2Error: The transport ended or broke, or the peer broke HTTP/2.
        """
        self._check()
        try:
            data = await self._stream.receive_some(_READ_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._fail(f"the connection broke while reading: {exc or type(exc).__name__}")
            raise Http2Error(f"the connection broke while reading: {exc}") from exc
        if not data:
            self._fail("the server closed the connection")
            raise Http2Error("the server closed the connection")
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._fail(f"HTTP/2 protocol error: {exc}")
            raise Http2Error(f"HTTP/2 protocol error from the server: {exc}") from exc
        out: list[ResponseEvent] = []
        for event in events:
            if getattr(event, "stream_id", self._stream_id) not in (self._stream_id, 0):
                continue
            if isinstance(event, h2.events.ResponseReceived):
                headers = {str(k): str(v) for k, v in event.headers or ()}
                out.append(ResponseHeaders(int(headers.get(":status", "0")), headers))
            elif isinstance(event, h2.events.DataReceived):
                out.append(BodyData(event.data or b"", event.flow_controlled_length or 0))
            elif isinstance(event, h2.events.StreamEnded):
                out.append(BodyEnd())
            elif isinstance(event, h2.events.StreamReset):
                out.append(StreamReset(int(event.error_code or 0)))
            elif isinstance(event, h2.events.ConnectionTerminated):
                out.append(ConnectionTerminated(int(event.error_code or 0), event.additional_data))
        # Window updates, settings acks and ping answers wait in h2 for the writer.
        self._kick()
        return out

    def acknowledge(self, flow_length: int) -> None:
        """Tell the peer ``flow_length`` bytes of body were consumed (reopens the window)."""
        if flow_length <= 0 or self._stream_id is None or self.broken:
            return
        try:
            self._h2.acknowledge_received_data(flow_length, self._stream_id)
        except h2.exceptions.ProtocolError as exc:
            logger.debug("error=<%s> | acknowledgement not sent", exc)
        self._kick()

    # ------------------------------------------------------------------ closing

    async def aclose(self) -> None:
        """Close the TLS stream (no TLS close-notify wait); idempotent."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        self._kick()
        self._notify_progress()
        await trio.aclose_forcefully(self._stream)
