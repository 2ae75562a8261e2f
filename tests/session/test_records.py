"""Session records: Strands' JSON shapes, bytes encoding and round trips (sans-IO)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_bidi.session import Session, SessionAgent, SessionException, SessionMessage
from trio_bidi.session._model import decode_bytes_values, encode_bytes_values

from ._helpers import FIXTURES, STRANDS_AGENT_DIR, STRANDS_SESSION, read_json

text = st.text(max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | text | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
blocks = st.one_of(
    st.fixed_dictionaries({"text": text}),
    st.fixed_dictionaries(
        {
            "image": st.fixed_dictionaries(
                {
                    "format": st.just("png"),
                    "source": st.fixed_dictionaries({"bytes": st.binary(max_size=16)}),
                }
            )
        }
    ),
    st.fixed_dictionaries({"json": json_values}),
)
messages = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant"]), "content": st.lists(blocks, max_size=3)}
)


@given(messages, st.integers(0, 10**6))
def test_message_records_round_trip_through_json(message: Any, index: int) -> None:
    record = SessionMessage(message=message, message_id=index)
    again = SessionMessage.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again == record


def test_bytes_use_strands_marker() -> None:
    assert encode_bytes_values({"a": [b"\x00\x01"]}) == {
        "a": [{"__bytes_encoded__": True, "data": "AAE="}]
    }
    assert decode_bytes_values({"__bytes_encoded__": True, "data": "AAE="}) == b"\x00\x01"


def test_strands_records_read_and_write_back_identically() -> None:
    session_dir = FIXTURES / f"session_{STRANDS_SESSION}"
    session_json = read_json(session_dir / "session.json")
    assert Session.from_dict(session_json).to_dict() == session_json
    agent_json = read_json(FIXTURES / STRANDS_AGENT_DIR / "agent.json")
    assert SessionAgent.from_dict(agent_json).to_dict() == agent_json
    for path in sorted((FIXTURES / STRANDS_AGENT_DIR / "messages").glob("*.json")):
        data = read_json(path)
        assert SessionMessage.from_dict(data).to_dict() == data
        assert list(SessionMessage.from_dict(data).to_dict()) == list(data)


def test_a_redacted_message_is_what_the_agent_sees() -> None:
    record = SessionMessage(
        message={"role": "user", "content": [{"text": "secret"}]},
        message_id=0,
        redact_message={"role": "user", "content": [{"text": "[redacted]"}]},
    )
    assert record.to_message() == {"role": "user", "content": [{"text": "[redacted]"}]}


@pytest.mark.parametrize(
    "data",
    [{"session_id": "s", "session_type": "MULTI"}, {"session_type": "AGENT"}, "AGENT"],
)
def test_foreign_session_records_are_refused(data: Any) -> None:
    with pytest.raises(SessionException, match=r"session\.json"):
        Session.from_dict(data)
