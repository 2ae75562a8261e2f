"""Bytes to and from one TCP connection, in plaintext or through TLS.

`Wire` is what the WebSocket writes to and reads from. Two things make it fast:

- Writing rarely enters the scheduler: `Wire.write_nowait` hands the bytes to the
  kernel with one ``os.write`` on the socket (POSIX only; elsewhere every write goes
  through Trio's ``send_all``) and keeps whatever the kernel did not take for
  `Wire.flush`, which must run before anything else is written.
- TLS is done here, with the standard library's ``ssl.SSLObject`` over two memory BIOs,
  instead of ``trio.SSLStream``: a receive reads up to 256 KiB of ciphertext from the
  socket and decrypts every complete record it holds in one go (``SSLStream`` hands over
  about one record per call), and a write encrypts synchronously, so the ``os.write``
  fast path serves ``wss://`` as well.

The bytes written are always in the order they were given: what a write could not hand
over at once stays at the head of the line until `Wire.flush` has sent it. One task
at a time may `Wire.flush` or `Wire.receive_some` (the WebSocket's locks see
to that). TLS renegotiation is not supported (TLS 1.3 has none; a TLS 1.2 peer asking for
it breaks the connection). A peer's ``close_notify`` and a plain end of stream both read
as the end of the stream: the WebSocket's own close handshake tells a clean end from a
broken one.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import threading

import trio

__all__ = ["CAN_WRITE_FD", "Wire", "open_wire", "wrap_server_wire"]

#: ``os.write`` on a socket's file descriptor works on POSIX only (not on Windows).
CAN_WRITE_FD = os.name == "posix"
_SOCKET_READ = 256 * 1024
# One TLS record holds at most 16 KiB of plaintext, and each read returns at most one.
# Reads of this size also stay below malloc's mmap threshold: a 256 KiB read buffer that
# is shrunk to the message (the usual case) is mmapped, remapped and unmapped on every
# read, which once cost half the receive path on this machine.
_TLS_READ = 16 * 1024
# The socket is read into one buffer per thread (os.readv) and only the bytes received
# are copied out, for the same reason.
_read_buffers = threading.local()


def _read_buffer() -> bytearray:
    try:
        buffer: bytearray = _read_buffers.buffer
    except AttributeError:
        buffer = _read_buffers.buffer = bytearray(_SOCKET_READ)
    return buffer


class Wire(trio.abc.AsyncResource):
    """One TCP connection, plaintext (this class) or TLS (`_TLSWire`).

    Args:
        stream: The connected socket stream; the wire owns and closes it.
    """

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._fd = stream.socket.fileno() if CAN_WRITE_FD else -1
        self._unsent = b""
        self._flushing = False
        # Whether the last read took all there was (then the next one waits first).
        self._socket_drained = True
        self._reads_since_yield = 0

    @property
    def unsent(self) -> int:
        """Bytes accepted by `write_nowait` that are not written yet."""
        return len(self._unsent)

    @property
    def is_tls(self) -> bool:
        """Whether the bytes are encrypted (``wss://``)."""
        return False

    def _seal(self, data: bytes) -> bytes:
        return data

    def write_nowait(self, data: bytes) -> None:
        """Accept ``data`` and write as much of it as the kernel takes now, without waiting.

        Whatever is left is written by the next `flush`, before any later bytes.

        Raises:
            trio.BrokenResourceError: The connection broke (the peer reset it).
        """
        if data:
            data = self._seal(data)
        if self._unsent:
            data = self._unsent + data
        if not data:
            return
        fd = self._fd
        if fd < 0 or self._flushing:
            self._unsent = data
            return
        try:
            sent = os.write(fd, data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._unsent = b""
            raise trio.BrokenResourceError(f"socket write failed: {exc}") from exc
        self._unsent = data[sent:] if sent < len(data) else b""

    async def flush(self) -> None:
        """Write everything not written yet, waiting while the socket is full.

        Not a checkpoint when there is nothing to write. A cancelled flush may leave part
        of the bytes on the wire and drops the rest: the stream is then unusable.

        Raises:
            trio.BrokenResourceError: The connection broke.
            trio.ClosedResourceError: The wire was closed.
        """
        while self._unsent:
            data = self._unsent
            self._unsent = b""
            self._flushing = True
            try:
                await self.stream.send_all(data)
            finally:
                self._flushing = False

    async def write(self, data: bytes) -> None:
        """Write ``data`` (after anything not written yet), waiting only when it must."""
        self.write_nowait(data)
        if self._unsent:
            await self.flush()

    async def receive_some(self) -> bytes:
        """Return the next bytes received (``b""`` at the end of the stream).

        Raises:
            trio.BrokenResourceError: The connection broke.
            trio.ClosedResourceError: The wire was closed.
        """
        return await self._read_socket()

    async def _read_socket(self) -> bytes:
        """Read up to 256 KiB from the socket (``b""`` at its end).

        On POSIX it reads the file descriptor directly. When the last read took all
        there was, it waits for the socket first instead of trying a read that would
        fail (one message per write: the common case for real-time audio); otherwise it
        reads at once, a cancel point each time and a schedule point every 16 reads.
        """
        fd = self._fd
        if fd < 0:
            return await self.stream.receive_some(_SOCKET_READ)
        if self._socket_drained:
            await trio.lowlevel.wait_readable(fd)
            self._reads_since_yield = 0
        else:
            self._reads_since_yield += 1
            if self._reads_since_yield >= 16:
                self._reads_since_yield = 0
                await trio.lowlevel.checkpoint()
            else:
                await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            # Another task may have closed the wire while this one waited, and the
            # descriptor's number may already belong to a new socket: never read it then.
            fd = self._fd
            if fd < 0:
                return await self.stream.receive_some(_SOCKET_READ)  # raises: closed
            try:
                buffer = _read_buffer()
                count = os.readv(fd, (buffer,))
                data = bytes(memoryview(buffer)[:count])
                break
            except BlockingIOError:
                await trio.lowlevel.wait_readable(fd)
            except OSError as exc:
                if self._fd < 0:
                    raise trio.ClosedResourceError("the wire was closed") from None
                raise trio.BrokenResourceError(f"socket read failed: {exc}") from exc
        self._socket_drained = len(data) < _SOCKET_READ
        return data

    def close_now(self) -> None:
        """Close the socket at once (no waiting, never raises)."""
        self._fd = -1
        self._unsent = b""
        self.stream.socket.close()

    async def aclose(self) -> None:
        """Close the socket (a checkpoint; never raises)."""
        self.close_now()
        await trio.lowlevel.checkpoint()


class _TLSWire(Wire):
    """TLS over one TCP connection: ``ssl.SSLObject`` with an incoming and outgoing BIO."""

    def __init__(
        self,
        stream: trio.SocketStream,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        server_hostname: str | None,
    ) -> None:
        super().__init__(stream)
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(
            self._incoming,
            self._outgoing,
            server_side=server_side,
            server_hostname=server_hostname,
        )

    @property
    def is_tls(self) -> bool:
        """Whether the bytes are encrypted (``wss://``)."""
        return True

    @property
    def ssl_object(self) -> ssl.SSLObject:
        """The TLS session (peer certificate, cipher, ALPN protocol)."""
        return self._ssl

    def _seal(self, data: bytes) -> bytes:
        sslobj = self._ssl
        view = memoryview(data)
        try:
            while view:
                written = sslobj.write(view)
                view = view[written:]
        except ssl.SSLWantReadError as exc:  # only a renegotiation would ask for this
            raise trio.BrokenResourceError("the TLS peer asked for a renegotiation") from exc
        except ssl.SSLError as exc:
            raise trio.BrokenResourceError(f"TLS error: {exc}") from exc
        return self._outgoing.read()

    def _take_outgoing(self) -> None:
        # Bytes the TLS layer wrote on its own (handshake, session tickets, alerts).
        pending = self._outgoing.read()
        if pending:
            self._unsent += pending

    async def handshake(self) -> None:
        """Run the TLS handshake (certificate and host name checks per the context).

        Raises:
            ssl.SSLCertVerificationError: The server's certificate was not accepted.
            ssl.SSLError: The handshake failed otherwise.
            trio.BrokenResourceError: The connection broke during the handshake.
        """
        sslobj = self._ssl
        while True:
            try:
                sslobj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._take_outgoing()
                await self.flush()
                data = await self._read_socket()
                if not data:
                    raise trio.BrokenResourceError(
                        "the peer closed the connection during the TLS handshake"
                    ) from None
                self._incoming.write(data)
        self._take_outgoing()
        await self.flush()

    async def receive_some(self) -> bytes:
        """Return all the plaintext that the next socket read decrypts to.

        Raises:
            trio.BrokenResourceError: The connection broke, or a TLS error.
            trio.ClosedResourceError: The wire was closed.
        """
        sslobj = self._ssl
        incoming = self._incoming
        read_socket = False
        while True:
            chunks: list[bytes] = []
            ended = False
            # Decrypt only while there is something to decrypt: a read that finds
            # nothing raises SSLWantReadError, which costs about 2 us (two per message
            # at real-time rates, where each socket read brings one record). With
            # OpenSSL's read-ahead off (Python never turns it on) nothing else is
            # buffered: the ciphertext not decrypted yet is in the incoming BIO, the
            # plaintext not taken yet is in ``pending()``.
            try:
                while incoming.pending or incoming.eof or sslobj.pending():
                    chunk = sslobj.read(_TLS_READ)
                    if not chunk:
                        ended = True
                        break
                    chunks.append(chunk)
            except ssl.SSLWantReadError:
                pass  # the rest of a record is still on its way
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                ended = True  # close_notify, or the TCP stream ended without it
            except ssl.SSLError as exc:
                raise trio.BrokenResourceError(f"TLS error: {exc}") from exc
            if self._outgoing.pending:
                self._take_outgoing()  # sent with the next write or flush
            if chunks:
                if not read_socket:
                    await trio.lowlevel.checkpoint()
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
            if ended:
                if not read_socket:
                    await trio.lowlevel.checkpoint()
                return b""
            data = await self._read_socket()
            read_socket = True
            if data:
                self._incoming.write(data)
            else:
                self._incoming.write_eof()

    def close_now(self) -> None:
        """Send ``close_notify`` if the socket takes it at once, then close the socket."""
        if self._fd >= 0 and not self._flushing:
            # SSLWantReadError: the peer's close_notify is not awaited.
            with contextlib.suppress(ssl.SSLError):
                self._ssl.unwrap()
            try:
                self._take_outgoing()
                self.write_nowait(b"")
            except trio.BrokenResourceError:
                pass
        super().close_now()


async def open_wire(
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> Wire:
    """Connect over TCP and, with ``ssl_context``, run the TLS handshake.

    The socket is closed at once if anything fails (nothing is left for the GC).

    Args:
        host: Host to connect to.
        port: TCP port.
        ssl_context: TLS settings (certificate checks, ALPN); None for plaintext.
        server_hostname: Name for SNI and the certificate check (default: ``host``).

    Returns:
        The connected wire.

    Raises:
        OSError: The connection or the TLS handshake failed (``ssl.SSLError`` is one).
        trio.BrokenResourceError: The peer closed the connection during the handshake.
    """
    stream = await trio.open_tcp_stream(host, port)
    if ssl_context is None:
        return Wire(stream)
    return await _start_tls(
        stream, ssl_context, server_side=False, server_hostname=server_hostname or host
    )


async def wrap_server_wire(stream: trio.SocketStream, ssl_context: ssl.SSLContext | None) -> Wire:
    """Wrap an accepted connection (running the server's TLS handshake with a context).

    Raises:
        OSError: The TLS handshake failed.
        trio.BrokenResourceError: The peer closed the connection during the handshake.
    """
    if ssl_context is None:
        return Wire(stream)
    return await _start_tls(stream, ssl_context, server_side=True, server_hostname=None)


async def _start_tls(
    stream: trio.SocketStream,
    ssl_context: ssl.SSLContext,
    *,
    server_side: bool,
    server_hostname: str | None,
) -> Wire:
    try:
        wire = _TLSWire(
            stream, ssl_context, server_side=server_side, server_hostname=server_hostname
        )
        await wire.handshake()
    except BaseException:
        stream.socket.close()
        raise
    return wire
