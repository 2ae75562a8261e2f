"""The oracle itself: it must reject what the official types reject, and undeclared keys."""

from __future__ import annotations

from typing import Any

import pytest

from tests.oracles.openai import (
    OpenAIOracleError,
    client_message_problems,
    server_event_problems,
    validate_client_message,
    validate_server_event,
)


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (
            {"type": "session.update", "session": {"type": "realtime", "voice": "alloy"}},
            "session.voice: key not declared",
        ),
        (
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
                },
            },
            "Input should be 24000",
        ),
        (
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "x", "extra": 1}],
                },
            },
            "content[0].extra: key not declared",
        ),
        (
            {
                "type": "conversation.item.truncate",
                "item_id": "i",
                "content_index": 0,
                "audio_end_ms": "5",
            },
            "audio_end_ms: Input should be a valid integer",
        ),
        ({"type": "input_audio_buffer.append"}, "audio: Field required"),
        (
            {"type": "response.create", "response": {"modalities": ["audio"]}},
            "response.modalities: key not declared",
        ),
        ({"type": "transcription_session.update", "session": {}}, "unknown event type"),
        ({"no": "type"}, "unknown event type None"),
        (["not", "a", "dict"], "not a JSON object"),
    ],
)
def test_client_problems(message: Any, problem: str) -> None:
    problems = client_message_problems(message)
    assert len(problems) == 1
    assert problem in problems[0]
    with pytest.raises(OpenAIOracleError):
        validate_client_message(message)


def test_valid_client_messages_pass() -> None:
    validate_client_message({"type": "response.create"})
    validate_client_message(
        {
            "type": "conversation.item.create",
            "event_id": "e1",
            "item": {"type": "function_call_output", "call_id": "c", "output": "ok"},
        }
    )


def test_server_events() -> None:
    ok = {"type": "response.created", "event_id": "e", "response": {"id": "r", "extra": 1}}
    validate_server_event(ok)  # the service adds keys the types do not declare
    assert server_event_problems({"type": "response.created"}) == [
        "'response.created' does not validate: event_id: Field required; response: Field required"
    ]
    with pytest.raises(OpenAIOracleError, match="unknown event type"):
        validate_server_event({"type": "response.audio.delta", "event_id": "e"})
