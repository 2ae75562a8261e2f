"""Plumbing of the Nova Sonic emulator: a test CA, TLS + HTTP/2 serving, SigV4 checks.

The service side of Bedrock's bidirectional stream, kept apart from the scripted
behaviour (`_nova_emulator`): a ``trustme`` certificate authority whose CA
certificate clients trust, an ``h2`` server connection per TCP connection with one
sending lock and flow control both ways, and SigV4 verification written from the
specification (independent of the client's botocore-based signer).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import re
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Final
from urllib.parse import quote, unquote

import attrs
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import trio
import trustme

from ..models.nova_sonic._sigv4 import STREAMING_PAYLOAD, derive_signing_key

__all__ = [
    "RequestCheck",
    "ServerConnection",
    "TestCertificateAuthority",
    "verify_request_signature",
]

logger = logging.getLogger(__name__)

_AUTH: Final = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, ?SignedHeaders=(?P<signed>[^,]+), ?"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
_WINDOW: Final = 8 * 1024 * 1024
_WRITE_TIMEOUT_S: Final = 10.0


class TestCertificateAuthority:
    """A throwaway CA and a certificate for ``localhost`` / ``127.0.0.1`` signed by it."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self._ca = trustme.CA()
        self._cert = self._ca.issue_cert("localhost", "127.0.0.1", "::1")

    @property
    def ca_cert_pem(self) -> bytes:
        """The CA certificate (PEM) clients trust."""
        return self._ca.cert_pem.bytes()

    def server_context(self) -> ssl.SSLContext:
        """A server TLS context offering ALPN h2."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(context)
        context.set_alpn_protocols(["h2"])
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts this CA."""
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context


@attrs.frozen
class RequestCheck:
    """The outcome of checking a request's SigV4 signature.

    Attributes:
        error_type: None when valid, else the service's error type
            (``UnrecognizedClientException``, ``InvalidSignatureException``...).
        message: The service's message for the error.
        signature: The request signature (hex), the chunk chain's seed.
        scope: The credential scope.
        signing_key: The derived key (valid requests only).
    """

    error_type: str | None
    message: str
    signature: str = ""
    scope: str = ""
    signing_key: bytes = attrs.field(default=b"", repr=False)


def _canonical_value(value: str) -> str:
    return " ".join(value.strip().split())


def verify_request_signature(
    method: str,
    path: str,
    headers: Mapping[str, str],
    secrets: Mapping[str, str],
    *,
    query: str = "",
    service: str = "bedrock",
) -> RequestCheck:
    """Check a streaming request's SigV4 ``authorization`` against known secrets.

    Args:
        method: The HTTP method.
        path: The request path as sent (already percent-encoded once), without query.
        headers: Request headers, lower-case names; ``host`` is the ``:authority``.
        secrets: Access key id -> secret key.
        query: The query string (often empty; some clients send a bare ``?``).
        service: The signing service name.
    """
    authorization = headers.get("authorization", "")
    match = _AUTH.match(authorization)
    if match is None:
        return RequestCheck(
            "IncompleteSignatureException",
            f"Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
            f"parameters. Authorization={authorization.split(' ', 1)[0] or 'missing'}",
        )
    secret = secrets.get(match["key"])
    if secret is None:
        return RequestCheck(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    if match["service"] != service:
        return RequestCheck(
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{service}'.",
        )
    signed = match["signed"].split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return RequestCheck(
            "InvalidSignatureException", "'Host' or 'x-amz-date' must be a signed header."
        )
    missing = [name for name in signed if name not in headers]
    if missing:
        return RequestCheck(
            "InvalidSignatureException", f"Signed header {missing[0]!r} is not in the request."
        )
    amz_date = headers.get("x-amz-date", "")
    payload_hash = headers.get("x-amz-content-sha256", "")
    if payload_hash != STREAMING_PAYLOAD:
        return RequestCheck(
            "InvalidSignatureException",
            f"x-amz-content-sha256 must be {STREAMING_PAYLOAD} for an event stream.",
        )
    canonical = "\n".join(
        [
            method,
            quote(path, safe="/~"),
            _canonical_query(query),
            *(f"{name}:{_canonical_value(headers[name])}" for name in signed),
            "",
            ";".join(signed),
            payload_hash,
        ]
    )
    scope = f"{match['date']}/{match['region']}/{match['service']}/aws4_request"
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = derive_signing_key(secret, match["date"], match["region"], match["service"])
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match["signature"]):
        return RequestCheck(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.",
        )
    return RequestCheck(None, "", match["signature"], scope, key)


