"""The event-stream encoder and decoder against botocore's decoder (hypothesis)."""

from __future__ import annotations

import contextlib
import uuid
import zlib
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given
from hypothesis import strategies as st

from trio_bidi.models.nova_sonic._eventstream import (
    HEADER_CACHE_SIZE,
    EventStreamDecoder,
    EventStreamError,
    HeaderValue,
    Int8,
    Int16,
    Int64,
    Timestamp,
    encode_message,
)

names = st.text(min_size=1, max_size=20).filter(lambda s: len(s.encode()) <= 255)
values: st.SearchStrategy[HeaderValue] = st.one_of(
    st.booleans(),
    st.integers(-(2**31), 2**31 - 1),
    st.text(max_size=50),
    st.binary(max_size=50),
    st.builds(Int8, st.integers(-128, 127)),
    st.builds(Int16, st.integers(-(2**15), 2**15 - 1)),
    st.builds(Int64, st.integers(-(2**63), 2**63 - 1)),
    st.builds(Timestamp, st.integers(0, 2**62)),
    st.uuids(),
)
messages = st.tuples(st.dictionaries(names, values, max_size=6), st.binary(max_size=300))


def botocore_view(value: HeaderValue) -> Any:
    """What botocore's decoder returns for a value we encoded."""
    if isinstance(value, Int8 | Int16 | Int64):
        return value.value
    if isinstance(value, Timestamp):
        return value.millis
    if isinstance(value, uuid.UUID):
        return value.bytes
    return value


def decode_with_botocore(data: bytes) -> list[tuple[dict[str, Any], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(message.headers, message.payload) for message in buffer]


@given(st.lists(messages, max_size=5))
def test_botocore_decodes_what_we_encode(batch: list[tuple[dict[str, HeaderValue], bytes]]) -> None:
    data = b"".join(encode_message(h, p) for h, p in batch)
    decoded = decode_with_botocore(data)
    assert decoded == [({k: botocore_view(v) for k, v in h.items()}, p) for h, p in batch]


@given(st.lists(messages, max_size=5), st.data())
def test_round_trip_through_arbitrary_splits(
    batch: list[tuple[dict[str, HeaderValue], bytes]], data: st.DataObject
) -> None:
    stream = b"".join(encode_message(h, p) for h, p in batch)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = EventStreamDecoder()
    out = []
    start = 0
    for cut in [*cuts, len(stream)]:
        decoder.feed(stream[start:cut])
        start = cut
        out.extend(decoder)
    assert [(dict(m.headers), m.payload) for m in out] == [(h, p) for h, p in batch]
    assert decoder.buffered == 0


@given(st.binary(max_size=200))
def test_garbage_raises_only_event_stream_error(garbage: bytes) -> None:
    decoder = EventStreamDecoder()
    decoder.feed(garbage)
    with contextlib.suppress(EventStreamError):
        list(decoder)


def test_known_vector_matches_botocore_sample() -> None:
    # An empty message: 16 bytes, total length 16, no headers.
    data = encode_message({})
    assert data[:8] == b"\x00\x00\x00\x10\x00\x00\x00\x00"
    assert int.from_bytes(data[8:12], "big") == zlib.crc32(data[:8])
    assert decode_with_botocore(data) == [({}, b"")]


def test_repeated_headers_are_decoded_once_and_read_only() -> None:
    headers = {":message-type": "event", ":event-type": "chunk", ":content-type": "x"}
    decoder = EventStreamDecoder()
    decoder.feed(encode_message(headers, b"1") + encode_message(headers, b"2"))
    first, second = decoder
    assert (dict(first.headers), first.payload) == (headers, b"1")
    assert (dict(second.headers), second.payload) == (headers, b"2")
    assert first.headers is second.headers
    with pytest.raises(TypeError):
        first.headers[":event-type"] = "other"  # type: ignore[index]


def test_distinct_headers_beyond_the_cache_still_decode() -> None:
    count = HEADER_CACHE_SIZE * 3
    decoder = EventStreamDecoder()
    decoder.feed(b"".join(encode_message({":n": str(n)}, b"p") for n in range(count)))
    decoded = [dict(message.headers) for message in decoder]
    assert decoded == [{":n": str(n)} for n in range(count)]


def test_bad_headers_after_good_ones_with_the_same_prefix_are_rejected() -> None:
    good = encode_message({":event-type": "chunk"}, b"{}")
    decoder = EventStreamDecoder()
    decoder.feed(good)
    assert [m.payload for m in decoder] == [b"{}"]
    bad = bytearray(good)
    headers_length = int.from_bytes(bad[4:8], "big")
    bad[12 + headers_length - 1 - len("chunk") - 2] = 42  # an unknown header value type
    body = bytes(bad[:-4])
    decoder.feed(body + zlib.crc32(body).to_bytes(4, "big"))
    with pytest.raises(EventStreamError, match="unknown header value type 42"):
        next(decoder)
    with pytest.raises(EventStreamError, match="broken"):
        list(decoder)


def test_corrupted_crc_is_rejected_and_the_stream_stays_broken() -> None:
    data = bytearray(encode_message({":event-type": "chunk"}, b"{}"))
    data[-1] ^= 0xFF
    decoder = EventStreamDecoder()
    decoder.feed(bytes(data))
    with pytest.raises(EventStreamError, match="CRC"):
        next(decoder)
    with pytest.raises(EventStreamError, match="broken"):
        next(decoder)


@pytest.mark.parametrize(
    ("value", "match"),
    [(2**31, "32 bits"), (Int8(200), "8 bits"), ("x" * 70000, "65535")],
)
def test_out_of_range_values_are_refused(value: HeaderValue, match: str) -> None:
    with pytest.raises(EventStreamError, match=match):
        encode_message({"h": value})


def test_unknown_value_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="float"):
        encode_message({"h": 1.5})  # type: ignore[dict-item]
