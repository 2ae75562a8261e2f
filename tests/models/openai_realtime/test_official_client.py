"""The emulator is faithful: the official ``openai`` client talks to it like to the service.

The official client is synchronous here (``websockets.sync``) and runs in a worker thread
while the emulator serves in Trio. Its messages go through the same oracle as ours.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest
import trio
from openai.types.realtime import (
    ResponseAudioDeltaEvent,
    ResponseAudioTranscriptDoneEvent,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    SessionCreatedEvent,
    SessionUpdatedEvent,
)

from trio_bidi.testing import FunctionCallReply, OpenAIRealtimeEmulator

from ._util import pcm_chunk

# openai's sync realtime client calls websockets' connect() without a context manager,
# which websockets >= 17.1 deprecates; that is the SDK's business, not the emulator's.
SDK_DEPRECATION = "ignore:connect\\(\\) must be used as a context manager"


def run_official_client(base_url: str, api_key: str) -> list[Any]:
    """Drive one session with the official client; return the server events it parsed."""
    client = openai.OpenAI(api_key=api_key, websocket_base_url=base_url, max_retries=0)
    events: list[Any] = []
    with client.realtime.connect(model="gpt-realtime") as connection:
        events.append(connection.recv())
        connection.session.update(
            session={
                "type": "realtime",
                "instructions": "Answer briefly.",
                "output_modalities": ["audio"],
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "turn_detection": {"type": "semantic_vad", "eagerness": "high"},
                    },
                    "output": {"voice": "marin"},
                },
                "tools": [
                    {
                        "type": "function",
                        "name": "lookup",
                        "description": "Look something up.",
                        "parameters": {"type": "object", "properties": {}},
                    }
                ],
            }
        )
        connection.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hello"}],
            }
        )
        connection.response.create()
        done = 0
        while done < 2:
            event = connection.recv()
            events.append(event)
            if event.type == "response.function_call_arguments.done":
                connection.conversation.item.create(
                    item={"type": "function_call_output", "call_id": event.call_id, "output": "42"}
                )
                connection.response.create()
            if event.type == "response.done":
                done += 1
    client.close()
    return events


@pytest.mark.filterwarnings(SDK_DEPRECATION)
async def test_official_client_session(openai_emulator: OpenAIRealtimeEmulator) -> None:
    openai_emulator.queue(FunctionCallReply("lookup", {"q": "x"}, call_id="call_official"))
    assert openai_emulator.api_key is not None
    with trio.fail_after(20):
        events = await trio.to_thread.run_sync(
            run_official_client, openai_emulator.base_url, openai_emulator.api_key
        )

    assert isinstance(events[0], SessionCreatedEvent)
    assert any(isinstance(e, SessionUpdatedEvent) for e in events)
    call = next(e for e in events if isinstance(e, ResponseFunctionCallArgumentsDoneEvent))
    assert (call.call_id, call.name, call.arguments) == ("call_official", "lookup", '{"q": "x"}')
    dones = [e for e in events if isinstance(e, ResponseDoneEvent)]
    assert [d.response.status for d in dones] == ["completed", "completed"]
    assert dones[0].response.usage is not None
    assert dones[0].response.usage.input_token_details is not None
    assert dones[0].response.usage.input_token_details.cached_tokens == 64
    assert any(isinstance(e, ResponseAudioDeltaEvent) for e in events)
    transcript = next(e for e in events if isinstance(e, ResponseAudioTranscriptDoneEvent))
    assert transcript.transcript == "The result is 42."

    session = openai_emulator.sessions[0]
    assert session.headers["authorization"] == f"Bearer {openai_emulator.api_key}"
    assert "openai-beta" not in session.headers
    assert session.model == "gpt-realtime"
    assert [m["type"] for m in session.messages] == [
        "session.update",
        "conversation.item.create",
        "response.create",
        "conversation.item.create",
        "response.create",
    ]
    assert session.config["instructions"] == "Answer briefly."
    assert session.config["audio"]["output"]["voice"] == "marin"
    assert session.config["audio"]["input"]["turn_detection"]["type"] == "semantic_vad"


def run_official_audio_turn(base_url: str, api_key: str) -> list[str]:
    """Speak one turn with the official client (server VAD); return the event types."""
    client = openai.OpenAI(api_key=api_key, websocket_base_url=base_url, max_retries=0)
    kinds: list[str] = []
    with client.realtime.connect(model="gpt-realtime") as connection:
        connection.session.update(
            session={
                "type": "realtime",
                "audio": {
                    "input": {
                        "transcription": {"model": "gpt-4o-transcribe"},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
                    }
                },
            }
        )
        for amplitude in (5000, 5000, 0, 0, 0):
            connection.input_audio_buffer.append(audio=pcm_chunk(100, amplitude))
        for event in connection:
            kinds.append(event.type)
            if event.type == "response.done":
                break
    client.close()
    return kinds


@pytest.mark.filterwarnings(SDK_DEPRECATION)
async def test_official_client_audio_turn(openai_emulator: OpenAIRealtimeEmulator) -> None:
    assert openai_emulator.api_key is not None
    with trio.fail_after(20):
        kinds = await trio.to_thread.run_sync(
            run_official_audio_turn, openai_emulator.base_url, openai_emulator.api_key
        )
    expected = [
        "session.created",
        "session.updated",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
        "response.output_audio.delta",
        "response.done",
    ]
    seen = [kind for kind in kinds if kind in expected]
    # Several audio deltas in a row count once for the order check.
    in_order = [kind for i, kind in enumerate(seen) if i == 0 or kind != seen[i - 1]]
    assert in_order == expected
    assert len(openai_emulator.messages_of("input_audio_buffer.append")) == 5
