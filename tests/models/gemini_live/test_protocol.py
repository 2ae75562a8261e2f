"""Sans-IO tests of GeminiLiveProtocol and the wire codec (synchronous, no sockets)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.oracles.gemini import validate_client_message
from trio_bidi.errors import (
    BidiAudioFormatError,
    BidiConfigurationError,
    BidiProtocolError,
    BidiStateError,
)
from trio_bidi.events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiErrorEvent,
    BidiImageInputEvent,
    BidiInterruptionEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiTextInputEvent,
    BidiToolCancellationEvent,
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from trio_bidi.models.gemini_live import GeminiLiveProtocol, _wire
from trio_bidi.models.gemini_live._model import describe_close
from trio_bidi.models.gemini_live._protocol import parse_duration

from ._util import TOOL_SPEC, pcm


def proto(**kwargs: Any) -> GeminiLiveProtocol:
    return GeminiLiveProtocol("c1", **kwargs)


def feed(protocol: GeminiLiveProtocol, message: dict[str, Any]) -> list[Any]:
    return protocol.receive(json.dumps(message))


def test_text_audio_and_turn_complete_pairing() -> None:
    p = proto()
    events = feed(p, {"serverContent": {"modelTurn": {"parts": [{"text": "Hi"}]}}})
    assert events[0] == BidiResponseStartEvent("c1-response-1")
    assert events[1] == BidiTranscriptStreamEvent({"text": "Hi"}, "Hi", "assistant", False, "Hi")
    events = feed(
        p,
        {
            "serverContent": {
                "modelTurn": {"parts": [{"inlineData": {"mimeType": "audio/pcm", "data": "AAA="}}]}
            }
        },
    )
    assert events == [BidiAudioStreamEvent("AAA=", "pcm", 24000, 1)]
    events = feed(p, {"serverContent": {"turnComplete": True}})
    assert events == [
        BidiTranscriptStreamEvent({"text": "Hi"}, "Hi", "assistant", True, "Hi"),
        BidiResponseCompleteEvent("c1-response-1", "complete"),
    ]
    assert p.response_id is None
    events = feed(p, {"serverContent": {"modelTurn": {"parts": [{"text": "Again"}]}}})
    assert events[0] == BidiResponseStartEvent("c1-response-2")


def test_turn_complete_without_a_response_emits_nothing() -> None:
    assert feed(proto(), {"serverContent": {"turnComplete": True}}) == []


def test_transcripts_accumulate_and_finish() -> None:
    p = proto()
    feed(p, {"serverContent": {"inputTranscription": {"text": "How are"}}})
    events = feed(p, {"serverContent": {"inputTranscription": {"text": " you", "finished": True}}})
    assert events == [
        BidiTranscriptStreamEvent({"text": " you"}, " you", "user", False, "How are you"),
        BidiTranscriptStreamEvent(
            {"text": "How are you"}, "How are you", "user", True, "How are you"
        ),
    ]
    events = feed(p, {"serverContent": {"outputTranscription": {"text": "Fine"}}})
    assert [type(e) for e in events] == [BidiResponseStartEvent, BidiTranscriptStreamEvent]
    events = feed(p, {"serverContent": {"generationComplete": True}})
    assert events == [
        BidiTranscriptStreamEvent({"text": "Fine"}, "Fine", "assistant", True, "Fine")
    ]
    # turnComplete does not repeat the final transcript.
    events = feed(p, {"serverContent": {"turnComplete": True}})
    assert events == [BidiResponseCompleteEvent("c1-response-1", "complete")]


def test_interruption_finishes_and_closes() -> None:
    p = proto()
    feed(p, {"serverContent": {"outputTranscription": {"text": "Long answer"}}})
    events = feed(p, {"serverContent": {"interrupted": True}})
    assert events == [
        BidiInterruptionEvent("user_speech"),
        BidiTranscriptStreamEvent(
            {"text": "Long answer"}, "Long answer", "assistant", True, "Long answer"
        ),
        BidiResponseCompleteEvent("c1-response-1", "interrupted"),
    ]
    assert feed(p, {"serverContent": {"turnComplete": True}}) == []


def test_interruption_without_output_still_signals() -> None:
    assert feed(proto(), {"serverContent": {"interrupted": True}}) == [
        BidiInterruptionEvent("user_speech")
    ]


def test_tool_calls_and_stop_reason() -> None:
    p = proto()
    events = feed(
        p,
        {
            "toolCall": {
                "functionCalls": [
                    {"id": "a", "name": "get_weather", "args": {"city": "Oslo"}},
                    {"name": "get_weather"},
                ]
            }
        },
    )
    assert events[0] == BidiResponseStartEvent("c1-response-1")
    uses = [e for e in events if isinstance(e, ToolUseStreamEvent)]
    assert [u.current_tool_use["toolUseId"] for u in uses] == ["a", "c1-call-1"]
    assert uses[1].current_tool_use["input"] == {}
    assert p.open_tool_calls == {"a": "get_weather", "c1-call-1": "get_weather"}
    events = feed(p, {"serverContent": {"turnComplete": True}})
    assert events == [BidiResponseCompleteEvent("c1-response-1", "tool_use")]
    message = p.encode(
        ToolResultEvent({"toolUseId": "a", "status": "success", "content": [{"text": "sunny"}]})
    )
    assert json.loads(message) == {
        "toolResponse": {
            "functionResponses": [
                {"id": "a", "name": "get_weather", "response": {"output": "sunny"}}
            ]
        }
    }
    validate_client_message(json.loads(message))
    assert p.open_tool_calls == {"c1-call-1": "get_weather"}


def test_tool_result_with_several_blocks_keeps_them_all() -> None:
    p = proto(tool_names={"x": "f"})
    message = p.encode(
        ToolResultEvent(
            {"toolUseId": "x", "status": "success", "content": [{"text": "a"}, {"json": {"b": 1}}]}
        )
    )
    response = json.loads(message)["toolResponse"]["functionResponses"][0]["response"]
    assert response == {"output": ["a", {"b": 1}]}


def test_tool_result_for_unknown_call() -> None:
    with pytest.raises(BidiStateError, match="unknown call id"):
        proto().encode(ToolResultEvent({"toolUseId": "zz", "status": "error", "content": []}))


def test_cancellation() -> None:
    p = proto()
    feed(p, {"toolCall": {"functionCalls": [{"id": "a", "name": "f"}, {"id": "b", "name": "f"}]}})
    events = feed(p, {"toolCallCancellation": {"ids": ["a"]}})
    # (attrs' tuple converter types the argument loosely for mypy)
    assert events == [BidiToolCancellationEvent(("a",))]
    assert p.open_tool_calls == {"b": "f"}
    assert feed(p, {"toolCallCancellation": {"ids": []}}) == []


def test_usage_with_modalities_and_cache() -> None:
    events = feed(
        proto(),
        {
            "usageMetadata": {
                "promptTokenCount": 10,
                "cachedContentTokenCount": 3,
                "responseTokenCount": 20,
                "totalTokenCount": 30,
                "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 10}],
                "responseTokensDetails": [
                    {"modality": "AUDIO", "tokenCount": 15},
                    {"modality": "TEXT", "tokenCount": 5},
                ],
            }
        },
    )
    assert events == [
        BidiUsageEvent(
            input_tokens=10,
            output_tokens=20,
            total_tokens=30,
            modality_details=[
                {"modality": "AUDIO", "input_tokens": 10, "output_tokens": 15},
                {"modality": "TEXT", "input_tokens": 0, "output_tokens": 5},
            ],
            cache_read_input_tokens=3,
        )
    ]


def test_usage_total_defaults_to_the_sum() -> None:
    (usage,) = feed(proto(), {"usageMetadata": {"promptTokenCount": 2, "responseTokenCount": 3}})
    assert isinstance(usage, BidiUsageEvent)
    assert (usage.total_tokens, usage.modality_details) == (5, None)


def test_resumption_updates_and_go_away() -> None:
    p = proto()
    feed(p, {"sessionResumptionUpdate": {"newHandle": "h1", "resumable": True}})
    assert p.session_handle == "h1"
    feed(p, {"sessionResumptionUpdate": {"newHandle": "h2", "resumable": False}})
    feed(p, {"sessionResumptionUpdate": {"resumable": True}})
    assert p.session_handle == "h1"
    feed(p, {"sessionResumptionUpdate": {"newHandle": "h3", "resumable": "true"}})
    assert p.session_handle == "h3"
    before = p.go_away
    assert feed(p, {"goAway": {"timeLeft": "1.5s"}}) == []
    assert (before, p.go_away) == (False, True)
    assert p.go_away_time_left == 1.5


def test_unconsumed_input_follows_the_handles() -> None:
    p = proto()
    for text in ("m1", "m2", "m3"):
        p.sent(text)
    assert p.unconsumed_input() == ["m1", "m2", "m3"]
    feed(
        p,
        {
            "sessionResumptionUpdate": {
                "newHandle": "h",
                "resumable": True,
                "lastConsumedClientMessageIndex": "2",
            }
        },
    )
    assert p.unconsumed_input() == ["m3"]
    feed(p, {"sessionResumptionUpdate": {"newHandle": "h", "resumable": True}})
    assert p.unconsumed_input() == []


def test_unconsumed_input_is_bounded_and_counts_drops() -> None:
    p = proto(max_unconsumed_input_bytes=10)
    for text in ("aaaa", "bbbb", "cccc"):
        p.sent(text)
    assert p.unconsumed_input() == ["bbbb", "cccc"]
    assert p.unconsumed_dropped == 1


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        json.dumps({"serverContent": "text"}),
        json.dumps({"serverContent": {"modelTurn": {"parts": "x"}}}),
        json.dumps({"toolCall": {"functionCalls": [{"id": "a"}]}}),
        json.dumps({"toolCallCancellation": {"ids": [1]}}),
        json.dumps({"usageMetadata": {"promptTokenCount": True}}),
        json.dumps(
            {
                "serverContent": {
                    "modelTurn": {
                        "parts": [
                            {"inlineData": {"mimeType": "audio/pcm;rate=8000", "data": "AA=="}}
                        ]
                    }
                }
            }
        ),
        json.dumps(
            {
                "serverContent": {
                    "modelTurn": {
                        "parts": [{"inlineData": {"mimeType": "audio/opus", "data": "AA=="}}]
                    }
                }
            }
        ),
    ],
)
def test_malformed_messages_become_error_events(raw: str) -> None:
    p = proto()
    events = p.receive(raw)
    assert isinstance(events[-1], BidiErrorEvent)
    assert isinstance(events[-1].error, BidiProtocolError)
    # The state is still usable.
    assert feed(p, {"serverContent": {"modelTurn": {"parts": [{"text": "ok"}]}}})


def test_events_before_a_malformed_part_are_kept() -> None:
    events = feed(
        proto(),
        {
            "serverContent": {
                "modelTurn": {"parts": [{"text": "kept"}, {"inlineData": {"data": 5}}]}
            }
        },
    )
    assert [type(e) for e in events] == [
        BidiResponseStartEvent,
        BidiTranscriptStreamEvent,
        BidiErrorEvent,
    ]


def test_unknown_and_ignored_messages(caplog: pytest.LogCaptureFixture) -> None:
    p = proto()
    assert feed(p, {"somethingNew": {}}) == []
    assert feed(p, {"somethingNew": {}}) == []
    assert feed(p, {"setupComplete": {}}) == []
    assert feed(p, {"voiceActivityDetectionSignal": {"vadSignalType": "VAD_SIGNAL_TYPE_SOS"}}) == []
    warnings = [r for r in caplog.records if "somethingNew" in r.getMessage()]
    assert len(warnings) == 1
    assert (
        feed(p, {"serverContent": {"modelTurn": {"parts": [{"text": "x", "thought": True}]}}}) == []
    )


# ---------------------------------------------------------------------------- outbound


def test_encode_inputs_validate_against_the_sdk_types() -> None:
    p = proto(tool_names={"t1": "f"})
    messages = [
        p.encode(BidiTextInputEvent("hi")),
        p.encode(BidiTextInputEvent("earlier answer", role="assistant")),
        p.encode(BidiAudioInputEvent(pcm(4), "pcm", 16000, 1)),
        p.encode(BidiImageInputEvent("iVBORw0KGgo=", "image/png")),
        p.encode(
            ToolResultEvent({"toolUseId": "t1", "status": "error", "content": [{"text": "x"}]})
        ),
        _wire.realtime_message(activityStart={}),
        _wire.realtime_message(audioStreamEnd=True),
        proto(text_input="realtime").encode(BidiTextInputEvent("rt")),
    ]
    for message in messages:
        validate_client_message(json.loads(message))
    assert json.loads(messages[1])["clientContent"] == {
        "turns": [{"role": "model", "parts": [{"text": "earlier answer"}]}],
        "turnComplete": False,
    }


def test_audio_message_escapes_and_matches_the_generic_encoder() -> None:
    fast = _wire.audio_message("AAEC/+8=", 16000)
    assert json.loads(fast) == {
        "realtimeInput": {"audio": {"data": "AAEC/+8=", "mimeType": "audio/pcm;rate=16000"}}
    }
    assert (
        json.loads(_wire.audio_message('a"b\\c', 24000))["realtimeInput"]["audio"]["data"]
        == 'a"b\\c'
    )


def test_encode_rejects_bad_input() -> None:
    p = proto()
    with pytest.raises(BidiAudioFormatError, match="mono pcm at 16000 Hz"):
        p.encode(BidiAudioInputEvent(pcm(4), "pcm", 48000, 1))
    with pytest.raises(BidiAudioFormatError):
        p.encode(BidiAudioInputEvent(pcm(4), "opus", 16000, 1))
    with pytest.raises(BidiConfigurationError, match="image/bmp"):
        p.encode(BidiImageInputEvent("AA==", "image/bmp"))
    with pytest.raises(BidiStateError, match="cannot send"):
        p.encode(BidiResponseStartEvent("x"))


def test_function_declarations_and_history() -> None:
    declarations = _wire.function_declarations([TOOL_SPEC])
    assert declarations == [
        {
            "name": "get_weather",
            "description": "Weather for a city.",
            "parametersJsonSchema": TOOL_SPEC["inputSchema"]["json"],
        }
    ]
    turns, names = _wire.history_turns(
        [
            {"role": "user", "content": [{"text": ""}, {"text": "hello"}]},
            {"role": "assistant", "content": []},
            {
                "role": "assistant",
                "content": [{"toolUse": {"toolUseId": "u1", "name": "f", "input": "not a dict"}}],
            },
        ]
    )
    assert turns == [
        {"role": "user", "parts": [{"text": "hello"}]},
        {"role": "model", "parts": [{"functionCall": {"id": "u1", "name": "f", "args": {}}}]},
    ]
    assert names == {"u1": "f"}
    validate_client_message(json.loads(_wire.client_content_message(turns, turn_complete=False)))


def test_decode_errors() -> None:
    with pytest.raises(BidiProtocolError, match="invalid JSON"):
        _wire.decode("{")
    with pytest.raises(BidiProtocolError, match="JSON list"):
        _wire.decode("[]")
    assert _wire.decode(b'{"a": 1}') == {"a": 1}


@pytest.mark.parametrize(
    ("mime", "rate"),
    [
        ("audio/pcm", 24000),
        ("audio/pcm;rate=16000", 16000),
        ("AUDIO/PCM; rate=48000", 48000),
        ("audio/pcm;rate=abc", None),
        ("image/png", None),
    ],
)
def test_audio_mime_rate(mime: str, rate: int | None) -> None:
    assert _wire.audio_mime_rate(mime, 24000) == rate


@pytest.mark.parametrize(
    ("value", "seconds"), [("10s", 10.0), ("0.5s", 0.5), (3, 3.0), ("soon", None), (None, None)]
)
def test_parse_duration(value: object, seconds: float | None) -> None:
    assert parse_duration(value) == seconds


def test_describe_close() -> None:
    assert describe_close(1011, "boom") == (
        "Gemini Live closed the connection with code 1011 (internal error): boom"
    )
    assert (
        describe_close(4000, "")
        == "Gemini Live closed the connection with code 4000 (unknown close code)"
    )


def test_a_call_whose_args_are_not_an_object_is_answered_with_an_error() -> None:
    protocol = proto()
    message = {
        "toolCall": {
            "functionCalls": [
                {"id": "bad", "name": "get_weather", "args": [1, 2]},
                {"id": "good", "name": "get_weather", "args": {"city": "Oslo"}},
            ]
        }
    }
    events = protocol.receive(json.dumps(message))
    errors = [e for e in events if isinstance(e, BidiErrorEvent)]
    uses = [e for e in events if isinstance(e, ToolUseStreamEvent)]
    assert len(errors) == 1
    assert "'get_weather' (bad) has args that are not an object" in str(errors[0].error)
    assert [u.current_tool_use["toolUseId"] for u in uses] == ["good"]
    (answer,) = [json.loads(text) for text in protocol.take_outbox()]
    (response,) = answer["toolResponse"]["functionResponses"]
    assert (response["id"], response["name"]) == ("bad", "get_weather")
    assert "error" in response["response"]
    validate_client_message(answer)
