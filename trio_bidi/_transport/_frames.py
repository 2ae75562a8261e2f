"""Fast paths for data frames: whole, unfragmented frames are parsed and encoded here.

``websockets``' sans-IO parser is a chain of generators that costs about 4 us per frame;
at real-time rates (one audio message per read) that is a fifth of what a received
message costs. `FrameSplitter` cuts the received bytes into whole frames itself
and hands out the common case (a text or binary message in one frame, no reserved bits,
masked exactly when the peer must mask) directly. Every other frame (ping, pong, close,
fragments, anything malformed) goes to ``websockets`` as the whole frame's bytes, so
its parser always starts at a frame boundary and keeps every rule it enforces (pongs,
the close handshake, protocol errors). Once the connection is no longer open, or when a
frame is larger than the message size limit, every byte goes to ``websockets`` from then
on. The splitter only buffers a frame whose length is within the limit, so memory stays
bounded as before.

It starts only when the opening handshake left ``websockets``' parser at a frame
boundary (the handshake fed it the HTTP head alone) and no extension was negotiated.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

from websockets.client import ClientProtocol
from websockets.protocol import SERVER, State
from websockets.server import ServerProtocol

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the C speedups are missing on this platform
    from websockets.utils import apply_mask

__all__ = ["FrameEncoder", "FrameSplitter"]

_OPEN = State.OPEN
_HEAD16 = struct.Struct("!BBH")
_HEAD64 = struct.Struct("!BBQ")
_NO_LIMIT = 64 * 1024 * 1024  # frames larger than this are never buffered here

#: Receives (opcode, payload) of a whole data frame; returns False to stop the splitter.
OnMessage = Callable[[int, bytes], bool]
#: Called after a frame went to ``websockets``, to take the events it produced.
OnProtocolEvents = Callable[[], None]


class FrameSplitter:
    """Cut received bytes into frames; unfragmented data frames bypass ``websockets``.

    Args:
        protocol: The connection's ``websockets`` protocol, open, its parser at a frame
            boundary.
        leftover: Bytes that came after the opening handshake in the same read.
    """

    __slots__ = ("_limit", "_masked", "_protocol", "_rx", "active")

    def __init__(self, protocol: ClientProtocol | ServerProtocol, leftover: bytes) -> None:
        self._protocol = protocol
        self._rx = bytearray(leftover)
        self._masked = protocol.side is SERVER  # frames from a client are masked
        limits = [
            size
            for size in (protocol.max_message_size, protocol.max_fragment_size)
            if size is not None
        ]
        self._limit = min([*limits, _NO_LIMIT])
        #: False once every byte goes to ``websockets`` (never True again).
        self.active = not protocol.extensions and protocol.state is _OPEN

    def hand_over(self) -> None:
        """Give what is buffered to ``websockets`` and let it parse everything from now on."""
        self.active = False
        if self._rx:
            data = bytes(self._rx)
            self._rx.clear()
            self._protocol.receive_data(data)

    def feed(self, data: bytes, on_message: OnMessage, on_events: OnProtocolEvents) -> None:
        """Parse ``data`` (after what is buffered): messages in order, the rest to websockets.

        ``on_message`` gets each fast-path message; ``on_events`` is called after each
        frame that went to ``websockets``. Stops (and clears the buffer) when
        ``on_message`` returns False.
        """
        rx = self._rx
        if rx:
            rx += data
            buffer: bytes | bytearray = rx
        else:
            buffer = data
        protocol = self._protocol
        masked = self._masked
        limit = self._limit
        pos = 0
        size = len(buffer)
        while size - pos >= 2:
            first = buffer[pos]
            second = buffer[pos + 1]
            length = second & 0x7F
            head = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(buffer[head : head + 2], "big")
                head += 2
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buffer[head : head + 8], "big")
                head += 8
            is_masked = second & 0x80
            if is_masked:
                head += 4
            if length > limit:
                # Never buffered here: websockets reads it (and fails it if too big).
                self._keep(buffer, pos)
                self.hand_over()
                on_events()
                return
            end = head + length
            if end > size:
                break
            opcode = first & 0x0F
            if (
                (first & 0xF0) == 0x80  # FIN, no reserved bit
                and (opcode == 1 or opcode == 2)
                and bool(is_masked) == masked
                and protocol.state is _OPEN
                and protocol.current_size is None  # no fragmented message under way
            ):
                payload = buffer[head:end]
                if is_masked:
                    payload = apply_mask(payload, buffer[head - 4 : head])
                if not on_message(opcode, bytes(payload)):
                    rx.clear()
                    self.active = False
                    return
            else:
                protocol.receive_data(bytes(buffer[pos:end]))
                on_events()
                if protocol.state is not _OPEN or protocol.parser_exc is not None:
                    self._keep(buffer, end)
                    self.hand_over()
                    on_events()
                    return
            pos = end
        self._keep(buffer, pos)

    def _keep(self, buffer: bytes | bytearray, pos: int) -> None:
        """Buffer what is left of ``buffer`` from ``pos`` (an incomplete frame)."""
        rx = self._rx
        if buffer is rx:
            del rx[:pos]
        else:
            rx.clear()
            if pos < len(buffer):
                rx += buffer[pos:]


_MASKS_PER_DRAW = 256


class FrameEncoder:
    """Encode whole text and binary frames (what ``websockets`` does, for less).

    ``websockets`` builds a ``Frame`` object per message and draws each client mask
    with a system call (``secrets.token_bytes(4)``); here the header is packed directly
    and masks come from one ``os.urandom`` draw per 256 frames (still the operating
    system's CSPRNG, as RFC 6455 asks). Masking itself runs in ``websockets``' C
    speedups.

    Args:
        masked: Whether frames are masked (a client's are, a server's are not).
    """

    __slots__ = ("_masked", "_masks", "_next")

    def __init__(self, *, masked: bool) -> None:
        self._masked = masked
        self._masks = b""
        self._next = 0

    def encode(self, opcode: int, payload: bytes) -> bytes:
        """Return the bytes of one final (FIN) frame of ``opcode`` carrying ``payload``."""
        first = 0x80 | opcode
        size = len(payload)
        if not self._masked:
            if size < 126:
                return bytes((first, size)) + payload
            if size < 65536:
                return _HEAD16.pack(first, 126, size) + payload
            return _HEAD64.pack(first, 127, size) + payload
        at = self._next
        if at >= len(self._masks):
            self._masks = os.urandom(4 * _MASKS_PER_DRAW)
            at = 0
        self._next = at + 4
        mask = self._masks[at : at + 4]
        if size < 126:
            head = bytes((first, 0x80 | size))
        elif size < 65536:
            head = _HEAD16.pack(first, 0xFE, size)
        else:
            head = _HEAD64.pack(first, 0xFF, size)
        return head + mask + apply_mask(payload, mask)
