"""Sans-IO tests of the Nova Sonic protocol: every mapping both ways, plus hypothesis."""

from __future__ import annotations

import base64
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracles.nova import NovaClientOracle, schema_problems
from trio_bidi.errors import (
    BidiAudioFormatError,
    BidiConfigurationError,
    BidiModelTimeoutError,
    BidiProviderError,
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
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from trio_bidi.models.nova_sonic._config import resolve_provider_config
from trio_bidi.models.nova_sonic._eventstream import Message
from trio_bidi.models.nova_sonic._protocol import NovaSonicProtocol, is_barge_in_text
from trio_bidi.models.nova_sonic._wire import decode_output, encode_event, split_utf8
from trio_bidi.types import Message as ChatMessage

from ._util import TOOL_SPEC

V2 = "amazon.nova-2-sonic-v1:0"
V1 = "amazon.nova-sonic-v1:0"
FIXTURES = Path("/work/shared/reference/strands-test-fixtures/nova_sonic.jsonl")


class FakeSession:
    def __init__(self, model_id: str = V2) -> None:
        self.index = 0
        self.model_id = model_id


def protocol(model_id: str = V2, **config: Any) -> NovaSonicProtocol:
    counter = itertools.count()
    return NovaSonicProtocol(
        model_id, resolve_provider_config(config, model_id), new_id=lambda: f"id-{next(counter)}"
    )


def opened(model_id: str = V2, **config: Any) -> NovaSonicProtocol:
    proto = protocol(model_id, **config)
    proto.open_events("sys", [TOOL_SPEC], [])
    return proto


def ev(name: str, **body: Any) -> dict[str, Any]:
    return {"event": {name: body}}


def assert_valid(events: list[dict[str, Any]], model_id: str = V2) -> None:
    oracle = NovaClientOracle()
    session = FakeSession(model_id)
    problems = [p for e in events for p in oracle(session, e)]
    assert problems == []


# ---------------------------------------------------------------- client -> service


def test_open_sequence_layout_and_schema() -> None:
    proto = protocol(turn_detection={"endpointingSensitivity": "LOW"})
    history: list[ChatMessage] = [
        {"role": "user", "content": [{"text": "hi"}]},
        {
            "role": "assistant",
            "content": [
                {"text": "hello"},
                {"toolUse": {"toolUseId": "t", "name": "x", "input": {}}},
            ],
        },
    ]
    events = proto.open_events("Be brief.", [TOOL_SPEC], history)
    names = [next(iter(e["event"])) for e in events]
    assert names == [
        "sessionStart",
        "promptStart",
        *["contentStart", "textInput", "contentEnd"] * 3,
        "contentStart",
    ]
    start = events[0]["event"]["sessionStart"]
    assert start["turnDetectionConfiguration"] == {"endpointingSensitivity": "LOW"}
    assert start["inferenceConfiguration"] == {"maxTokens": 1024, "topP": 0.9, "temperature": 0.7}
    tools = events[1]["event"]["promptStart"]["toolConfiguration"]["tools"]
    assert (
        json.loads(tools[0]["toolSpec"]["inputSchema"]["json"]) == TOOL_SPEC["inputSchema"]["json"]
    )
    roles = [e["event"]["contentStart"]["role"] for e in events if "contentStart" in e["event"]]
    assert roles == ["SYSTEM", "USER", "ASSISTANT", "USER"]
    assert events[-1]["event"]["contentStart"]["type"] == "AUDIO"
    assert_valid([*events, *proto.close_events()])


def test_send_mappings_and_close() -> None:
    proto = opened()
    audio = proto.send(BidiAudioInputEvent("AAAA", "pcm", 16000, 1))
    assert audio == [
        ev("audioInput", promptName=proto.prompt_name, contentName="id-2", content="AAAA")
    ]
    text = proto.send(BidiTextInputEvent("hello"))
    assert [next(iter(e["event"])) for e in text] == ["contentStart", "textInput", "contentEnd"]
    assert text[0]["event"]["contentStart"]["interactive"] is True
    result = proto.send(
        ToolResultEvent({"toolUseId": "t1", "status": "error", "content": [{"text": "boom"}]})
    )
    assert result[0]["event"]["contentStart"]["toolResultInputConfiguration"]["toolUseId"] == "t1"
    assert result[1]["event"]["toolResult"]["content"] == "Error: boom"
    close = proto.close_events()
    assert [next(iter(e["event"])) for e in close] == ["contentEnd", "promptEnd", "sessionEnd"]
    assert close[0]["event"]["contentEnd"]["contentName"] == "id-2"  # the microphone block
    assert proto.close_events() == []


def test_send_refusals() -> None:
    proto = opened()
    with pytest.raises(BidiAudioFormatError, match="24000 Hz"):
        proto.send(BidiAudioInputEvent("AAAA", "pcm", 24000, 1))
    with pytest.raises(BidiAudioFormatError):
        proto.send(BidiAudioInputEvent("AAAA", "pcm", 16000, 2))
    with pytest.raises(BidiConfigurationError, match="not supported by Nova Sonic"):
        proto.send(BidiImageInputEvent("aGk=", "image/png"))
    with pytest.raises(TypeError, match="BidiUsageEvent"):
        proto.send(BidiUsageEvent(1, 1, 2))
    with pytest.raises(BidiConfigurationError, match="only Nova 2"):
        opened(V1).send(BidiTextInputEvent("hello"))


def test_long_text_is_split_inside_one_block() -> None:
    proto = opened()
    events = proto.send(BidiTextInputEvent("ü" * 1500))
    inputs = [e["event"]["textInput"] for e in events if "textInput" in e["event"]]
    assert len(inputs) == 3
    assert {i["contentName"] for i in inputs} == {events[0]["event"]["contentStart"]["contentName"]}
    assert all(len(i["content"].encode()) <= 1024 for i in inputs)
    assert "".join(i["content"] for i in inputs) == "ü" * 1500


@given(st.text(max_size=3000), st.integers(4, 2048))
def test_split_utf8_keeps_text_and_limit(text: str, limit: int) -> None:
    pieces = split_utf8(text, limit)
    assert "".join(pieces) == text
    assert all(0 < len(p.encode()) <= limit for p in pieces)


def test_history_drops_oldest_and_starts_with_user() -> None:
    proto = protocol()
    big = "x" * 10_000
    messages: list[ChatMessage] = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": [{"text": f"{i}{big}"}]}
        for i in range(6)
    ]
    texts = proto.history_texts(messages)
    assert sum(len(t.encode()) for _, t in texts) <= 40 * 1024
    assert texts[0][0] == "USER"
    assert texts[-1][1].startswith("5")
    assert [t[1][0] for t in texts] == ["2", "3", "4", "5"]
    with pytest.raises(BidiConfigurationError, match="role"):
        proto.history_texts([{"role": "system", "content": [{"text": "x"}]}])  # type: ignore[typeddict-item]