def _canonical_query(query: str) -> str:
    pairs = [part.partition("=") for part in query.split("&") if part]
    encoded = sorted(
        (quote(unquote(k), safe="-_.~"), quote(unquote(v), safe="-_.~")) for k, _, v in pairs
    )
    return "&".join(f"{k}={v}" for k, v in encoded)


StreamHandler = Callable[["ServerConnection", int, dict[str, str]], Awaitable[None]]


class ServerConnection:
    """One client's TLS HTTP/2 connection on the emulator's side.

    Reading happens in `serve`; sending (any task) goes through one lock, and
    DATA waits for the client's flow-control window.
    """

    def __init__(self, stream: trio.SSLStream[trio.SocketStream]) -> None:
        self.stream = stream
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self._h2 = h2.connection.H2Connection(config=config)
        self._lock = trio.Lock()
        self._window_changed = trio.Event()
        self.closed = False

    async def _flush_locked(self) -> None:
        out = self._h2.data_to_send()
        if out and not self.closed:
            # A send_all cancelled half way breaks the TLS stream: finish the write
            # (bounded) and let cancellation land at the next wait instead.
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + _WRITE_TIMEOUT_S
                await self.stream.send_all(out)
            if scope.cancelled_caught:
                raise trio.BrokenResourceError("the client stopped reading")
        await trio.lowlevel.checkpoint_if_cancelled()

    async def flush(self) -> None:
        """Send whatever ``h2`` has queued (acks, window updates)."""
        async with self._lock:
            await self._flush_locked()

    async def send_headers(
        self, stream_id: int, headers: list[tuple[str, str]], *, end_stream: bool = False
    ) -> None:
        """Send response headers."""
        async with self._lock:
            self._h2.send_headers(stream_id, headers, end_stream=end_stream)
            await self._flush_locked()

    async def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Send DATA within the client's window (waits for window updates)."""
        view = memoryview(data)
        while True:
            async with self._lock:
                window = min(
                    self._h2.local_flow_control_window(stream_id), self._h2.max_outbound_frame_size
                )
                if window > 0 or not view:
                    size = min(window, len(view))
                    last = size == len(view)
                    self._h2.send_data(
                        stream_id, bytes(view[:size]), end_stream=end_stream and last
                    )
                    view = view[size:]
                    await self._flush_locked()
                    if last:
                        return
                    continue
                waiter = self._window_changed
            await waiter.wait()

    async def end_stream(self, stream_id: int) -> None:
        """End the response body (END_STREAM), if the stream is still open."""
        async with self._lock:
            try:
                self._h2.end_stream(stream_id)
            except h2.exceptions.ProtocolError:
                return
            await self._flush_locked()

    async def serve(
        self,
        on_request: StreamHandler,
        on_data: Callable[[int, bytes], Awaitable[None]],
        on_end: Callable[[int], Awaitable[None]],
    ) -> None:
        """Read until the client goes away, dispatching request, body and end events."""
        self._h2.initiate_connection()
        self._h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _WINDOW})
        self._h2.increment_flow_control_window(_WINDOW)
        await self.flush()
        while not self.closed:
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not data:
                return
            try:
                events = self._h2.receive_data(data)
            except h2.exceptions.ProtocolError as exc:
                logger.warning("error=<%s> | client broke HTTP/2", exc)
                return
            for event in events:
                if isinstance(event, h2.events.RequestReceived):
                    headers = {str(k): str(v) for k, v in event.headers or ()}
                    await on_request(self, int(event.stream_id or 0), headers)
                elif isinstance(event, h2.events.DataReceived):
                    stream_id = int(event.stream_id or 0)
                    await on_data(stream_id, event.data or b"")
                    with contextlib.suppress(h2.exceptions.ProtocolError):
                        self._h2.acknowledge_received_data(
                            event.flow_controlled_length or 0, stream_id
                        )
                elif isinstance(event, h2.events.StreamEnded):
                    await on_end(int(event.stream_id or 0))
                elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
                    self._window_changed.set()
                    self._window_changed = trio.Event()
                elif isinstance(event, h2.events.ConnectionTerminated):
                    return
            try:
                await self.flush()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return

    async def drop(self) -> None:
        """Close the TCP connection abruptly."""
        self.closed = True
        self._window_changed.set()
        await trio.aclose_forcefully(self.stream)
