"""Gemini Live against a hostile server: bad frames, refused tool calls, a stalled peer.

The hostile server is the emulator with rules (``on_client``) that send raw frames
(``send_raw``) or stop reading; client messages still go through the official types.
"""

from __future__ import annotations

import base64
import json

import pytest
import trio

from tests.fixtures.gemini import assert_no_violations, gemini_model, validated_gemini_emulator
from tests.models._shared import TOOL_SPEC, collect_until, is_complete, of_type
from trio_bidi.errors import BidiModelTimeoutError, BidiProtocolError
from trio_bidi.events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiErrorEvent,
    BidiOutputEvent,
    BidiTextInputEvent,
    BidiTranscriptStreamEvent,
    ToolUseStreamEvent,
)
from trio_bidi.testing import EmulatedGeminiSession, SpokenReply


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _final_assistant_text(events: list[BidiOutputEvent]) -> str:
    finals = [
        e.text
        for e in of_type(events, BidiTranscriptStreamEvent)
        if e.is_final and e.role == "assistant"
    ]
    return finals[-1]


@pytest.mark.parametrize("depth", [65, 200_000])
async def test_a_deeply_nested_message_is_an_error_event_and_the_session_goes_on(
    depth: int,
) -> None:
    async def hostile(session: EmulatedGeminiSession, message: object) -> None:
        await session.send_raw('{"usageMetadata":{"promptTokensDetails":' + _nested(depth) + "}}")

    async with validated_gemini_emulator() as emulator:
        emulator.on_client("clientContent", hostile)
        async with gemini_model(emulator).connect() as connection:
            await connection.send(BidiTextInputEvent("hello"))
            events = await collect_until(connection, is_complete)
        assert_no_violations(emulator)
    (error,) = of_type(events, BidiErrorEvent)
    assert isinstance(error.error, BidiProtocolError)
    assert "message usageMetadata nests deeper than 64 levels" in str(error.error)
    assert error.details == {"server_message": "usageMetadata"}
    assert _final_assistant_text(events) == "You said hello"


@pytest.mark.parametrize("depth", [100, 100_000], ids=["parsed", "beyond-the-parser"])
async def test_a_tool_call_nested_too_deeply_is_answered_with_an_error(depth: int) -> None:
    async def hostile(session: EmulatedGeminiSession, message: object) -> None:
        call = '{"id":"call-deep","name":"get_weather","args":' + _nested(depth) + "}"
        await session.send_raw('{"toolCall":{"functionCalls":[' + call + "]}}")

    async with validated_gemini_emulator() as emulator:
        emulator.on_client("clientContent", hostile, replace_default=True)
        async with gemini_model(emulator).connect(tools=[TOOL_SPEC]) as connection:
            await connection.send(BidiTextInputEvent("weather?"))
            # The model's turn goes on by itself: the provider sent an error result.
            events = await collect_until(connection, is_complete)
        assert_no_violations(emulator)
    (error,) = of_type(events, BidiErrorEvent)
    assert "message toolCall nests deeper than 64 levels" in str(error.error)
    assert not of_type(events, ToolUseStreamEvent)
    (response,) = emulator.messages_of("toolResponse")
    (answer,) = response["toolResponse"]["functionResponses"]
    assert answer["id"] == "call-deep"
    assert answer["name"] == "get_weather"
    assert "nests deeper than 64 levels" in json.dumps(answer["response"])
    assert _final_assistant_text(events) == "Thanks, I have the result."


@pytest.mark.parametrize("data", ["not base64 at all!", "@@@@" * 400, "AAAA" * 40 + "ÿÿÿÿ"])
async def test_audio_that_is_not_base64_is_an_error_event_and_never_audio(data: str) -> None:
    async def hostile(session: EmulatedGeminiSession, message: object) -> None:
        part = {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": data}}
        await session.send_raw(json.dumps({"serverContent": {"modelTurn": {"parts": [part]}}}))

    async with validated_gemini_emulator() as emulator:
        emulator.on_client("clientContent", hostile)
        async with gemini_model(emulator).connect() as connection:
            await connection.send(BidiTextInputEvent("hello"))
            events = await collect_until(connection, is_complete)
        assert_no_violations(emulator)
    (error,) = of_type(events, BidiErrorEvent)
    assert "malformed serverContent message" in str(error.error)
    assert "not base64" in str(error.error)
    assert error.details == {"server_message": "serverContent"}
    for audio in of_type(events, BidiAudioStreamEvent):
        base64.b64decode(audio.audio, validate=True)
    assert _final_assistant_text(events) == "You said hello"


async def test_a_send_blocked_on_a_server_that_stopped_reading_ends_at_the_time_limit(
    autojump_clock: trio.abc.Clock,
) -> None:
    stalled = trio.Event()

    async def stop_reading(session: EmulatedGeminiSession, message: object) -> None:
        stalled.set()
        await trio.sleep_forever()

    async with validated_gemini_emulator() as emulator:
        emulator.on_client("realtimeInput.audio", stop_reading, replace_default=True)
        model = gemini_model(emulator, time_limit_s=10)
        audio = BidiAudioInputEvent("AAAA" * 3200, "pcm", 16000, 1)
        async with model.connect() as connection:

            async def send_forever() -> None:
                while True:
                    await connection.send(audio)

            start = trio.current_time()
            with pytest.raises(BidiModelTimeoutError):
                await send_forever()
            elapsed = trio.current_time() - start
        assert stalled.is_set()
    assert 10 <= elapsed <= 15, elapsed


async def test_real_speech_pcm_is_resampled_and_chunked() -> None:
    pcm = bytes(range(256)) * 64  # 8192 samples at 16 kHz = 512 ms
    async with validated_gemini_emulator() as emulator:
        emulator.queue(SpokenReply("spoken words", pcm=pcm, pcm_rate=16000, chunk_ms=200))
        async with gemini_model(emulator).connect() as connection:
            await connection.send(BidiTextInputEvent("hello"))
            events = await collect_until(connection, is_complete)
        assert_no_violations(emulator)
    chunks = [base64.b64decode(e.audio) for e in of_type(events, BidiAudioStreamEvent)]
    assert [len(c) for c in chunks] == [9600, 9600, 24576 - 19200]
    assert _final_assistant_text(events) == "spoken words"