@given(st.lists(st.tuples(st.booleans(), st.text(max_size=3000)), max_size=40))
@settings(max_examples=50)
def test_history_always_within_limits(items: list[tuple[bool, str]]) -> None:
    messages: list[ChatMessage] = [
        {"role": "user" if user else "assistant", "content": [{"text": text}]}
        for user, text in items
    ]
    proto = protocol()
    events = proto.open_events(None, [], messages)
    assert_valid([*events, *proto.close_events()])


# ---------------------------------------------------------------- service -> client


def receive(proto: NovaSonicProtocol, *events: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for event in events:
        out.extend(proto.receive_event(event))
    return out


def content_start(cid: str, kind: str, role: str, stage: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"contentId": cid, "type": kind, "role": role}
    if stage:
        body["additionalModelFields"] = json.dumps({"generationStage": stage})
    return ev("contentStart", **body)


def test_spoken_turn_mapping() -> None:
    proto = opened(audio={"output_rate": 24000})
    out = receive(
        proto,
        ev("completionStart", completionId="c"),
        content_start("u", "TEXT", "USER", "FINAL"),
        ev("textOutput", contentId="u", role="USER", content="what time is it"),
        ev("contentEnd", contentId="u", stopReason="END_TURN", type="TEXT"),
        content_start("s", "TEXT", "ASSISTANT", "SPECULATIVE"),
        ev("textOutput", contentId="s", role="ASSISTANT", content="It is noon."),
        ev("contentEnd", contentId="s", stopReason="PARTIAL_TURN"),
        content_start("a", "AUDIO", "ASSISTANT"),
        ev("audioOutput", contentId="a", content="AAAA"),
        ev("contentEnd", contentId="a", stopReason="PARTIAL_TURN"),
        content_start("f", "TEXT", "ASSISTANT", "FINAL"),
        ev("textOutput", contentId="f", role="ASSISTANT", content="It is noon."),
        ev("contentEnd", contentId="f", stopReason="END_TURN"),
        ev("usageEvent", totalInputTokens=3, totalOutputTokens=4, totalTokens=7),
    )
    assert out[0] == BidiTranscriptStreamEvent(
        {"text": "what time is it"}, "what time is it", "user", True, "what time is it"
    )
    assert isinstance(out[1], BidiResponseStartEvent)
    assert (out[2].is_final, out[2].role) == (False, "assistant")
    assert out[3] == BidiAudioStreamEvent("AAAA", "pcm", 24000, 1)
    assert out[4].is_final is True
    assert out[5] == BidiResponseCompleteEvent(out[1].response_id, "complete")
    assert out[6] == BidiUsageEvent(3, 4, 7)
    assert proto.completed_responses == 1


def test_barge_in_mapping_gives_one_interruption() -> None:
    proto = opened()
    out = receive(
        proto,
        content_start("a", "AUDIO", "ASSISTANT"),
        ev("audioOutput", contentId="a", content="AAAA"),
        ev("contentEnd", contentId="a", stopReason="INTERRUPTED"),
        content_start("f", "TEXT", "ASSISTANT", "FINAL"),
        ev("textOutput", contentId="f", role="ASSISTANT", content='{ "interrupted" : true }'),
        ev("contentEnd", contentId="f", stopReason="INTERRUPTED"),
    )
    kinds = [type(e).__name__ for e in out]
    assert kinds == [
        "BidiResponseStartEvent",
        "BidiAudioStreamEvent",
        "BidiInterruptionEvent",
        "BidiResponseCompleteEvent",
    ]
    assert out[3].stop_reason == "interrupted"


def test_barge_in_text_first_also_interrupts_once() -> None:
    proto = opened()
    out = receive(
        proto,
        content_start("a", "AUDIO", "ASSISTANT"),
        ev("audioOutput", contentId="a", content="AAAA"),
        ev("textOutput", contentId="x", role="ASSISTANT", content='{"interrupted": true}'),
        ev("contentEnd", contentId="a", stopReason="INTERRUPTED"),
    )
    assert [type(e) for e in out].count(BidiInterruptionEvent) == 1
    assert out[-1].stop_reason == "interrupted"
    assert not [e for e in out if isinstance(e, BidiTranscriptStreamEvent)]


def test_tool_use_mapping_plain_and_double_encoded() -> None:
    proto = opened()
    plain = receive(
        proto,
        content_start("t", "TOOL", "TOOL"),
        ev(
            "toolUse",
            contentId="t",
            toolName="get_weather",
            toolUseId="u1",
            content='{"city": "Rome"}',
        ),
        ev("contentEnd", contentId="t", stopReason="TOOL_USE"),
    )
    assert plain[1] == ToolUseStreamEvent(
        {"toolUse": {"input": '{"city": "Rome"}'}},
        {"toolUseId": "u1", "name": "get_weather", "input": {"city": "Rome"}},
    )
    assert plain[2].stop_reason == "tool_use"
    double = receive(
        proto,
        ev(
            "toolUse",
            contentId="t2",
            toolName="x",
            toolUseId="u2",
            content=json.dumps(json.dumps({"a": 1})),
        ),
    )
    assert double[-1].current_tool_use["input"] == {"a": 1}
    bad = receive(proto, ev("toolUse", toolName="x", toolUseId="u3", content="{not json"))
    assert isinstance(bad[-1], BidiErrorEvent)
    not_object = receive(proto, ev("toolUse", toolName="x", toolUseId="u4", content="[1]"))
    assert isinstance(not_object[-1], BidiErrorEvent)


def test_end_turn_of_a_response_with_a_tool_is_tool_use() -> None:
    proto = opened()
    out = receive(
        proto,
        ev("toolUse", contentId="t", toolName="x", toolUseId="u", content="{}"),
        ev("completionEnd", stopReason="END_TURN"),
    )
    assert out[-1].stop_reason == "tool_use"


@pytest.mark.parametrize(
    ("kind", "message", "expected"),
    [
        (
            "modelTimeoutException",
            "Model has timed out in processing the request",
            BidiModelTimeoutError,
        ),
        ("validationException", "InternalErrorCode=531: Request timeout", BidiModelTimeoutError),
        ("internalServerException", "System instability detected", BidiModelTimeoutError),
        ("modelStreamErrorException", "stream error", BidiModelTimeoutError),
        ("validationException", "InvalidEventBytes: bad", BidiModelTimeoutError),
        ("throttlingException", "Too many requests", BidiProviderError),
        ("validationException", "Invalid input request", BidiProviderError),
        ("accessDeniedException", "no access", BidiProviderError),
        ("serviceUnavailableException", "unavailable", BidiProviderError),
    ],
)
def test_exception_messages(kind: str, message: str, expected: type[Exception]) -> None:
    proto = opened()
    payload = json.dumps({"message": message}).encode()
    out = proto.receive_message(
        Message({":message-type": "exception", ":exception-type": kind}, payload)
    )
    assert out == []
    assert proto.ending is not None
    first, second = proto.ending.error(), proto.ending.error()
    assert type(first) is expected
    assert first is not second  # a fresh exception each time
    assert kind in str(first)
    assert message in str(first)
    if isinstance(first, BidiProviderError):
        assert first.code == kind


def test_unmodeled_error_message() -> None:
    proto = opened()
    proto.receive_message(
        Message(
            {":message-type": "error", ":error-code": "InternalFailure", ":error-message": "x"}, b""
        )
    )
    assert proto.ending is not None
    assert proto.ending.type == "InternalFailure"
    assert not proto.ending.recoverable


def test_undecodable_output_is_an_error_event() -> None:
    proto = opened()
    out = proto.receive_message(Message({":message-type": "event"}, b"not json"))
    assert isinstance(out[0], BidiErrorEvent)


def test_output_payload_round_trip() -> None:
    event = ev("textOutput", content="hi", role="ASSISTANT")
    from trio_bidi.models.nova_sonic._eventstream import EventStreamDecoder

    decoder = EventStreamDecoder()
    decoder.feed(encode_event(event))
    (message,) = list(decoder)
    assert decode_output(message) == event


def test_barge_in_marker_detection() -> None:
    assert is_barge_in_text('{ "interrupted" : true }')
    assert is_barge_in_text('{"interrupted":true}')
    assert not is_barge_in_text("I was interrupted")
    assert not is_barge_in_text('{"interrupted": false}')


def test_strands_fixtures_map_as_strands_expects() -> None:
    """The server events of the Strands unit tests, through our protocol."""
    lines = [json.loads(line) for line in FIXTURES.read_text().splitlines() if line.strip()]
    for fixture in lines:
        proto = opened()
        event = fixture["event"]
        if "_exception" in event:
            kind = event["_exception"][0].lower() + event["_exception"][1:]
            proto.receive_message(
                Message(
                    {":message-type": "exception", ":exception-type": kind},
                    json.dumps({"message": event["message"]}).encode(),
                )
            )
            assert proto.ending is not None
            assert isinstance(proto.ending.error(), BidiModelTimeoutError), fixture
            continue
        if "stopReason" in event:
            out = receive(proto, ev("contentEnd", **event))
            assert BidiInterruptionEvent("user_speech") in out
            continue
        out = receive(proto, {"event": event})
        name = next(iter(event))
        if name == "audioOutput":
            assert out[-1] == BidiAudioStreamEvent(event[name]["content"], "pcm", 16000, 1)
        elif name == "textOutput":
            assert (out[-1].text, out[-1].role) == ("Hello, world!", "assistant")
        elif name == "toolUse":
            assert out[-1].current_tool_use == {
                "toolUseId": "tool-123",
                "name": "get_weather",
                "input": {"location": "Seattle"},
            }
        elif name == "usageEvent":
            assert out == [BidiUsageEvent(40, 60, 100, [{"output": {"speechTokens": 30}}])]
        elif name == "contentStart":
            # Our response starts at its first output, not at a block's start.
            assert out == []


# ---------------------------------------------------------------- hypothesis

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
event_names = st.sampled_from(
    [
        "completionStart",
        "contentStart",
        "textOutput",
        "audioOutput",
        "toolUse",
        "contentEnd",
        "completionEnd",
        "usageEvent",
        "unknownThing",
    ]
)
field_values = st.one_of(
    json_values,
    st.sampled_from(
        [
            "ASSISTANT",
            "USER",
            "TOOL",
            "TEXT",
            "AUDIO",
            "END_TURN",
            "INTERRUPTED",
            "TOOL_USE",
            "PARTIAL_TURN",
            '{ "interrupted" : true }',
            '{"generationStage":"SPECULATIVE"}',
            "{}",
            "c1",
            "c2",
        ]
    ),
)
bodies = st.dictionaries(
    st.sampled_from(
        [
            "contentId",
            "role",
            "type",
            "content",
            "stopReason",
            "additionalModelFields",
            "toolName",
            "toolUseId",
            "totalTokens",
            "totalInputTokens",
            "totalOutputTokens",
            "details",
        ]
    ),
    field_values,
    max_size=6,
)
output_events = st.one_of(
    st.builds(lambda n, b: {"event": {n: b}}, event_names, bodies),
    json_values.map(lambda v: {"event": v}),
    st.dictionaries(st.text(max_size=5), json_values, max_size=2),
)


@given(st.lists(output_events, max_size=30))
@settings(max_examples=200)
def test_arbitrary_output_sequences_never_raise(events: list[dict[str, Any]]) -> None:
    proto = opened()
    open_id: str | None = None
    for event in events:
        for out in proto.receive_event(event):
            # Responses never nest and each completes with its own id.
            if isinstance(out, BidiResponseStartEvent):
                assert open_id is None
                open_id = out.response_id
            elif isinstance(out, BidiResponseCompleteEvent):
                assert out.response_id == open_id
                open_id = None
            elif isinstance(out, BidiTranscriptStreamEvent):
                assert not is_barge_in_text(out.text)
    assert proto.response_active == (open_id is not None)


@given(
    st.lists(
        st.tuples(st.sampled_from(["event", "exception", "error", "junk"]), st.binary(max_size=60)),
        max_size=10,
    )
)
def test_arbitrary_output_messages_never_raise(messages: list[tuple[str, bytes]]) -> None:
    proto = opened()
    for kind, payload in messages:
        headers = {":message-type": kind, ":exception-type": "throttlingException"}
        proto.receive_message(Message(headers, payload))


def test_encoded_client_events_pass_the_schema() -> None:
    proto = opened()
    event = proto.send(BidiAudioInputEvent(base64.b64encode(b"\0\0").decode(), "pcm", 16000, 1))[0]
    assert schema_problems(event) == []
    assert schema_problems(ev("audioInput", promptName="p", contentName="c", content="x", extra=1))


@pytest.mark.parametrize("separator", [b'{"bytes":"', b'{"bytes": "', b'{ "bytes" : "'])
def test_payload_shapes_decode_alike(separator: bytes) -> None:
    event = ev("textOutput", content="???>>>" * 20, role="ASSISTANT")
    encoded = base64.b64encode(json.dumps(event).encode())
    assert b"/" in encoded
    for body in (encoded, encoded.replace(b"/", b"\\/")):  # JSON may escape the slash
        payload = separator + body + b'"}'
        assert decode_output(Message({":message-type": "event"}, payload)) == event
