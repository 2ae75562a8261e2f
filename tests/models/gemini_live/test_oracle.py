"""The Gemini oracle itself: it must accept the SDK's own frames and reject what the wire
does not allow (snake_case keys, undeclared keys, several message kinds at once)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.oracles.gemini import (
    GeminiOracleError,
    validate_client_message,
    validate_server_message,
)
from trio_bidi.events import BidiErrorEvent, BidiUsageEvent
from trio_bidi.models.gemini_live import GeminiLiveProtocol

# Server frames used by google-genai 3.4.0's own Live tests (tests/live/test_live.py and
# test_live_response.py), as on the wire.
FRAMES: list[dict[str, Any]] = [
    {"serverContent": {"turnComplete": True}},
    {"setupComplete": {"sessionId": "test_session_id"}},
    {
        "setupComplete": {
            "sessionId": "test_session_id",
            "voiceConsentSignature": {"signature": "test_sig_abc123"},
        }
    },
    {"serverContent": {"modelTurn": {"parts": [{"text": "test"}]}}},
    {
        "serverContent": {
            "modelTurn": {"parts": [{"inlineData": {"data": "MDAwMDAw", "mimeType": "audio/pcm"}}]}
        }
    },
    {
        "toolCall": {
            "functionCalls": [
                {"name": "get_current_weather", "args": {"location": "San Francisco", "unit": "C"}}
            ]
        }
    },
    {"serverContent": {"inputTranscription": {"text": "test_input", "finished": True}}},
    {"serverContent": {"outputTranscription": {"text": "test_output", "finished": False}}},
    {"goAway": {"timeLeft": "10s"}},
    {
        "sessionResumptionUpdate": {
            "newHandle": "test_handle",
            "resumable": "True",
            "lastConsumedClientMessageIndex": "123456789",
        }
    },
    {"serverContent": {"modelTurn": {"parts": [{"text": "hello"}]}}},
    {"serverContent": {"turnComplete": True, "interactionStatus": "IDLE"}},
    {"serverContent": {"modelTurn": {"parts": [{"text": "thinking..."}]}}},
    {"serverContent": {"turnComplete": True, "interactionStatus": "IN_PROGRESS"}},
    {"serverContent": {"modelTurn": {"parts": [{"text": "answer"}]}}},
    {"voiceActivityDetectionSignal": {"vadSignalType": "VAD_SIGNAL_TYPE_SOS"}},
    {
        "usageMetadata": {
            "promptTokenCount": 15,
            "responseTokenCount": 25,
            "candidatesTokenCount": 50,
            "totalTokenCount": 200,
            "responseTokensDetails": [{"tokenCount": 20, "modality": "TEXT"}],
            "candidatesTokensDetails": [{"tokenCount": 10, "modality": "TEXT"}],
        },
        "serverContent": {
            "modelTurn": {"parts": [{"text": "This is a simple response."}]},
            "turnComplete": True,
            "groundingMetadata": {
                "web_search_queries": ["test query"],
                "groundingChunks": [{"web": {"domain": "google.com", "title": "Search results"}}],
            },
        },
    },
    {
        "serverContent": {
            "modelTurn": {"parts": [{"text": "Please provide more details."}]},
            "turnComplete": True,
            "turnCompleteReason": "NEED_MORE_INPUT",
            "waitingForInput": True,
        }
    },
]


def test_reference_frames_validate_and_convert() -> None:
    protocol = GeminiLiveProtocol("ref")
    for frame in FRAMES:
        usage = frame.get("usageMetadata", {})
        if "candidatesTokenCount" in usage:
            # A Vertex-style usage block the SDK only reads leniently; the strict wire
            # type does not declare it, and the oracle says so.
            with pytest.raises(GeminiOracleError, match="candidatesTokenCount"):
                validate_server_message(frame)
        else:
            validate_server_message(frame)
        events = protocol.receive(json.dumps(frame))
        assert not [e for e in events if isinstance(e, BidiErrorEvent)], (frame, events)
        if usage:
            (usage_event,) = [e for e in events if isinstance(e, BidiUsageEvent)]
            assert usage_event.input_tokens == usage["promptTokenCount"]
    assert protocol.session_handle == "test_handle"
    assert protocol.go_away_time_left == 10.0


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ({"realtime_input": {"text": "x"}}, "snake_case"),
        (
            {"realtimeInput": {"audio": {"data": "AAA=", "mime_type": "audio/pcm"}}},
            "snake_case",
        ),
        ({"realtimeInput": {"audio": {"data": "AAA=", "mimeType": "audio/pcm", "x": 1}}}, "x"),
        ({"clientContent": {"turns": [{"role": "user", "parts": [{"txt": "a"}]}]}}, "txt"),
        ({"setup": {"model": "models/m", "realtimeInputConfig": {"vad": {}}}}, "vad"),
        ({"setup": {"model": "models/m"}, "clientContent": {}}, "exactly one"),
        ({"realtimeInput": {"text": "a", "audioStreamEnd": True}}, "exactly one"),
        ({}, "exactly one"),
        ([], "must be an object"),
    ],
)
def test_client_oracle_rejects(message: Any, problem: str) -> None:
    with pytest.raises(GeminiOracleError, match=problem):
        validate_client_message(message)


def test_client_oracle_leaves_free_form_parts_alone() -> None:
    validate_client_message(
        {
            "toolResponse": {
                "functionResponses": [
                    {"id": "a", "name": "f", "response": {"output": {"snake_key": [1, {"x": 2}]}}}
                ]
            }
        }
    )
    validate_client_message(
        {
            "setup": {
                "model": "models/m",
                "tools": [
                    {
                        "functionDeclarations": [
                            {
                                "name": "f",
                                "description": "d",
                                "parametersJsonSchema": {"snake_case_ok": True},
                            }
                        ]
                    }
                ],
                "realtimeInputConfig": {"automaticActivityDetection": {"disabled": True}},
            }
        }
    )


def test_server_oracle_rejects_unknown_and_snake_case() -> None:
    with pytest.raises(GeminiOracleError, match=r"not permitted|not a field"):
        validate_server_message({"serverContent": {"turnDone": True}})
    with pytest.raises(GeminiOracleError, match="snake_case"):
        validate_server_message({"server_content": {"turn_complete": True}})
