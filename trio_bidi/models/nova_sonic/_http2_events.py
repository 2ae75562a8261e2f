"""What the HTTP/2 client reports about its request (no ``h2`` import: cheap to load)."""

from __future__ import annotations

import attrs

__all__ = [
    "BodyData",
    "BodyEnd",
    "ConnectionTerminated",
    "Http2Error",
    "ResponseEvent",
    "ResponseHeaders",
    "StreamReset",
]


class Http2Error(Exception):
    """The HTTP/2 connection failed (transport broken, protocol error, refused ALPN)."""


@attrs.frozen
class ResponseHeaders:
    """The response's status and headers (lower-case names)."""

    status: int
    headers: dict[str, str]


@attrs.frozen
class BodyData:
    """Response body bytes; acknowledge ``flow_length`` once consumed."""

    data: bytes
    flow_length: int


@attrs.frozen
class BodyEnd:
    """The peer ended the response body (END_STREAM)."""


@attrs.frozen
class StreamReset:
    """The peer reset the request stream."""

    error_code: int


@attrs.frozen
class ConnectionTerminated:
    """The peer sent GOAWAY."""

    error_code: int
    additional_data: bytes | None


ResponseEvent = ResponseHeaders | BodyData | BodyEnd | StreamReset | ConnectionTerminated
