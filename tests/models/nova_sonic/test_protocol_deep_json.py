"""Nested-too-deep JSON from the service becomes error events, never an exception.

The JSON parser raises RecursionError (not a ValueError) past about a thousand levels;
the protocol promises it never raises on service input.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from trio_bidi.errors import BidiProtocolError
from trio_bidi.events import BidiErrorEvent, BidiOutputEvent, BidiTranscriptStreamEvent
from trio_bidi.models.nova_sonic._config import resolve_provider_config
from trio_bidi.models.nova_sonic._eventstream import EventStreamDecoder
from trio_bidi.models.nova_sonic._protocol import NovaSonicProtocol, is_barge_in_text
from trio_bidi.models.nova_sonic._wire import encode_output_event

DEPTH = 100_000
DEEP = "[" * DEPTH + "]" * DEPTH


def protocol() -> NovaSonicProtocol:
    return NovaSonicProtocol("amazon.nova-2-sonic-v1:0", resolve_provider_config(None))


def one_error(events: list[BidiOutputEvent]) -> BidiErrorEvent:
    assert len(events) == 1
    (event,) = events
    assert isinstance(event, BidiErrorEvent)
    assert isinstance(event.error, BidiProtocolError)
    return event


def ev(name: str, **body: Any) -> dict[str, Any]:
    return {"event": {name: body}}


def test_a_too_deep_event_is_an_undecodable_message() -> None:
    raw = b'{"event":{"textOutput":{"content":' + DEEP.encode() + b"}}}"
    payload = json.dumps({"bytes": base64.b64encode(raw).decode()}).encode()
    decoder = EventStreamDecoder()
    decoder.feed(encode_output_event(ev("completionStart")))
    (good,) = decoder
    proto = protocol()
    assert proto.receive_message(good) == []
    message = type(good)(good.headers, payload)
    error = one_error(proto.receive_message(message))
    assert "undecodable Nova Sonic output message" in str(error.error)
    assert "recursion" in str(error.error)


def test_a_too_deep_tool_input_is_that_tool_call_s_error() -> None:
    proto = protocol()
    events = proto.receive_event(ev("toolUse", toolName="t", toolUseId="u1", content=DEEP))
    error = events[-1]
    assert isinstance(error, BidiErrorEvent)
    assert "tool call 't' (u1) has malformed JSON input" in str(error.error)
    assert error.details == {"toolUseId": "u1", "name": "t"}


def test_too_deep_additional_model_fields_are_a_malformed_content_start() -> None:
    proto = protocol()
    error = one_error(
        proto.receive_event(ev("contentStart", contentId="c", additionalModelFields=DEEP))
    )
    assert "'contentStart' is malformed" in str(error.error)


def test_a_deep_text_that_mentions_interrupted_is_text() -> None:
    text = '{"a": ' + DEEP + ', "interrupted": true}'
    assert not is_barge_in_text(text)
    proto = protocol()
    events = proto.receive_event(ev("textOutput", contentId="c", role="ASSISTANT", content=text))
    assert isinstance(events[-1], BidiTranscriptStreamEvent)
    assert events[-1].text == text
