"""Request signing and the chunk-signature chain, checked against SigV4 computed by hand."""

from __future__ import annotations

import datetime
import hashlib
import hmac

from botocore.eventstream import EventStreamBuffer

from trio_bidi.models.nova_sonic._eventstream import Timestamp, encode_message
from trio_bidi.models.nova_sonic._sigv4 import (
    STREAMING_PAYLOAD,
    ChunkSigner,
    Credentials,
    derive_signing_key,
    sign_request,
    verify_chunk,
)

NOW = datetime.datetime(2026, 12, 2, 4, 5, 6, tzinfo=datetime.UTC)
CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
URL = (
    "https://bedrock-runtime.us-east-1.amazonaws.com"
    "/model/amazon.nova-2-sonic-v1%3A0/invoke-with-bidirectional-stream"
)


def by_hand(token: str | None = None) -> str:
    headers = {
        "content-type": "application/vnd.amazon.eventstream",
        "host": "bedrock-runtime.us-east-1.amazonaws.com",
        "x-amz-content-sha256": STREAMING_PAYLOAD,
        "x-amz-date": "20261202T040506Z",
    }
    if token:
        headers["x-amz-security-token"] = token
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            "POST",
            "/model/amazon.nova-2-sonic-v1%253A0/invoke-with-bidirectional-stream",
            "",
            *(f"{k}:{headers[k]}" for k in sorted(headers)),
            "",
            signed,
            STREAMING_PAYLOAD,
        ]
    )
    scope = "20261202/us-east-1/bedrock/aws4_request"
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            "20261202T040506Z",
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = derive_signing_key(CREDS.secret_key, "20261202", "us-east-1")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_request_signature_double_encodes_the_path_and_signs_the_streaming_hash() -> None:
    signed = sign_request(
        URL, {"content-type": "application/vnd.amazon.eventstream"}, CREDS, "us-east-1", NOW
    )
    assert signed.signature == by_hand()
    assert signed.headers["x-amz-content-sha256"] == STREAMING_PAYLOAD
    assert signed.headers["x-amz-date"] == "20261202T040506Z"
    assert (
        "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date,"
        in (signed.headers["authorization"])
    )
    assert signed.scope == "20261202/us-east-1/bedrock/aws4_request"


def test_session_token_is_sent_and_signed() -> None:
    creds = Credentials(CREDS.access_key, CREDS.secret_key, "TOKEN123")
    signed = sign_request(
        URL, {"content-type": "application/vnd.amazon.eventstream"}, creds, "us-east-1", NOW
    )
    assert signed.headers["x-amz-security-token"] == "TOKEN123"
    assert signed.signature == by_hand("TOKEN123")


def test_credentials_repr_hides_the_secret() -> None:
    assert CREDS.secret_key not in repr(CREDS)


def test_chunk_chain_matches_the_spec_and_botocore_decodes_it() -> None:
    key = derive_signing_key(CREDS.secret_key, "20261202", "us-east-1")
    scope = "20261202/us-east-1/bedrock/aws4_request"
    signer = ChunkSigner(key, scope, "ab" * 32)
    inner = encode_message({":event-type": "chunk"}, b'{"bytes":"e30="}')
    instant = 1_795_000_000_123
    envelope = signer.sign(inner, instant)
    buffer = EventStreamBuffer()
    buffer.add_data(envelope)
    (message,) = list(buffer)
    assert message.payload == inner
    assert message.headers[":date"] == instant
    date_header = encode_message({":date": Timestamp(instant)})[12:-4]
    text = "\n".join(
        [
            "AWS4-HMAC-SHA256-PAYLOAD",
            datetime.datetime.fromtimestamp(instant // 1000, datetime.UTC).strftime(
                "%Y%m%dT%H%M%SZ"
            ),
            scope,
            "ab" * 32,
            hashlib.sha256(date_header).hexdigest(),
            hashlib.sha256(inner).hexdigest(),
        ]
    )
    expected = hmac.new(key, text.encode(), hashlib.sha256).digest()
    assert message.headers[":chunk-signature"] == expected
    # The chain continues from this signature; the end is an empty signed payload.
    second = signer.sign(b"", instant + 5)
    buffer.add_data(second)
    (end,) = list(buffer)
    assert end.payload == b""
    assert verify_chunk(
        key,
        scope,
        expected.hex(),
        {":date": Timestamp(instant + 5), ":chunk-signature": end.headers[":chunk-signature"]},
        b"",
    )


def test_verify_rejects_a_broken_chain() -> None:
    key = derive_signing_key(CREDS.secret_key, "20261202", "us-east-1")
    signer = ChunkSigner(key, "s", "00" * 32)
    inner = b"payload"
    envelope = signer.sign(inner, 1000)
    buffer = EventStreamBuffer()
    buffer.add_data(envelope)
    (message,) = list(buffer)
    headers = {":date": Timestamp(1000), ":chunk-signature": message.headers[":chunk-signature"]}
    assert verify_chunk(key, "s", "00" * 32, headers, inner) is not None
    assert verify_chunk(key, "s", "11" * 32, headers, inner) is None
    assert verify_chunk(key, "s", "00" * 32, headers, b"other") is None
