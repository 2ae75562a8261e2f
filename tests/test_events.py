"""Event model: Strands dict shapes, round trips, and errors for malformed dicts."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_bidi import events as ev
from trio_bidi.errors import BidiConnectionError, BidiModelTimeoutError, BidiReportedError

text = st.text(max_size=40)
b64 = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=64
)
formats = st.sampled_from(["pcm", "wav", "opus", "mp3"])
rates = st.sampled_from([16000, 24000, 48000])
channels = st.sampled_from([1, 2])
roles = st.sampled_from(["user", "assistant"])
tokens = st.integers(min_value=0, max_value=10**9)
json_scalars = st.none() | st.booleans() | st.integers(-(10**9), 10**9) | text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
json_dicts = st.dictionaries(text, json_values, max_size=4)
tool_results = st.fixed_dictionaries(
    {
        "toolUseId": text,
        "status": st.sampled_from(["success", "error"]),
        "content": st.lists(
            st.one_of(
                st.fixed_dictionaries({"text": text}),
                st.fixed_dictionaries({"json": json_values}),
            ),
            max_size=3,
        ),
    }
)
known_errors = st.sampled_from(
    [BidiConnectionError, BidiModelTimeoutError, ev.BidiError]  # type: ignore[attr-defined]
)

EVENTS: dict[type[ev.BidiEvent], st.SearchStrategy[Any]] = {
    ev.BidiTextInputEvent: st.builds(ev.BidiTextInputEvent, text, roles),
    ev.BidiAudioInputEvent: st.builds(ev.BidiAudioInputEvent, b64, formats, rates, channels),
    ev.BidiImageInputEvent: st.builds(
        ev.BidiImageInputEvent, b64, st.sampled_from(["image/png", "image/jpeg"])
    ),
    ev.BidiConnectionStartEvent: st.builds(ev.BidiConnectionStartEvent, text, text),
    ev.BidiConnectionRestartEvent: st.builds(
        lambda m, cfg: ev.BidiConnectionRestartEvent(BidiModelTimeoutError(m, **cfg)),
        text,
        # "message" is the constructor's own parameter, so no restart key can be named so.
        st.dictionaries(
            st.text(min_size=1, max_size=10).filter(lambda key: key != "message"),
            json_values,
            max_size=3,
        ),
    ),
    ev.BidiResponseStartEvent: st.builds(ev.BidiResponseStartEvent, text),
    ev.BidiAudioStreamEvent: st.builds(ev.BidiAudioStreamEvent, b64, formats, rates, channels),
    ev.BidiTranscriptStreamEvent: st.builds(
        lambda t, role, final, cur: ev.BidiTranscriptStreamEvent({"text": t}, t, role, final, cur),
        text,
        roles,
        st.booleans(),
        st.none() | text,
    ),
    ev.BidiInterruptionEvent: st.builds(
        ev.BidiInterruptionEvent, st.sampled_from(["user_speech", "error"])
    ),
    ev.BidiResponseCompleteEvent: st.builds(
        ev.BidiResponseCompleteEvent,
        text,
        st.sampled_from(["complete", "error", "interrupted", "tool_use"]),
    ),
    ev.BidiUsageEvent: st.builds(
        ev.BidiUsageEvent,
        tokens,
        tokens,
        tokens,
        st.none()
        | st.lists(
            st.fixed_dictionaries(
                {
                    "modality": st.sampled_from(["text", "audio", "image", "cached"]),
                    "input_tokens": tokens,
                    "output_tokens": tokens,
                }
            ),
            max_size=4,
        ),
        st.none() | tokens,
        st.none() | tokens,
    ),
    ev.BidiConnectionCloseEvent: st.builds(
        ev.BidiConnectionCloseEvent,
        text,
        st.sampled_from(["client_disconnect", "timeout", "error", "complete", "user_request"]),
    ),
    ev.BidiErrorEvent: st.builds(
        ev.BidiErrorEvent,
        st.one_of(
            st.builds(lambda cls, m: cls(m), known_errors, text),
            st.builds(RuntimeError, text),
            st.builds(BidiReportedError, text, st.text(min_size=1, max_size=12)),
        ),
        st.none() | json_dicts,
    ),
    ev.ToolUseStreamEvent: st.builds(
        lambda tid, name, args: ev.ToolUseStreamEvent.from_tool_use(
            {"toolUseId": tid, "name": name, "input": args}
        ),
        text,
        text,
        json_dicts,
    ),
    ev.ToolResultEvent: st.builds(ev.ToolResultEvent, tool_results),
    ev.ToolStreamEvent: st.builds(
        lambda tid, name, data: ev.ToolStreamEvent(
            {"toolUseId": tid, "name": name, "input": {}}, data
        ),
        text,
        text,
        json_values,
    ),
    ev.BidiToolCancellationEvent: st.builds(
        ev.BidiToolCancellationEvent, st.lists(text, max_size=4).map(tuple)
    ),
}


def test_every_event_class_has_a_strategy() -> None:
    concrete = {
        cls for cls in vars(ev).values() if isinstance(cls, type) and issubclass(cls, ev.BidiEvent)
    }
    assert concrete - {ev.BidiEvent} == set(EVENTS)


@pytest.mark.parametrize("cls", list(EVENTS), ids=lambda c: c.__name__)
@given(data=st.data())
def test_round_trip(cls: type[ev.BidiEvent], data: st.DataObject) -> None:
    event = data.draw(EVENTS[cls])
    as_dict = event.to_dict()
    assert as_dict["type"] == cls.type
    assert ev.event_from_dict(as_dict) == event
    assert ev.event_from_dict(json.loads(json.dumps(event.to_json_dict()))) == event
    assert event["type"] == cls.type


@pytest.mark.parametrize("cls", list(EVENTS), ids=lambda c: c.__name__)
@given(data=st.data())
def test_event_is_a_read_only_mapping_over_its_dict(
    cls: type[ev.BidiEvent], data: st.DataObject
) -> None:
    event = data.draw(EVENTS[cls])
    expected = event.to_dict()
    assert isinstance(event, Mapping)
    assert dict(event) == expected
    assert {**event} == expected
    assert list(event) == list(expected)
    assert list(event.keys()) == list(expected.keys())
    assert list(event.items()) == list(expected.items())
    assert len(event) == len(expected)
    assert "type" in event
    assert 0 not in event
    assert event.get("no such key", "fallback") == "fallback"
    assert event.as_dict() == expected
    with pytest.raises(KeyError):
        event["no such key"]
    with pytest.raises(TypeError):
        event["type"] = "x"  # type: ignore[index]
    assert json.loads(json.dumps(event.to_json_dict()))["type"] == cls.type


# Strands 1.40's dict for the same constructor arguments (from its events module).
STRANDS_SHAPES: list[tuple[ev.BidiEvent, dict[str, Any]]] = [
    (ev.BidiTextInputEvent("hi"), {"type": "bidi_text_input", "text": "hi", "role": "user"}),
    (
        ev.BidiAudioInputEvent("QUJD", "pcm", 16000, 1),
        {
            "type": "bidi_audio_input",
            "audio": "QUJD",
            "format": "pcm",
            "sample_rate": 16000,
            "channels": 1,
        },
    ),
    (
        ev.BidiImageInputEvent("QUJD", "image/png"),
        {"type": "bidi_image_input", "image": "QUJD", "mime_type": "image/png"},
    ),
    (
        ev.BidiConnectionStartEvent("c1", "gpt-realtime"),
        {"type": "bidi_connection_start", "connection_id": "c1", "model": "gpt-realtime"},
    ),
    (ev.BidiResponseStartEvent("r1"), {"type": "bidi_response_start", "response_id": "r1"}),
    (
        ev.BidiAudioStreamEvent("QUJD", "pcm", 24000, 1),
        {
            "type": "bidi_audio_stream",
            "audio": "QUJD",
            "format": "pcm",
            "sample_rate": 24000,
            "channels": 1,
        },
    ),
    (
        ev.BidiTranscriptStreamEvent({"text": "he"}, "he", "assistant", False),
        {
            "type": "bidi_transcript_stream",
            "delta": {"text": "he"},
            "text": "he",
            "role": "assistant",
            "is_final": False,
            "current_transcript": None,
        },
    ),
    (
        ev.BidiInterruptionEvent("user_speech"),
        {"type": "bidi_interruption", "reason": "user_speech"},
    ),
    (
        ev.BidiResponseCompleteEvent("r1", "tool_use"),
        {"type": "bidi_response_complete", "response_id": "r1", "stop_reason": "tool_use"},
    ),
    (
        ev.BidiUsageEvent(10, 20, 30),
        {"type": "bidi_usage", "inputTokens": 10, "outputTokens": 20, "totalTokens": 30},
    ),
    (
        ev.BidiUsageEvent(
            1, 2, 3, [{"modality": "audio", "input_tokens": 1, "output_tokens": 2}], 4, 5
        ),
        {
            "type": "bidi_usage",
            "inputTokens": 1,
            "outputTokens": 2,
            "totalTokens": 3,
            "modality_details": [{"modality": "audio", "input_tokens": 1, "output_tokens": 2}],
            "cacheReadInputTokens": 4,
            "cacheWriteInputTokens": 5,
        },
    ),
    (
        ev.BidiConnectionCloseEvent("c1", "user_request"),
        {"type": "bidi_connection_close", "connection_id": "c1", "reason": "user_request"},
    ),
    (
        ev.BidiErrorEvent(ValueError("bad"), {"k": 1}),
        {"type": "bidi_error", "message": "bad", "code": "ValueError", "details": {"k": 1}},
    ),
    (
        # The partial (streaming) delta is completed: Strands' bidi providers put the
        # whole call, input parsed, in the delta.
        ev.ToolUseStreamEvent(
            {"toolUse": {"input": "{}"}}, {"toolUseId": "t", "name": "n", "input": {}}
        ),
        {
            "type": "tool_use_stream",
            "delta": {"toolUse": {"toolUseId": "t", "name": "n", "input": {}}},
            "current_tool_use": {"toolUseId": "t", "name": "n", "input": {}},
        },
    ),
    (
        ev.BidiUsageEvent(1, 2, 3, []),
        {"type": "bidi_usage", "inputTokens": 1, "outputTokens": 2, "totalTokens": 3},
    ),
    (
        ev.ToolStreamEvent({"toolUseId": "t", "name": "n", "input": {}}, {"p": 1}),
        {
            "type": "tool_stream",
            "tool_stream_event": {
                "tool_use": {"toolUseId": "t", "name": "n", "input": {}},
                "data": {"p": 1},
            },
        },
    ),
    (
        ev.ToolResultEvent({"toolUseId": "t", "status": "success", "content": [{"text": "4"}]}),
        {
            "type": "tool_result",
            "tool_result": {"toolUseId": "t", "status": "success", "content": [{"text": "4"}]},
        },
    ),
]


@pytest.mark.parametrize(
    ("event", "expected"), STRANDS_SHAPES, ids=lambda x: getattr(x, "type", "")
)
def test_to_dict_matches_strands_shape(event: ev.BidiEvent, expected: dict[str, Any]) -> None:
    assert event.to_dict() == expected


def test_error_event_keeps_the_exception() -> None:
    error = BidiConnectionError("lost", code=1011)
    event = ev.BidiErrorEvent(error)
    assert event.error is error
    assert event.code == "BidiConnectionError"
    rebuilt = ev.event_from_dict(event.to_dict())
    assert isinstance(rebuilt, ev.BidiErrorEvent)
    assert isinstance(rebuilt.error, BidiConnectionError)


def test_unknown_error_class_is_reported_by_name() -> None:
    rebuilt = ev.event_from_dict(
        {"type": "bidi_error", "message": "m", "code": "BrowserError", "details": None}
    )
    assert isinstance(rebuilt, ev.BidiErrorEvent)
    assert isinstance(rebuilt.error, BidiReportedError)
    assert rebuilt.to_dict()["code"] == "BrowserError"


def test_restart_event_carries_restart_config() -> None:
    error = BidiModelTimeoutError("limit", handle="h1")
    event = ev.BidiConnectionRestartEvent(error)
    assert event["timeout_error"] is error  # the exception itself, as in Strands
    assert event.to_json_dict()["timeout_error"] == {
        "message": "limit",
        "restart_config": {"handle": "h1"},
    }
    rebuilt = ev.event_from_dict(json.loads(json.dumps(event.to_json_dict())))
    assert isinstance(rebuilt, ev.BidiConnectionRestartEvent)
    assert rebuilt.timeout_error.restart_config == {"handle": "h1"}
    assert ev.event_from_dict(dict(event)) == event


def test_tool_events_name_their_call() -> None:
    result = ev.ToolResultEvent(
        {"toolUseId": "t9", "status": "error", "content": [{"text": "x"}]}, ValueError("x")
    )
    assert result.tool_use_id == "t9"
    assert isinstance(result.exception, ValueError)
    assert "exception" not in result
    stream = ev.ToolStreamEvent({"toolUseId": "t8", "name": "n", "input": {}}, "half way")
    assert stream.tool_use_id == "t8"


def test_usage_keys_only_when_reported() -> None:
    usage = ev.BidiUsageEvent(
        1, 2, 3, [ev.ModalityUsage(modality="text", input_tokens=1, output_tokens=2)]
    )
    assert usage["modality_details"] == [
        {"modality": "text", "input_tokens": 1, "output_tokens": 2}
    ]
    assert "cacheReadInputTokens" not in usage
    assert "modality_details" not in ev.BidiUsageEvent(1, 2, 3, [])
    assert "cacheReadInputTokens" in ev.BidiUsageEvent(1, 2, 3, cache_read_input_tokens=0)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"type": "nope"}, "unknown type 'nope'"),
        ({"text": "x"}, "'type'"),
        ({"type": "bidi_text_input"}, "'text' is missing"),
        ({"type": "bidi_text_input", "text": 3, "role": "user"}, "'text' must be str"),
        (
            {"type": "bidi_text_input", "text": "x", "role": "robot"},
            "'role' has unsupported value 'robot'",
        ),
        (
            {
                "type": "bidi_audio_input",
                "audio": "",
                "format": "pcm",
                "sample_rate": 8000,
                "channels": 1,
            },
            "'sample_rate' has unsupported value 8000",
        ),
        (
            {
                "type": "bidi_audio_input",
                "audio": "",
                "format": "pcm",
                "sample_rate": 16000,
                "channels": True,
            },
            "'channels'",
        ),
        (
            {
                "type": "tool_result",
                "tool_result": {"toolUseId": "t", "status": "ok", "content": []},
            },
            "'status'",
        ),
        (
            {"type": "bidi_usage", "inputTokens": "1", "outputTokens": 1, "totalTokens": 2},
            "'inputTokens'",
        ),
    ],
)
def test_malformed_dicts_name_the_problem(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(")):
        ev.event_from_dict(data)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "type",
                "text",
                "audio",
                "role",
                "format",
                "sample_rate",
                "channels",
                "tool_result",
                "delta",
                "reason",
                "x",
            ]
        )
        | text,
        json_values,
        max_size=6,
    )
    | json_values
)
def test_garbage_gives_value_error_only(data: Any) -> None:
    if isinstance(data, dict) and isinstance(data.get("type"), str):
        data = dict(data)
    with contextlib.suppress(ValueError):
        ev.event_from_dict(data)


@given(st.sampled_from(sorted(ev._PARSERS)), st.dictionaries(text, json_values, max_size=6))
def test_garbage_with_a_known_type_gives_value_error_only(kind: str, body: dict[str, Any]) -> None:
    with contextlib.suppress(ValueError):
        ev.event_from_dict({**body, "type": kind})


def test_invariants_are_checked_at_construction() -> None:
    with pytest.raises(ValueError, match="sample_rate=8000"):
        ev.BidiAudioStreamEvent("", "pcm", 8000, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="channels=3"):
        ev.BidiAudioInputEvent("", "pcm", 16000, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stop_reason"):
        ev.BidiResponseCompleteEvent("r", "done")  # type: ignore[arg-type]


def test_events_are_frozen() -> None:
    event = ev.BidiTextInputEvent("x")
    with pytest.raises(AttributeError):
        event.text = "y"  # type: ignore[misc]
