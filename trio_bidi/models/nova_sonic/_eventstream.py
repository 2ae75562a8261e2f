"""The AWS event-stream binary framing: an encoder and an incremental decoder.

A message is a 12-byte prelude (total length, headers length, CRC32 of those 8 bytes),
typed headers, a payload and a CRC32 of everything before it, all big-endian. Bedrock's
bidirectional stream carries one message per Nova event each way.

botocore only decodes this format; the encoder here is what the client needs to send. The
decoder is a small buffer (`EventStreamDecoder`) fed with whatever the transport
delivers; it is tested against ``botocore.eventstream.EventStreamBuffer``.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Final, TypeAlias

import attrs

__all__ = [
    "HEADER_CACHE_SIZE",
    "EventStreamDecoder",
    "EventStreamError",
    "HeaderValue",
    "Int8",
    "Int16",
    "Int64",
    "Message",
    "Timestamp",
    "encode_headers",
    "encode_message",
]

MAX_HEADERS_LENGTH: Final = 128 * 1024
MAX_PAYLOAD_LENGTH: Final = 24 * 1024 * 1024
HEADER_CACHE_SIZE: Final = 32
_PRELUDE: Final = struct.Struct(">II")
_PRELUDE_WITH_CRC: Final = struct.Struct(">III")
_U32: Final = struct.Struct(">I")
_PRELUDE_LENGTH: Final = 12
_OVERHEAD: Final = _PRELUDE_LENGTH + 4


class EventStreamError(ValueError):
    """Bytes that are not a valid event-stream message (length, CRC, header type)."""


@attrs.frozen
class Int8:
    """A header value of the ``byte`` type (-128..127)."""

    value: int


@attrs.frozen
class Int16:
    """A header value of the ``short`` type."""

    value: int


@attrs.frozen
class Int64:
    """A header value of the ``long`` type."""

    value: int


@attrs.frozen
class Timestamp:
    """A header value of the ``timestamp`` type: milliseconds since the Unix epoch."""

    millis: int


HeaderValue: TypeAlias = bool | int | str | bytes | Int8 | Int16 | Int64 | Timestamp | uuid.UUID
"""A header value; a plain ``int`` is the 32-bit ``integer`` type."""


@attrs.frozen
class Message:
    """One decoded event-stream message.

    Attributes:
        headers: Header names to values (strings, bytes, ints, `Timestamp`...).
        payload: The payload bytes.
    """

    headers: Mapping[str, HeaderValue]
    payload: bytes


def _check_range(value: int, bits: int, what: str) -> None:
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if not low <= value <= high:
        raise EventStreamError(f"{what} header value {value} does not fit in {bits} bits")


def _encode_value(value: HeaderValue) -> bytes:
    # bool before int: True is an int.
    if value is True:
        return b"\x00"
    if value is False:
        return b"\x01"
    if isinstance(value, str):
        data = value.encode()
        if len(data) > 0xFFFF:
            raise EventStreamError("string header value longer than 65535 bytes")
        return b"\x07" + struct.pack(">H", len(data)) + data
    if isinstance(value, bytes):
        if len(value) > 0xFFFF:
            raise EventStreamError("bytes header value longer than 65535 bytes")
        return b"\x06" + struct.pack(">H", len(value)) + value
    if isinstance(value, Timestamp):
        _check_range(value.millis, 64, "timestamp")
        return b"\x08" + struct.pack(">q", value.millis)
    if isinstance(value, int):
        _check_range(value, 32, "integer")
        return b"\x04" + struct.pack(">i", value)
    if isinstance(value, Int8):
        _check_range(value.value, 8, "byte")
        return b"\x02" + struct.pack(">b", value.value)
    if isinstance(value, Int16):
        _check_range(value.value, 16, "short")
        return b"\x03" + struct.pack(">h", value.value)
    if isinstance(value, Int64):
        _check_range(value.value, 64, "long")
        return b"\x05" + struct.pack(">q", value.value)
    if isinstance(value, uuid.UUID):
        return b"\x09" + value.bytes
    raise TypeError(f"cannot encode a {type(value).__name__} as an event-stream header value")


def encode_headers(headers: Mapping[str, HeaderValue]) -> bytes:
    """Encode headers in order (name length, name, type, value).

    Raises:
        EventStreamError: A name is empty or longer than 255 bytes, or a value is out of
            range for its type.
        TypeError: A value of a type the format has no encoding for.
    """
    parts: list[bytes] = []
    for name, value in headers.items():
        raw_name = name.encode()
        if not 0 < len(raw_name) <= 255:
            raise EventStreamError(f"header name {name!r} must be 1 to 255 bytes long")
        parts.append(bytes((len(raw_name),)))
        parts.append(raw_name)
        parts.append(_encode_value(value))
    return b"".join(parts)


def encode_message(headers: Mapping[str, HeaderValue], payload: bytes = b"") -> bytes:
    """Encode one message: prelude with its CRC, headers, payload, message CRC.

    Raises:
        EventStreamError: Headers or payload exceed the format's limits.
    """
    encoded_headers = encode_headers(headers)
    if len(encoded_headers) > MAX_HEADERS_LENGTH:
        raise EventStreamError(f"headers are {len(encoded_headers)} bytes (max 131072)")
    if len(payload) > MAX_PAYLOAD_LENGTH:
        raise EventStreamError(f"payload is {len(payload)} bytes (max {MAX_PAYLOAD_LENGTH})")
    total = _OVERHEAD + len(encoded_headers) + len(payload)
    prelude = _PRELUDE.pack(total, len(encoded_headers))
    head = prelude + _U32.pack(zlib.crc32(prelude))
    crc = zlib.crc32(payload, zlib.crc32(encoded_headers, zlib.crc32(head)))
    return b"".join((head, encoded_headers, payload, _U32.pack(crc)))


def _decode_headers(data: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    view = memoryview(data)
    at, end = 0, len(data)
    try:
        while at < end:
            name_length = view[at]
            name = bytes(view[at + 1 : at + 1 + name_length]).decode()
            at += 1 + name_length
            kind = view[at]
            at += 1
            value: HeaderValue
            if kind == 0:
                value = True
            elif kind == 1:
                value = False
            elif kind == 2:
                value = Int8(struct.unpack_from(">b", view, at)[0])
                at += 1
            elif kind == 3:
                value = Int16(struct.unpack_from(">h", view, at)[0])
                at += 2
            elif kind == 4:
                value = struct.unpack_from(">i", view, at)[0]
                at += 4
            elif kind == 5:
                value = Int64(struct.unpack_from(">q", view, at)[0])
                at += 8
            elif kind in (6, 7):
                (length,) = struct.unpack_from(">H", view, at)
                raw = bytes(view[at + 2 : at + 2 + length])
                if len(raw) != length:
                    raise EventStreamError("header value runs past the headers")
                value = raw if kind == 6 else raw.decode()
                at += 2 + length
            elif kind == 8:
                value = Timestamp(struct.unpack_from(">q", view, at)[0])
                at += 8
            elif kind == 9:
                raw = bytes(view[at : at + 16])
                if len(raw) != 16:
                    raise EventStreamError("uuid header value runs past the headers")
                value = uuid.UUID(bytes=raw)
                at += 16
            else:
                raise EventStreamError(f"unknown header value type {kind} for {name!r}")
            if at > end:
                raise EventStreamError("header value runs past the headers")
            if name in headers:
                raise EventStreamError(f"duplicate header {name!r}")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError(f"malformed headers: {exc}") from exc
    return headers


class EventStreamDecoder:
    """Incremental decoder: feed bytes as they arrive, iterate over complete messages.

    Raises `EventStreamError` from iteration on a bad prelude, CRC or header;
    the stream cannot continue after that (its framing is lost).

    A stream repeats the same few header blocks (every Nova output chunk has the same
    three headers), so decoded headers are kept by their bytes, up to
    `HEADER_CACHE_SIZE` distinct blocks per decoder (later ones are decoded each
    time); `Message.headers` is therefore a read-only mapping.
    """

    __slots__ = ("_broken", "_buffer", "_header_cache")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._broken = False
        self._header_cache: dict[bytes, Mapping[str, HeaderValue]] = {}

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Add bytes received from the transport."""
        self._buffer += data

    def __iter__(self) -> Iterator[Message]:
        next_message = self._next_message
        while (message := next_message()) is not None:
            yield message

    def __next__(self) -> Message:
        message = self._next_message()
        if message is None:
            raise StopIteration
        return message

    def _fail(self, reason: str) -> EventStreamError:
        self._broken = True
        return EventStreamError(reason)

    def _next_message(self) -> Message | None:
        if self._broken:
            raise EventStreamError("the event stream is broken by an earlier framing error")
        buffer = self._buffer
        available = len(buffer)
        if available < _PRELUDE_LENGTH:
            return None
        total, headers_length, prelude_crc = _PRELUDE_WITH_CRC.unpack_from(buffer, 0)
        if zlib.crc32(buffer[:8]) != prelude_crc:
            raise self._fail("prelude CRC mismatch")
        if headers_length > MAX_HEADERS_LENGTH:
            raise self._fail(f"headers length {headers_length} exceeds the maximum")
        payload_length = total - headers_length - _OVERHEAD
        if payload_length < 0 or payload_length > MAX_PAYLOAD_LENGTH:
            raise self._fail(f"invalid message length {total}")
        if available < total:
            return None
        if available == total:
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(buffer[:total])
            del buffer[:total]
        end = total - 4
        if zlib.crc32(memoryview(data)[:end]) != _U32.unpack_from(data, end)[0]:
            raise self._fail("message CRC mismatch")
        headers_end = _PRELUDE_LENGTH + headers_length
        raw_headers = data[_PRELUDE_LENGTH:headers_end]
        headers = self._header_cache.get(raw_headers)
        if headers is None:
            try:
                headers = MappingProxyType(_decode_headers(raw_headers))
            except EventStreamError:
                self._broken = True
                raise
            if len(self._header_cache) < HEADER_CACHE_SIZE:
                self._header_cache[raw_headers] = headers
        return Message(headers, data[headers_end:end])
