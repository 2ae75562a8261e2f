"""Property tests of the OpenAI Realtime protocol object (hypothesis).

Server events are generated from the official ``openai.types.realtime`` server event
models: each event type's declared fields, filled with values of the declared types
(literals, nested models, lists) or, sometimes, with arbitrary JSON in their place, so the
protocol sees both well-formed and broken versions of every event the service can send.
"""

from __future__ import annotations

import json
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pydantic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.realtime import RealtimeServerEvent

from tests.oracles.openai import validate_client_message
from trio_bidi.events import BidiEvent, BidiOutputEvent, ToolUseStreamEvent
from trio_bidi.models.openai_realtime import OpenAIRealtimeProtocol
from trio_bidi.models.openai_realtime._config import resolve_provider_config

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
# A few shared ids so that events of one sequence refer to each other.
IDS = st.sampled_from(["item_1", "item_2", "call_1", "call_2", "resp_1", "resp_2"])
STRINGS = IDS | st.text(max_size=12) | st.just("AAAAAA==")


def _members() -> list[type[pydantic.BaseModel]]:
    union = get_args(RealtimeServerEvent)[0]
    return list(get_args(union))


SERVER_MODELS = _members()


def for_annotation(annotation: Any, depth: int) -> st.SearchStrategy[Any]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return for_annotation(get_args(annotation)[0], depth)
    if origin is Union or origin is types.UnionType:
        return st.one_of([for_annotation(arg, depth) for arg in get_args(annotation)])
    if origin is Literal:
        return st.sampled_from(get_args(annotation))
    if origin is list:
        if depth > 3:
            return st.just([])
        return st.lists(for_annotation(get_args(annotation)[0], depth + 1), max_size=2)
    if origin is dict:
        return st.dictionaries(st.text(max_size=6), JSON, max_size=2)
    if annotation is type(None):
        return st.none()
    if annotation is str:
        return STRINGS
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.integers(-5, 5000)
    if annotation is float:
        return st.floats(0, 100)
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return model_dicts(annotation, depth + 1) if depth <= 3 else st.just({})
    return JSON


def model_dicts(
    model: type[pydantic.BaseModel], depth: int = 0
) -> st.SearchStrategy[dict[str, Any]]:
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, field in model.model_fields.items():
        key = field.alias or name
        typed = for_annotation(field.annotation, depth)
        # Mostly values of the declared type; sometimes any JSON at all.
        value = st.one_of(typed, typed, typed, JSON) if name != "type" else typed
        (required if field.is_required() else optional)[key] = value
    return st.fixed_dictionaries(required, optional=optional)


SERVER_EVENTS = st.one_of([model_dicts(model) for model in SERVER_MODELS])
RAW = st.one_of(
    SERVER_EVENTS.map(json.dumps),
    SERVER_EVENTS.map(json.dumps),
    SERVER_EVENTS.map(json.dumps),
    JSON.map(json.dumps),
    st.text(max_size=20),
    st.binary(max_size=20),
)


def check_events(events: list[BidiOutputEvent]) -> None:
    for event in events:
        assert isinstance(event, BidiEvent)
        assert event.to_dict()["type"] == event.type


def protocol() -> OpenAIRealtimeProtocol:
    return OpenAIRealtimeProtocol(resolve_provider_config(None))


@SETTINGS
@given(st.lists(RAW, max_size=25), st.integers(-100, 100_000))
def test_arbitrary_server_events_never_raise(raws: list[str | bytes], played_ms: int) -> None:
    proto = protocol()
    for raw in raws:
        events = proto.receive_raw(raw)
        check_events(events)
    # Whatever happened, a playback report is a valid client message (or nothing).
    for text in proto.report_playback(played_ms):
        message = json.loads(text)
        validate_client_message(message)
        assert message["audio_end_ms"] >= 0


def test_every_official_server_event_type_is_generated() -> None:
    kinds = {
        literal
        for model in SERVER_MODELS
        for literal in get_args(model.model_fields["type"].annotation)
    }
    assert len(kinds) == len(SERVER_MODELS) >= 40
    assert "response.output_audio.delta" in kinds


JSON_OBJECTS = st.dictionaries(st.text(max_size=8), JSON, max_size=5)


@SETTINGS
@given(JSON_OBJECTS, st.lists(st.integers(0, 10_000), max_size=8), st.booleans())
def test_split_function_call_arguments_reassemble_exactly(
    arguments: dict[str, Any], cuts: list[int], done_carries_arguments: bool
) -> None:
    text = json.dumps(arguments, ensure_ascii=False)
    points = sorted({cut % (len(text) + 1) for cut in cuts})
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    proto = protocol()
    common = {"response_id": "resp_1", "item_id": "item_f", "output_index": 0, "call_id": "call_1"}
    added = {
        "type": "response.output_item.added",
        "response_id": "resp_1",
        "output_index": 0,
        "item": {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": ""},
    }
    assert proto.receive(added) == []
    for piece in pieces:
        assert (
            proto.receive(
                {"type": "response.function_call_arguments.delta", "delta": piece, **common}
            )
            == []
        )
    done: dict[str, Any] = {"type": "response.function_call_arguments.done", "name": "f", **common}
    if done_carries_arguments:
        done["arguments"] = text
    (event,) = proto.receive(done)
    assert isinstance(event, ToolUseStreamEvent)
    assert event.delta == {"toolUse": event.current_tool_use}
    assert event.current_tool_use == {"toolUseId": "call_1", "name": "f", "input": arguments}


@SETTINGS
@given(audio=st.text(max_size=64) | st.sampled_from(['"', "\\", "\x00", "\x1f", "\x7f", "é"]))
def test_audio_append_text_is_the_json_of_the_message_for_any_string(audio: str) -> None:
    # The fast path concatenates base64 as it is; anything that would need escaping
    # (control characters, quote, backslash, non-ASCII) must go through the encoder.
    from trio_bidi.models.openai_realtime import _wire

    text = _wire.audio_append(audio)
    assert json.loads(text) == {"type": "input_audio_buffer.append", "audio": audio}
    validate_client_message(json.loads(text))
