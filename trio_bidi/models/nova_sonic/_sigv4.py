"""SigV4 for Bedrock's bidirectional stream: the request signature and the chunk signer.

The opening request is signed by ``botocore.auth.SigV4Auth`` with the payload hash preset
to ``STREAMING-AWS4-HMAC-SHA256-EVENTS``. Every event the client then sends is wrapped in
an envelope message signed in a chain: each signature covers the previous one, the
envelope's ``:date`` header and the inner message (`ChunkSigner`).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Final

import attrs

from ._eventstream import Timestamp, encode_headers, encode_message

__all__ = [
    "STREAMING_PAYLOAD",
    "ChunkSigner",
    "Credentials",
    "SignedRequest",
    "chunk_string_to_sign",
    "derive_signing_key",
    "sign_request",
    "verify_chunk",
]

STREAMING_PAYLOAD: Final = "STREAMING-AWS4-HMAC-SHA256-EVENTS"
SERVICE: Final = "bedrock"
_AMZ_DATE: Final = "%Y%m%dT%H%M%SZ"


@attrs.frozen(repr=False)
class Credentials:
    """AWS credentials; ``repr`` shows only the access key id.

    Attributes:
        access_key: The access key id.
        secret_key: The secret access key.
        token: The session token of temporary credentials.
    """

    access_key: str
    secret_key: str
    token: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(access_key={self.access_key!r}, token={'set' if self.token else None})"


@attrs.frozen
class SignedRequest:
    """The headers of a signed request and what the chunk chain starts from.

    Attributes:
        headers: Every header to send (lower-case names), ``authorization`` included.
        signature: The request signature (hex), the chain's first "previous signature".
        scope: ``YYYYMMDD/<region>/bedrock/aws4_request``.
        signing_key: The derived key the chunk signatures use.
    """

    headers: dict[str, str]
    signature: str
    scope: str
    signing_key: bytes = attrs.field(repr=False)


def derive_signing_key(secret_key: str, date: str, region: str, service: str = SERVICE) -> bytes:
    """Derive the SigV4 signing key for one day (``date`` is ``YYYYMMDD``)."""
    key = ("AWS4" + secret_key).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def sign_request(
    url: str,
    headers: Mapping[str, str],
    credentials: Credentials,
    region: str,
    now: datetime.datetime,
) -> SignedRequest:
    """Sign the stream's ``POST`` with botocore's SigV4 at the instant ``now`` (UTC).

    Args:
        url: The full request URL (the model id already percent-encoded in the path).
        headers: Headers to sign besides the ones SigV4 adds (``content-type``).
        credentials: Who signs.
        region: The AWS region.
        now: The signing time.

    Returns:
        The headers to send and the start of the chunk chain.
    """
    from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth  # the optional dependency
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    class _AtInstant(SigV4Auth):
        def add_auth(self, request: Any) -> None:
            request.context["timestamp"] = now.strftime(SIGV4_TIMESTAMP)
            self._modify_request_before_signing(request)  # type: ignore[attr-defined]
            canonical = self.canonical_request(request)
            signature = self.signature(self.string_to_sign(request, canonical), request)
            self._inject_signature_to_request(request, signature)  # type: ignore[attr-defined]

    request = AWSRequest(
        method="POST",
        url=url,
        headers={**headers, "x-amz-content-sha256": STREAMING_PAYLOAD},
        data=b"",
    )
    boto = BotoCredentials(credentials.access_key, credentials.secret_key, credentials.token)
    _AtInstant(boto, SERVICE, region).add_auth(request)
    sent = {str(k).lower(): str(v) for k, v in request.headers.items()}
    authorization = sent["authorization"]
    signature = authorization.rsplit("Signature=", 1)[1].strip()
    date = now.strftime("%Y%m%d")
    return SignedRequest(
        headers=sent,
        signature=signature,
        scope=f"{date}/{region}/{SERVICE}/aws4_request",
        signing_key=derive_signing_key(credentials.secret_key, date, region),
    )


def chunk_string_to_sign(
    instant_ms: int, scope: str, previous_signature: str, payload: bytes
) -> str:
    """The string a chunk signature covers.

    Args:
        instant_ms: The envelope's ``:date`` header (milliseconds since the epoch).
        scope: The request's credential scope.
        previous_signature: The previous chunk's signature (hex), or the request's.
        payload: The envelope's payload (the encoded inner message; empty at the end).
    """
    when = datetime.datetime.fromtimestamp(instant_ms // 1000, datetime.UTC)
    date_header = encode_headers({":date": Timestamp(instant_ms)})
    return "\n".join(
        (
            "AWS4-HMAC-SHA256-PAYLOAD",
            when.strftime(_AMZ_DATE),
            scope,
            previous_signature,
            hashlib.sha256(date_header).hexdigest(),
            hashlib.sha256(payload).hexdigest(),
        )
    )


class ChunkSigner:
    """Wraps each outgoing message in a signed envelope, chaining the signatures.

    Args:
        signing_key: The request's derived signing key.
        scope: The request's credential scope.
        seed_signature: The request signature (hex).
    """

    __slots__ = ("_key", "_previous", "_scope")

    def __init__(self, signing_key: bytes, scope: str, seed_signature: str) -> None:
        self._key = signing_key
        self._scope = scope
        self._previous = seed_signature

    @property
    def previous_signature(self) -> str:
        """The newest signature of the chain (hex)."""
        return self._previous

    def sign(self, payload: bytes, instant_ms: int) -> bytes:
        """Return the encoded envelope carrying ``payload`` (b"" ends the stream)."""
        text = chunk_string_to_sign(instant_ms, self._scope, self._previous, payload)
        signature = hmac.new(self._key, text.encode(), hashlib.sha256).digest()
        self._previous = signature.hex()
        return encode_message(
            {":date": Timestamp(instant_ms), ":chunk-signature": signature}, payload
        )


def verify_chunk(
    signing_key: bytes,
    scope: str,
    previous_signature: str,
    headers: Mapping[str, object],
    payload: bytes,
) -> str | None:
    """Check one envelope's signature; return it (hex) when valid, else None.

    The emulator uses this to hold clients to the service's rules.
    """
    date = headers.get(":date")
    signature = headers.get(":chunk-signature")
    if not isinstance(date, Timestamp) or not isinstance(signature, bytes):
        return None
    text = chunk_string_to_sign(date.millis, scope, previous_signature, payload)
    expected = hmac.new(signing_key, text.encode(), hashlib.sha256).digest()
    return signature.hex() if hmac.compare_digest(expected, signature) else None
