"""The Gemini Live emulator scripted the common way: queued replies and session actions.

The same names as the OpenAI emulator (``queue``, ``barge_in``, ``finish``, ``drop``,
``expire``, ``send_error``, ``wait_for_session``, ``wait_for_client_message``,
``messages_of``); every message still passes the official-type oracle (fixture).
"""

from __future__ import annotations

import pytest
import trio

from tests.fixtures.gemini import gemini_model
from tests.models._shared import TOOL_SPEC, collect_until, is_complete, of_type
from trio_bidi.errors import BidiConnectionError, BidiModelTimeoutError
from trio_bidi.events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiInterruptionEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiTextInputEvent,
    BidiTranscriptStreamEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from trio_bidi.testing import FunctionCallReply, GeminiLiveEmulator, SpokenReply

from ._util import drain


def _finals(events: list[BidiOutputEvent]) -> list[str]:
    return [
        e.text
        for e in events
        if isinstance(e, BidiTranscriptStreamEvent) and e.is_final and e.role == "assistant"
    ]


async def test_queued_replies_answer_the_next_turns_then_the_default(
    gemini_emulator: GeminiLiveEmulator,
) -> None:
    gemini_emulator.queue(
        FunctionCallReply("get_weather", {"city": "Oslo"}, call_id="call-1"),
        SpokenReply("It is sunny in Oslo.", audio_ms=300, chunk_ms=100),
    )
    async with gemini_model(gemini_emulator).connect(tools=[TOOL_SPEC]) as connection:
        await connection.send(BidiTextInputEvent("weather in Oslo?"))
        events = await collect_until(connection, lambda e: isinstance(e, ToolUseStreamEvent))
        (use,) = of_type(events, ToolUseStreamEvent)
        assert use.current_tool_use == {
            "toolUseId": "call-1",
            "name": "get_weather",
            "input": {"city": "Oslo"},
        }
        await connection.send(
            ToolResultEvent(
                {"toolUseId": "call-1", "status": "success", "content": [{"text": "sunny"}]}
            )
        )
        events = await collect_until(connection, is_complete)
        assert _finals(events) == ["It is sunny in Oslo."]
        assert len(of_type(events, BidiAudioStreamEvent)) == 3
        # The queue is empty: the default reply.
        await connection.send(BidiTextInputEvent("thanks"))
        events = await collect_until(connection, is_complete)
        assert _finals(events) == ["You said thanks"]
    assert len(gemini_emulator.messages_of("toolResponse")) == 1
    assert len(gemini_emulator.messages_of("clientContent")) == 2
    assert gemini_emulator.messages_of("setup")


async def test_barge_in_stops_a_held_reply_and_finish_ends_another(
    gemini_emulator: GeminiLiveEmulator,
) -> None:
    gemini_emulator.queue(SpokenReply("interrupted", hold=True), SpokenReply("held", hold=True))
    async with gemini_model(gemini_emulator).connect() as connection:
        await connection.send(BidiTextInputEvent("one"))
        await collect_until(connection, lambda e: isinstance(e, BidiAudioStreamEvent))
        await gemini_emulator.barge_in()
        events = await collect_until(connection, is_complete)
        assert of_type(events, BidiInterruptionEvent)
        assert of_type(events, BidiResponseCompleteEvent)[-1].stop_reason == "interrupted"
        await connection.send(BidiTextInputEvent("two"))
        await collect_until(connection, lambda e: isinstance(e, BidiAudioStreamEvent))
        session = await gemini_emulator.wait_for_session()
        assert session.response_active
        await gemini_emulator.finish()
        events = await collect_until(connection, is_complete)
        assert of_type(events, BidiResponseCompleteEvent)[-1].stop_reason == "complete"
        await gemini_emulator.wait_response_done()
        assert not session.response_active


async def test_wait_for_client_message_by_kind(gemini_emulator: GeminiLiveEmulator) -> None:
    async with gemini_model(gemini_emulator).connect() as connection:
        audio = BidiAudioInputEvent("AAAA" * 80, "pcm", 16000, 1)
        for _ in range(3):
            await connection.send(audio)
        message = await gemini_emulator.wait_for_client_message("realtimeInput.audio", count=3)
        assert message["realtimeInput"]["audio"]["mimeType"] == "audio/pcm;rate=16000"
        assert len(gemini_emulator.messages_of("realtimeInput")) == 3
        assert not gemini_emulator.messages_of("realtimeInput.text")


async def test_send_error_closes_like_the_service(gemini_emulator: GeminiLiveEmulator) -> None:
    async with gemini_model(gemini_emulator).connect() as connection:
        await gemini_emulator.wait_for_session()
        await gemini_emulator.send_error("Request contains an invalid argument.", code=1007)
        with pytest.raises(BidiConnectionError) as info:
            await drain(connection)
    assert info.value.code == 1007
    assert "invalid argument" in str(info.value)


async def test_drop_and_expire(gemini_emulator: GeminiLiveEmulator) -> None:
    model = gemini_model(gemini_emulator)
    async with model.connect() as connection:
        await gemini_emulator.wait_for_session()
        await gemini_emulator.drop()
        with pytest.raises(BidiConnectionError):
            await drain(connection)
    async with model.connect() as connection, trio.open_nursery() as nursery:
        session = await gemini_emulator.wait_session_count(2)
        nursery.start_soon(gemini_emulator.expire)
        with pytest.raises(BidiModelTimeoutError) as timeout:
            await drain(connection)
    assert timeout.value.restart_config == {"session_handle": session.handles[-1]}


async def test_respond_starts_a_turn_without_client_input(
    gemini_emulator: GeminiLiveEmulator,
) -> None:
    async with gemini_model(gemini_emulator).connect() as connection:
        await gemini_emulator.respond(SpokenReply("Hello, I speak first."))
        events = await collect_until(connection, is_complete)
    assert _finals(events) == ["Hello, I speak first."]
    assert not gemini_emulator.messages_of("clientContent")
