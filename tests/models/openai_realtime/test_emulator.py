"""The emulator's own behaviour, driven with a raw WebSocket client.

These messages are written by hand, so some are deliberately wrong (to see the emulator
answer like the service); the emulator here has no client validator, but every server
event it sends still goes through the official server event types.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from tests.fixtures.openai import assert_no_openai_violations
from tests.oracles.openai import client_message_problems, server_event_problems
from trio_bidi._websocket import WebSocket, WebSocketHandshakeError, open_websocket
from trio_bidi.testing import EmulatedOpenAISession, OpenAIRealtimeEmulator, SpokenReply

from ._util import pcm_chunk


@asynccontextmanager
async def raw_session(
    **kwargs: Any,
) -> AsyncIterator[tuple[OpenAIRealtimeEmulator, WebSocket]]:
    async with OpenAIRealtimeEmulator(
        server_message_validator=server_event_problems, **kwargs
    ) as emulator:
        headers = {"Authorization": f"Bearer {emulator.api_key}"}
        async with open_websocket(f"{emulator.url}?model=gpt-realtime", headers=headers) as ws:
            created = await next_event(ws)
            assert created["type"] == "session.created"
            yield emulator, ws
    assert_no_openai_violations(emulator)


async def next_event(ws: WebSocket, kind: str | None = None) -> dict[str, Any]:
    with trio.fail_after(5):
        while True:
            event: dict[str, Any] = json.loads(await ws.receive())
            if kind is None or event["type"] == kind:
                return event


async def send(ws: WebSocket, message: dict[str, Any]) -> None:
    await ws.send_text(json.dumps(message))


async def test_refuses_a_wrong_key_and_a_missing_model() -> None:
    async with OpenAIRealtimeEmulator(api_key="right") as emulator:
        with pytest.raises(WebSocketHandshakeError, match="HTTP 401"):
            async with open_websocket(
                emulator.url + "?model=m", headers={"Authorization": "Bearer no"}
            ):
                pass
        with pytest.raises(WebSocketHandshakeError, match="HTTP 400"):
            async with open_websocket(emulator.url, headers={"Authorization": "Bearer right"}):
                pass
    assert emulator.refused == [
        (401, "Incorrect API key provided."),
        (400, "Missing required parameter: 'model'."),
    ]


async def test_beta_header_is_a_violation() -> None:
    async with OpenAIRealtimeEmulator(api_key=None) as emulator:
        headers = {"OpenAI-Beta": "realtime=v1"}
        async with open_websocket(emulator.url + "?model=m", headers=headers) as ws:
            await next_event(ws, "session.created")
    assert emulator.violations == [
        "session 0, message -1 (handshake): OpenAI-Beta header sent (realtime=v1); "
        "GA clients send none"
    ]


async def test_validator_problems_are_recorded() -> None:
    emulator_args: dict[str, Any] = {"client_message_validator": client_message_problems}
    async with OpenAIRealtimeEmulator(**emulator_args) as emulator:
        headers = {"Authorization": f"Bearer {emulator.api_key}"}
        async with open_websocket(emulator.url + "?model=m", headers=headers) as ws:
            await next_event(ws, "session.created")
            await send(ws, {"type": "response.create", "bogus": 1})
            await next_event(ws, "response.done")
    assert emulator.violations == [
        "session 0, message 0 (client response.create): 'response.create' bogus: key not "
        "declared by ResponseCreateEvent"
    ]


async def test_client_errors_are_answered_like_the_service() -> None:
    async with raw_session() as (emulator, ws):
        await send(ws, {"type": "response.cancel", "event_id": "e1"})
        error = await next_event(ws, "error")
        assert error["error"]["code"] == "response_cancel_not_active"
        assert error["error"]["event_id"] == "e1"

        await send(ws, {"type": "input_audio_buffer.commit"})
        error = await next_event(ws, "error")
        assert error["error"]["code"] == "input_audio_buffer_commit_empty"

        await send(
            ws,
            {
                "type": "conversation.item.truncate",
                "item_id": "nope",
                "content_index": 0,
                "audio_end_ms": 1,
            },
        )
        error = await next_event(ws, "error")
        assert error["error"]["code"] == "item_not_found"

        await send(ws, {"type": "session.update", "session": {"instructions": "x"}})
        error = await next_event(ws, "error")
        assert error["error"]["param"] == "session.type"

        await send(ws, {"type": "transcription_session.update"})
        error = await next_event(ws, "error")
        assert error["error"]["code"] == "invalid_value"

        await send(ws, {"type": "input_audio_buffer.append", "audio": "not base64!"})
        error = await next_event(ws, "error")
        assert error["error"]["param"] == "audio"

        await ws.send_text("{broken")
        error = await next_event(ws, "error")
        assert error["error"]["code"] == "invalid_json"
        # An undecodable message is a protocol violation even without a validator.
        assert [v.split(": not JSON")[0] for v in emulator.violations] == [
            "session 0, message 6 (?)"
        ]
        emulator.violations.clear()
    assert len(emulator.sessions[0].errors_sent) == 7


async def test_truncation_is_checked_against_the_audio_sent() -> None:
    async with raw_session() as (emulator, ws):
        emulator.queue(SpokenReply("hi", audio_ms=300))
        await send(ws, {"type": "response.create"})
        added = await next_event(ws, "response.output_item.added")
        await next_event(ws, "response.done")
        item_id = added["item"]["id"]
        truncate = {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0}
        await send(ws, {**truncate, "audio_end_ms": 301})
        error = await next_event(ws, "error")
        assert "shorter than 301ms" in error["error"]["message"]
        await send(ws, {**truncate, "audio_end_ms": 120})
        truncated = await next_event(ws, "conversation.item.truncated")
        assert truncated["audio_end_ms"] == 120
        assert emulator.sessions[0].truncations == [(item_id, 120)]


async def test_manual_commit_transcribes_and_answers_once_asked() -> None:
    async with raw_session(vad_threshold=None) as (_emulator, ws):
        await send(
            ws,
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "audio": {
                        "input": {"turn_detection": None, "transcription": {"model": "whisper-1"}}
                    },
                },
            },
        )
        await next_event(ws, "session.updated")
        await send(ws, {"type": "input_audio_buffer.append", "audio": pcm_chunk(200, 3000)})
        await send(ws, {"type": "input_audio_buffer.commit"})
        completed = await next_event(ws, "conversation.item.input_audio_transcription.completed")
        assert completed["transcript"] == "(spoken input, 0.2 seconds)"
        await send(ws, {"type": "response.create"})
        done = await next_event(ws, "response.output_audio_transcript.done")
        assert done["transcript"] == "You said: (spoken input, 0.2 seconds)"


async def test_rules_can_replace_the_default_handling() -> None:
    seen: list[str] = []

    async def answer_with_error(session: EmulatedOpenAISession, message: dict[str, Any]) -> None:
        seen.append(message["type"])
        await session.send_error("Rate limited.", code="rate_limit_exceeded")

    async with raw_session() as (emulator, ws):
        emulator.on_client("response.create", answer_with_error, replace_default=True)
        await send(ws, {"type": "response.create"})
        error = await next_event(ws, "error")
        assert error["error"]["code"] == "rate_limit_exceeded"
        assert not emulator.sessions[0].response_active
    assert seen == ["response.create"]


async def test_held_reply_finishes_on_request() -> None:
    async with raw_session() as (emulator, ws):
        emulator.queue(SpokenReply("wait for it", audio_ms=100, hold=True))
        await send(ws, {"type": "response.create"})
        await next_event(ws, "response.output_audio_transcript.done")
        session = emulator.sessions[0]
        assert session.response_active
        await emulator.finish()
        done = await next_event(ws, "response.done")
        assert done["response"]["status"] == "completed"
        await session.wait_response_done()
        assert not session.response_active
