"""Sans-IO tests of the OpenAI Realtime protocol object: every mapping, both directions.

Server events used here are checked against the official server event types, and every
client message the protocol produces against the official client event types.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.oracles.openai import server_event_problems, validate_client_message
from trio_bidi.errors import (
    BidiAudioFormatError,
    BidiConfigurationError,
    BidiProtocolError,
    BidiProviderError,
)
from trio_bidi.events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiErrorEvent,
    BidiImageInputEvent,
    BidiInterruptionEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiTextInputEvent,
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from trio_bidi.models.openai_realtime import OpenAIRealtimeProtocol
from trio_bidi.models.openai_realtime._config import resolve_provider_config
from trio_bidi.types import Message

from ._util import TOOL_SPEC, pcm_chunk

RESP = {"response_id": "resp_1", "output_index": 0, "content_index": 0}


def make_protocol(**provider_config: Any) -> OpenAIRealtimeProtocol:
    return OpenAIRealtimeProtocol(resolve_provider_config(provider_config))


def sent(texts: list[str]) -> list[dict[str, Any]]:
    """Decode client texts, validating each against the official client event types."""
    messages = [json.loads(text) for text in texts]
    for message in messages:
        validate_client_message(message)
    return messages


def feed(protocol: OpenAIRealtimeProtocol, *messages: dict[str, Any]) -> list[BidiOutputEvent]:
    events: list[BidiOutputEvent] = []
    for message in messages:
        events.extend(protocol.receive_raw(json.dumps(message)))
    return events


def response(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": "resp_1", "object": "realtime.response", "status": status, **extra}


def audio_delta(item_id: str, ms: int) -> dict[str, Any]:
    return {
        "type": "response.output_audio.delta",
        "item_id": item_id,
        "delta": pcm_chunk(ms),
        **RESP,
    }


def function_call_added(call_id: str, name: str) -> dict[str, Any]:
    return {
        "type": "response.output_item.added",
        "response_id": "resp_1",
        "output_index": 0,
        "item": {
            "id": "item_f",
            "type": "function_call",
            "call_id": call_id,
            "name": name,
            "arguments": "",
        },
    }


def arguments_delta(call_id: str, delta: str) -> dict[str, Any]:
    return {
        "type": "response.function_call_arguments.delta",
        "response_id": "resp_1",
        "item_id": "item_f",
        "output_index": 0,
        "call_id": call_id,
        "delta": delta,
    }


def arguments_done(call_id: str, arguments: str, name: str = "get_weather") -> dict[str, Any]:
    return {
        "type": "response.function_call_arguments.done",
        "response_id": "resp_1",
        "item_id": "item_f",
        "output_index": 0,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


USAGE = {
    "total_tokens": 300,
    "input_tokens": 200,
    "output_tokens": 100,
    "input_token_details": {
        "text_tokens": 150,
        "audio_tokens": 40,
        "image_tokens": 10,
        "cached_tokens": 128,
    },
    "output_token_details": {"text_tokens": 30, "audio_tokens": 70},
}

# Well-formed GA server events (checked against the official types below).
SERVER_EXAMPLES: list[dict[str, Any]] = [
    {"type": "response.created", "response": response("in_progress")},
    audio_delta("item_a", 100),
    {"type": "response.output_audio_transcript.delta", "item_id": "item_a", "delta": "Hi", **RESP},
    {
        "type": "response.output_audio_transcript.done",
        "item_id": "item_a",
        "transcript": "Hi",
        **RESP,
    },
    {"type": "response.output_text.delta", "item_id": "item_t", "delta": "Yo", **RESP},
    {"type": "response.output_text.done", "item_id": "item_t", "text": "Yo", **RESP},
    function_call_added("call_1", "get_weather"),
    arguments_delta("call_1", '{"city":'),
    arguments_done("call_1", '{"city":"Paris"}'),
    {"type": "input_audio_buffer.speech_started", "audio_start_ms": 10, "item_id": "item_u"},
    {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 900, "item_id": "item_u"},
    {
        "type": "conversation.item.input_audio_transcription.delta",
        "item_id": "item_u",
        "content_index": 0,
        "delta": "hel",
    },
    {
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": "item_u",
        "content_index": 0,
        "transcript": "hello",
        "usage": {"type": "duration", "seconds": 1.2},
    },
    {
        "type": "conversation.item.input_audio_transcription.segment",
        "id": "seg_1",
        "item_id": "item_u",
        "content_index": 0,
        "start": 0.0,
        "end": 0.5,
        "speaker": "A",
        "text": "hel",
    },
    {
        "type": "conversation.item.input_audio_transcription.failed",
        "item_id": "item_u",
        "content_index": 0,
        "error": {"type": "transcription_error", "code": "audio_unintelligible", "message": "?"},
    },
    {"type": "response.done", "response": response("completed", usage=USAGE)},
    {"type": "response.done", "response": response("cancelled")},
    {
        "type": "error",
        "error": {"type": "invalid_request_error", "code": "bad", "message": "Bad thing."},
    },
    {"type": "rate_limits.updated", "rate_limits": [{"name": "tokens", "limit": 10}]},
    {
        "type": "conversation.item.truncated",
        "item_id": "item_a",
        "content_index": 0,
        "audio_end_ms": 5,
    },
]


@pytest.mark.parametrize("message", SERVER_EXAMPLES, ids=lambda m: m["type"])
def test_examples_are_official_server_events(message: dict[str, Any]) -> None:
    assert server_event_problems({"event_id": "event_1", **message}) == []


# ---------------------------------------------------------------------- server -> events


def test_response_created_starts_a_response() -> None:
    events = feed(make_protocol(), SERVER_EXAMPLES[0])
    assert events == [BidiResponseStartEvent("resp_1")]


def test_audio_delta_is_an_audio_stream_event_at_the_output_rate() -> None:
    message = audio_delta("item_a", 40)
    assert feed(make_protocol(), message) == [
        BidiAudioStreamEvent(message["delta"], "pcm", 24000, 1)
    ]


@pytest.mark.parametrize(
    ("delta_type", "done_type", "done_key"),
    [
        (
            "response.output_audio_transcript.delta",
            "response.output_audio_transcript.done",
            "transcript",
        ),
        ("response.output_text.delta", "response.output_text.done", "text"),
    ],
)
def test_assistant_transcript_deltas_then_final(
    delta_type: str, done_type: str, done_key: str
) -> None:
    protocol = make_protocol()
    events = feed(
        protocol,
        {"type": delta_type, "item_id": "i", "delta": "Hello ", **RESP},
        {"type": delta_type, "item_id": "i", "delta": "world", **RESP},
        {"type": done_type, "item_id": "i", done_key: "Hello world", **RESP},
    )
    assert events == [
        BidiTranscriptStreamEvent({"text": "Hello "}, "Hello ", "assistant", False, "Hello "),
        BidiTranscriptStreamEvent({"text": "world"}, "world", "assistant", False, "Hello world"),
        BidiTranscriptStreamEvent(
            {"text": "Hello world"}, "Hello world", "assistant", True, "Hello world"
        ),
    ]


def test_transcripts_of_different_items_do_not_mix() -> None:
    events = feed(
        make_protocol(),
        {"type": "response.output_text.delta", "item_id": "a", "delta": "A", **RESP},
        {"type": "response.output_text.delta", "item_id": "b", "delta": "B", **RESP},
        {"type": "response.output_text.delta", "item_id": "a", "delta": "A", **RESP},
    )
    transcripts = [e.current_transcript for e in events if isinstance(e, BidiTranscriptStreamEvent)]
    assert transcripts == ["A", "B", "AA"]


def test_user_transcription_delta_completed_segment_failed() -> None:
    events = feed(make_protocol(), *SERVER_EXAMPLES[11:15])
    assert events[:3] == [
        BidiTranscriptStreamEvent({"text": "hel"}, "hel", "user", False, "hel"),
        BidiTranscriptStreamEvent({"text": "hello"}, "hello", "user", True, "hello"),
        BidiTranscriptStreamEvent({"text": "hel"}, "hel", "user", False, None),
    ]
    failed = events[3]
    assert isinstance(failed, BidiErrorEvent)
    assert isinstance(failed.error, BidiProviderError)
    assert failed.error.code == "audio_unintelligible"
    assert failed.details == {"item_id": "item_u"}


def test_speech_started_is_a_user_interruption() -> None:
    events = feed(make_protocol(), SERVER_EXAMPLES[9], SERVER_EXAMPLES[10])
    assert events == [BidiInterruptionEvent("user_speech")]


def test_function_call_name_from_output_item_and_arguments_from_deltas() -> None:
    protocol = make_protocol()
    events = feed(
        protocol,
        function_call_added("call_1", "get_weather"),
        arguments_delta("call_1", '{"ci'),
        arguments_delta("call_1", 'ty": "Paris"}'),
    )
    assert events == []
    done = arguments_done("call_1", '{"city": "Paris"}')
    del done["name"]  # the name comes from response.output_item.added
    events = feed(protocol, done)
    assert events == [
        ToolUseStreamEvent(
            {"toolUse": {"input": '{"city": "Paris"}'}},
            {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        )
    ]
    events = feed(protocol, {"type": "response.done", "response": response("completed")})
    assert events == [BidiResponseCompleteEvent("resp_1", "tool_use")]


def test_function_call_from_done_output_items_only() -> None:
    # A response whose output lists a function call ends in tool_use even without deltas.
    done = {
        "type": "response.done",
        "response": response(
            "completed",
            output=[{"type": "function_call", "call_id": "c", "name": "n", "arguments": "{}"}],
        ),
    }
    assert feed(make_protocol(), done) == [BidiResponseCompleteEvent("resp_1", "tool_use")]


def test_empty_arguments_are_an_empty_input() -> None:
    events = feed(make_protocol(), arguments_done("call_2", ""))
    assert events[0] == ToolUseStreamEvent(
        {"toolUse": {"input": ""}}, {"toolUseId": "call_2", "name": "get_weather", "input": {}}
    )


@pytest.mark.parametrize(
    ("arguments", "match"),
    [('{"city": ', "malformed JSON arguments"), ("[1, 2]", "not a JSON object")],
)
def test_bad_arguments_are_an_error_event(arguments: str, match: str) -> None:
    events = feed(make_protocol(), arguments_done("call_3", arguments))
    assert len(events) == 1
    error = events[0]
    assert isinstance(error, BidiErrorEvent)
    assert isinstance(error.error, BidiProtocolError)
    assert match in str(error.error)
    assert error.details == {
        "server_event_type": "response.function_call_arguments.done",
        "call_id": "call_3",
        "name": "get_weather",
        "arguments": arguments,
    }


def test_a_malformed_call_is_answered_with_an_error_and_the_turn_goes_on() -> None:
    protocol = make_protocol()
    done = arguments_done("call_3", "{not json")
    done["response_id"] = "resp_9"
    (error,) = feed(protocol, done)
    assert isinstance(error, BidiErrorEvent)
    (output,) = [json.loads(text) for text in protocol.take_outbox()]
    assert output["type"] == "conversation.item.create"
    assert output["item"]["type"] == "function_call_output"
    assert output["item"]["call_id"] == "call_3"
    assert output["item"]["output"].startswith("Error: function call 'get_weather' (call_3)")
    assert not protocol.has_outbox
    feed(protocol, {"type": "response.done", "response": {"id": "resp_9", "status": "completed"}})
    assert [json.loads(text) for text in protocol.take_outbox()] == [{"type": "response.create"}]


def test_a_malformed_call_beside_a_good_one_waits_for_the_good_result() -> None:
    protocol = make_protocol()
    for call_id, arguments in (("call_ok", '{"city": "Oslo"}'), ("call_bad", "{nope")):
        done = arguments_done(call_id, arguments)
        done["response_id"] = "resp_2"
        feed(protocol, done)
    assert len(protocol.take_outbox()) == 1  # the error result only
    feed(protocol, {"type": "response.done", "response": {"id": "resp_2", "status": "completed"}})
    assert not protocol.has_outbox
    result = ToolResultEvent({"toolUseId": "call_ok", "status": "success", "content": []})
    texts = [json.loads(text)["type"] for text in protocol.send(result)]
    assert texts == ["conversation.item.create", "response.create"]


def test_deeply_nested_arguments_are_refused_without_recursion() -> None:
    protocol = make_protocol()
    for depth in (65, 5000):
        arguments = '{"a":' * depth + "1" + "}" * depth
        (error,) = feed(protocol, arguments_done("call_deep", arguments))
        assert isinstance(error, BidiErrorEvent)
        assert "nested deeper than 64 levels" in str(error.error)
        assert len(protocol.take_outbox()) == 1
    arguments = '{"a":' * 64 + "1" + "}" * 64
    (use,) = feed(protocol, arguments_done("call_ok", arguments))
    assert isinstance(use, ToolUseStreamEvent)


def test_a_deeply_nested_server_message_is_an_error_event_naming_it() -> None:
    protocol = make_protocol()
    for depth in (100, 100_000):
        raw = '{"type":"response.done","response":' + "[" * depth + "]" * depth + "}"
        (event,) = protocol.receive_raw(raw)
        assert isinstance(event, BidiErrorEvent)
        assert "response.done nests deeper than 64 levels" in str(event.error)
        assert event.details["server_event_type"] == "response.done"
    assert feed(protocol, SERVER_EXAMPLES[0]) == [BidiResponseStartEvent("resp_1")]


@pytest.mark.parametrize("delta", ["not base64!", "@@@@" * 100, "AAAA" * 50 + "é" * 4, "AAA"])
def test_audio_that_is_not_base64_is_an_error_event(delta: str) -> None:
    message = {"type": "response.output_audio.delta", "item_id": "item_1", "delta": delta}
    (event,) = feed(make_protocol(), message)
    assert isinstance(event, BidiErrorEvent)
    assert "response.output_audio.delta" in str(event.error)
    assert event.details == {"server_event_type": "response.output_audio.delta"}


def test_function_call_without_a_name_is_an_error_event() -> None:
    done = arguments_done("call_4", "{}")
    del done["name"]
    (error,) = feed(make_protocol(), done)
    assert isinstance(error, BidiErrorEvent)
    assert "has no name" in str(error.error)


@pytest.mark.parametrize(
    ("status", "stop_reason"),
    [
        ("completed", "complete"),
        ("cancelled", "interrupted"),
        ("incomplete", "interrupted"),
        ("failed", "error"),
        ("in_progress", "complete"),
    ],
)
def test_response_done_status_map(status: str, stop_reason: str) -> None:
    events = feed(make_protocol(), {"type": "response.done", "response": response(status)})
    assert events[-1] == BidiResponseCompleteEvent("resp_1", stop_reason)  # type: ignore[arg-type]


def test_failed_response_reports_its_error() -> None:
    details = {
        "type": "failed",
        "error": {"type": "server_error", "code": "overloaded", "message": "Too busy."},
    }
    events = feed(
        make_protocol(),
        {"type": "response.done", "response": response("failed", status_details=details)},
    )
    error, complete = events
    assert isinstance(error, BidiErrorEvent)
    assert isinstance(error.error, BidiProviderError)
    assert (str(error.error), error.error.code) == ("Too busy.", "overloaded")
    assert complete == BidiResponseCompleteEvent("resp_1", "error")


def test_response_cancelled_is_interrupted() -> None:
    events = feed(make_protocol(), {"type": "response.cancelled", "response": {"id": "resp_9"}})
    assert events == [BidiResponseCompleteEvent("resp_9", "interrupted")]


def test_usage_has_per_modality_details_and_cached_tokens() -> None:
    events = feed(make_protocol(), SERVER_EXAMPLES[15])
    usage, complete = events
    assert usage == BidiUsageEvent(
        input_tokens=200,
        output_tokens=100,
        total_tokens=300,
        modality_details=[
            {"modality": "text", "input_tokens": 150, "output_tokens": 30},
            {"modality": "audio", "input_tokens": 40, "output_tokens": 70},
            {"modality": "image", "input_tokens": 10, "output_tokens": 0},
        ],
        cache_read_input_tokens=128,
    )
    assert complete == BidiResponseCompleteEvent("resp_1", "complete")


def test_server_error_is_an_error_event() -> None:
    (event,) = feed(make_protocol(), SERVER_EXAMPLES[17])
    assert isinstance(event, BidiErrorEvent)
    assert isinstance(event.error, BidiProviderError)
    assert str(event.error) == "Bad thing."
    assert event.error.code == "bad"
    assert event.details == {"type": "invalid_request_error", "code": "bad"}


def test_harmless_cancel_error_is_ignored() -> None:
    message = {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "code": "response_cancel_not_active",
            "message": "Cancellation failed: no active response found",
        },
    }
    assert feed(make_protocol(), message) == []


def test_session_expired_marks_the_protocol_expired() -> None:
    protocol = make_protocol()
    message = {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "code": "session_expired",
            "message": "Your session hit the maximum duration of 60 minutes.",
        },
    }
    assert not protocol.expired
    assert feed(protocol, message) == []
    assert protocol.expired


def test_malformed_json_is_an_error_event_and_the_protocol_goes_on() -> None:
    protocol = make_protocol()
    (event,) = protocol.receive_raw("{oops")
    assert isinstance(event, BidiErrorEvent)
    assert isinstance(event.error, BidiProtocolError)
    assert event.details == {"raw": "{oops", "server_event_type": None}
    (event,) = protocol.receive_raw('["a list"]')
    assert isinstance(event, BidiErrorEvent)
    assert feed(protocol, SERVER_EXAMPLES[0]) == [BidiResponseStartEvent("resp_1")]


def test_malformed_known_event_is_an_error_event() -> None:
    (event,) = feed(make_protocol(), {"type": "response.output_audio.delta"})
    assert isinstance(event, BidiErrorEvent)
    assert event.details == {"server_event_type": "response.output_audio.delta"}
    assert "malformed" in str(event.error)


def test_unknown_and_uninteresting_events_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "trio_bidi.models.openai_realtime._protocol")
    protocol = make_protocol()
    assert feed(protocol, {"type": "response.future_feature.delta", "x": 1}) == []
    assert feed(protocol, SERVER_EXAMPLES[18], SERVER_EXAMPLES[19]) == []
    assert "type=<response.future_feature.delta> | ignoring unknown server event" in caplog.text


# ---------------------------------------------------------------------- input -> client


def test_user_text_is_an_item_and_a_response() -> None:
    assert sent(make_protocol().send(BidiTextInputEvent("hi"))) == [
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hi"}],
            },
        },
        {"type": "response.create"},
    ]


def test_assistant_text_is_only_an_item() -> None:
    (message,) = sent(make_protocol().send(BidiTextInputEvent("I said", role="assistant")))
    assert message["item"]["content"] == [{"type": "output_text", "text": "I said"}]


def test_audio_is_appended() -> None:
    audio = pcm_chunk(20, 1000)
    assert sent(make_protocol().send(BidiAudioInputEvent(audio, "pcm", 24000, 1))) == [
        {"type": "input_audio_buffer.append", "audio": audio}
    ]


@pytest.mark.parametrize(
    "event",
    [
        BidiAudioInputEvent("AAAA", "pcm", 16000, 1),
        BidiAudioInputEvent("AAAA", "pcm", 48000, 1),
        BidiAudioInputEvent("AAAA", "pcm", 24000, 2),
    ],
)
def test_audio_in_another_format_is_an_error(event: BidiAudioInputEvent) -> None:
    with pytest.raises(BidiAudioFormatError, match="the session takes pcm 24000 Hz, 1 channel"):
        make_protocol().send(event)


def test_image_is_a_user_input_image_item() -> None:
    (message,) = sent(make_protocol().send(BidiImageInputEvent("/9j/4AAQ", "image/jpeg")))
    assert message["item"] == {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/4AAQ"}],
    }
    with pytest.raises(BidiConfigurationError, match="image/webp"):
        make_protocol().send(BidiImageInputEvent("AAAA", "image/webp"))


def test_tool_results_answer_all_calls_before_one_response() -> None:
    protocol = make_protocol()
    feed(protocol, arguments_done("call_a", "{}"), arguments_done("call_b", "{}"))
    first = sent(
        protocol.send(
            ToolResultEvent(
                {"toolUseId": "call_a", "status": "success", "content": [{"text": "1"}]}
            )
        )
    )
    assert [m["type"] for m in first] == ["conversation.item.create"]
    second = sent(
        protocol.send(
            ToolResultEvent({"toolUseId": "call_b", "status": "error", "content": [{"text": "no"}]})
        )
    )
    assert second == [
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "call_b", "output": "Error: no"},
        },
        {"type": "response.create"},
    ]


def test_tool_result_with_json_and_long_id() -> None:
    long_id = "t" * 50
    messages = sent(
        make_protocol().send(
            ToolResultEvent({"toolUseId": long_id, "status": "success", "content": [{"json": [1]}]})
        )
    )
    item = messages[0]["item"]
    assert len(item["call_id"]) == 32
    assert item["output"] == "[1]"


def test_unsupported_tool_result_content_is_an_error() -> None:
    result: Any = {"toolUseId": "c", "status": "success", "content": [{"image": {}}]}
    with pytest.raises(BidiConfigurationError, match=r"content\[0\] \(\['image'\]\)"):
        make_protocol().send(ToolResultEvent(result))


def test_other_objects_cannot_be_sent() -> None:
    with pytest.raises(TypeError, match="BidiResponseStartEvent"):
        make_protocol().send(BidiResponseStartEvent("r"))


def test_open_messages_configure_the_session() -> None:
    protocol = make_protocol(
        turn_detection={"type": "semantic_vad", "eagerness": "low"},
        transcription="whisper-1",
        noise_reduction="near_field",
        audio={"voice": "marin", "speed": 1.2},
        inference={"max_output_tokens": 500, "tool_choice": "required"},
    )
    (update,) = sent(protocol.open_messages("Be nice.", [TOOL_SPEC], []))
    assert update == {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "output_modalities": ["audio"],
            "instructions": "Be nice.",
            "tools": [
                {
                    "type": "function",
                    "name": "get_weather",
                    "description": "Weather for a city.",
                    "parameters": TOOL_SPEC["inputSchema"]["json"],
                }
            ],
            "tool_choice": "required",
            "max_output_tokens": 500,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "turn_detection": {"type": "semantic_vad", "eagerness": "low"},
                    "transcription": {"model": "whisper-1"},
                    "noise_reduction": {"type": "near_field"},
                },
                "output": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "voice": "marin",
                    "speed": 1.2,
                },
            },
        },
    }


def test_manual_turns_send_no_turn_detection() -> None:
    (update,) = sent(make_protocol(turn_detection=None).open_messages(None, [], []))
    assert update["session"]["audio"]["input"]["turn_detection"] is None
    assert "instructions" not in update["session"]


# ---------------------------------------------------------------------- history


def test_history_items(caplog: pytest.LogCaptureFixture) -> None:
    long_id = "x" * 40
    history: list[Message] = [
        {"role": "user", "content": [{"text": "q"}]},
        {
            "role": "assistant",
            "content": [
                {"text": "let me check"},
                {"toolUse": {"toolUseId": long_id, "name": "f", "input": {"a": 1}}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": long_id, "status": "success", "content": []}},
                {"toolResult": {"toolUseId": "gone", "status": "success", "content": []}},
            ],
        },
    ]
    protocol = make_protocol()
    with caplog.at_level(logging.WARNING):
        texts = protocol.open_messages(None, [], history)
    items = [m["item"] for m in sent(texts)[1:]]
    assert [i["type"] for i in items] == [
        "message",
        "message",
        "function_call",
        "function_call_output",
    ]
    assert items[2]["call_id"] == items[3]["call_id"]
    assert len(items[2]["call_id"]) <= 32
    assert "tool_use_id=<gone> | skipping a tool result" in caplog.text


def test_history_with_a_bad_role_is_an_error() -> None:
    history: Any = [{"role": "system", "content": [{"text": "x"}]}]
    with pytest.raises(BidiConfigurationError, match=r"messages\[0\]: role 'system'"):
        make_protocol().history_items(history)


# ---------------------------------------------------------------------- truncation


def test_no_truncation_before_audio() -> None:
    protocol = make_protocol()
    assert protocol.report_playback(500) == []
    feed(protocol, SERVER_EXAMPLES[0])
    assert protocol.report_playback(500) == []


def test_truncation_is_clamped_and_sent_once_per_item() -> None:
    protocol = make_protocol()
    feed(protocol, audio_delta("item_a", 100), audio_delta("item_a", 100))
    (truncate,) = sent(protocol.report_playback(5000))
    assert truncate == {
        "type": "conversation.item.truncate",
        "item_id": "item_a",
        "content_index": 0,
        "audio_end_ms": 200,
    }
    assert protocol.report_playback(100) == []
    feed(protocol, audio_delta("item_b", 100))
    (truncate,) = sent(protocol.report_playback(-20))
    assert (truncate["item_id"], truncate["audio_end_ms"]) == ("item_b", 0)


def test_audio_without_an_item_id_is_played_but_never_truncated() -> None:
    # Found by the property test: a truncate must always name a string item id.
    protocol = make_protocol()
    message = audio_delta("item_a", 100)
    message["item_id"] = []
    (event,) = feed(protocol, message)
    assert isinstance(event, BidiAudioStreamEvent)
    assert protocol.report_playback(50) == []
