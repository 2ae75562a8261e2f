"""The output decoder's fast paths agree with plain ``json.loads`` + strict base64."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from trio_bidi.models.nova_sonic._eventstream import Message
from trio_bidi.models.nova_sonic._wire import _load_json, decode_output

PREFIXES = [b'{"bytes":"', b'{"bytes": "', b'{ "bytes" : "', b'{"bytes": ', b'{"other": "', b""]
SUFFIXES = [b'"}', b'" }', b'"}\n', b"}", b""]


def reference(payload: bytes) -> Any:
    """What the payload means, read with the JSON parser only."""
    outer = json.loads(payload)
    if not isinstance(outer, dict) or not isinstance(outer.get("bytes"), str):
        raise ValueError("an event payload must be {'bytes': <base64>}")
    event = json.loads(binascii.a2b_base64(outer["bytes"].encode("ascii"), strict_mode=True))
    if not isinstance(event, dict) or not isinstance(event.get("event"), dict):
        raise ValueError("a Nova event must be {'event': {...}}")
    return event


def outcome(decode: Any, data: Any) -> tuple[str, Any]:
    try:
        return "ok", decode(data)
    except ValueError as exc:  # binascii.Error, JSONDecodeError, UnicodeDecodeError
        return "error", exc


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
events = st.builds(
    lambda name, body: {"event": {name: body}},
    st.sampled_from(["textOutput", "audioOutput", "x"]),
    st.dictionaries(st.text(max_size=8), json_values, max_size=4),
)


def encoded_event(event: dict[str, Any], escape_slash: bool, compact: bool) -> bytes:
    raw = json.dumps(event, separators=(",", ":") if compact else None).encode()
    text = base64.b64encode(raw)
    return text.replace(b"/", b"\\/") if escape_slash else text


bodies = st.one_of(
    st.builds(encoded_event, events, st.booleans(), st.booleans()),
    st.binary(max_size=40),
    st.text(alphabet='AQgw+/=\\"\n x', max_size=40).map(str.encode),
)


@given(st.sampled_from(PREFIXES), bodies, st.sampled_from(SUFFIXES))
def test_payload_decoding_matches_the_json_reading(
    prefix: bytes, body: bytes, suffix: bytes
) -> None:
    payload = prefix + body + suffix
    message = Message({":message-type": "event"}, payload)
    got = outcome(decode_output, message)
    want = outcome(reference, payload)
    if want[0] == "ok":
        assert got == want
    else:
        # Malformed either way; the slice path may report the base64 error first.
        assert got[0] == "error"


@given(
    st.one_of(
        st.binary(max_size=40),
        st.builds(lambda b: b"{" + b, st.binary(max_size=40)),
        st.builds(
            lambda v, tail: json.dumps(v).encode() + tail, json_values, st.binary(max_size=3)
        ),
        st.builds(lambda v: json.dumps(v).encode("utf-16"), json_values),
    )
)
def test_inner_json_reads_exactly_like_json_loads(raw: bytes) -> None:
    got, want = outcome(_load_json, raw), outcome(json.loads, raw)
    assert got[0] == want[0]
    if want[0] == "ok":
        assert repr(got[1]) == repr(want[1])  # repr: NaN is not equal to itself
    else:
        assert (type(got[1]), str(got[1])) == (type(want[1]), str(want[1]))
