"""End to end: BidiGeminiLiveModel against the loopback emulator, over real sockets.

Every client and server message is validated by the official google-genai types (the
``gemini_emulator`` fixture fails the test otherwise).
"""

from __future__ import annotations

import base64

import pytest
import trio

from tests.fixtures.gemini import assert_no_violations, gemini_model, validated_gemini_emulator
from tests.models._shared import counting_reader_steps
from trio_bidi.errors import (
    BidiAudioFormatError,
    BidiConfigurationError,
    BidiConnectionError,
    BidiModelTimeoutError,
    BidiStateError,
)
from trio_bidi.events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiConnectionStartEvent,
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
from trio_bidi.models import BidiConnection
from trio_bidi.testing import EmulatedGeminiSession, GeminiLiveEmulator
from trio_bidi.types import Message

from ._util import TOOL_SPEC, collect_until, drain, is_complete, of_type, pcm, wait_for

HISTORY: list[Message] = [
    {"role": "user", "content": [{"text": "What is the weather in Paris?"}]},
    {
        "role": "assistant",
        "content": [
            {"toolUse": {"toolUseId": "old-1", "name": "get_weather", "input": {"city": "Paris"}}}
        ],
    },
    {
        "role": "user",
        "content": [
            {
                "toolResult": {
                    "toolUseId": "old-1",
                    "status": "success",
                    "content": [{"json": {"sky": "clear"}}],
                }
            }
        ],
    },
    {"role": "assistant", "content": [{"text": "It is clear in Paris."}]},
]


# ---------------------------------------------------------------------------- setup


async def test_setup_carries_the_whole_configuration(gemini_emulator: GeminiLiveEmulator) -> None:
    model = gemini_model(
        gemini_emulator,
        {
            "audio": {"voice": "Puck"},
            "inference": {"temperature": 0.5, "max_tokens": 200},
            "activity_detection": {
                "start_of_speech_sensitivity": "START_SENSITIVITY_LOW",
                "silence_duration_ms": 400,
            },
            "activity_handling": "START_OF_ACTIVITY_INTERRUPTS",
            "context_window_compression": {"trigger_tokens": 20000, "sliding_window": {}},
            "proactive_audio": True,
            "affective_dialog": True,
            "language_code": "en-US",
        },
    )
    async with model.connect(system_prompt="Be brief.", tools=[TOOL_SPEC], messages=HISTORY):
        session = await gemini_emulator.wait_session()
        await session.wait_message_count(1)
    setup = session.setup
    assert setup["model"] == "models/gemini-2.5-flash-native-audio-preview-09-2025"
    generation = setup["generationConfig"]
    assert generation["responseModalities"] == ["AUDIO"]
    assert generation["temperature"] == 0.5
    assert generation["maxOutputTokens"] == 200
    assert generation["speechConfig"] == {
        "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}},
        "languageCode": "en-US",
    }
    assert generation["enableAffectiveDialog"] is True
    assert setup["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    (declaration,) = setup["tools"][0]["functionDeclarations"]
    assert declaration["name"] == "get_weather"
    assert declaration["parametersJsonSchema"] == TOOL_SPEC["inputSchema"]["json"]
    assert setup["realtimeInputConfig"] == {
        "automaticActivityDetection": {
            "startOfSpeechSensitivity": "START_SENSITIVITY_LOW",
            "silenceDurationMs": 400,
        },
        "activityHandling": "START_OF_ACTIVITY_INTERRUPTS",
    }
    assert setup["inputAudioTranscription"] == {}
    assert setup["outputAudioTranscription"] == {}
    assert setup["sessionResumption"] == {}
    assert setup["contextWindowCompression"] == {"triggerTokens": 20000, "slidingWindow": {}}
    assert setup["proactivity"] == {"proactiveAudio": True}
    # History follows setupComplete as one clientContent without turnComplete.
    (history,) = session.messages
    turns = history["clientContent"]["turns"]
    assert history["clientContent"]["turnComplete"] is False
    assert [turn["role"] for turn in turns] == ["user", "model", "user", "model"]
    assert turns[1]["parts"][0]["functionCall"] == {
        "id": "old-1",
        "name": "get_weather",
        "args": {"city": "Paris"},
    }
    assert turns[2]["parts"][0]["functionResponse"] == {
        "id": "old-1",
        "name": "get_weather",
        "response": {"output": {"sky": "clear"}},
    }


@pytest.mark.parametrize("history", [HISTORY, []])
async def test_initial_history_in_client_content(
    gemini_emulator: GeminiLiveEmulator, history: list[Message]
) -> None:
    model = gemini_model(gemini_emulator, {"initial_history_in_client_content": True})
    async with model.connect(messages=history) as connection:
        await connection.send(BidiTextInputEvent("now"))
        events = await collect_until(connection, is_complete)
    session = gemini_emulator.sessions[0]
    assert session.setup["historyConfig"] == {"initialHistoryInClientContent": True}
    first = session.messages[0]["clientContent"]
    assert first["turnComplete"] is True
    assert len(first.get("turns", [])) == (4 if history else 0)
    assert session.history_complete
    # The history got no reply; the turn after it did.
    finals = [t.text for t in of_type(events, BidiTranscriptStreamEvent) if t.is_final]
    assert finals == ["You said now"]


async def test_api_key_goes_in_the_header(gemini_emulator: GeminiLiveEmulator) -> None:
    model = gemini_model(gemini_emulator, headers={"x-extra": "1"})
    async with model.connect() as connection:
        session = await gemini_emulator.wait_session()
        assert session.request_headers["x-goog-api-key"] == gemini_emulator.api_key
        assert session.request_headers["x-extra"] == "1"
        assert "key=" not in session.request_path
        assert session.request_path.endswith(".BidiGenerateContent")
        assert connection.is_open


async def test_wrong_api_key_is_a_1007_connection_error() -> None:
    async with validated_gemini_emulator() as emulator:
        model = gemini_model(emulator, api_key="wrong")
        with pytest.raises(BidiConnectionError, match="1007") as info:
            async with model.connect():
                pass
        assert info.value.code == 1007
        assert "API key not valid" in str(info.value)
    assert_no_violations(emulator)


async def test_nothing_listening_is_a_connection_error() -> None:
    async with validated_gemini_emulator() as emulator:
        url = emulator.url
    model = gemini_model(emulator, url=url, connect_timeout_s=2)
    with pytest.raises(BidiConnectionError, match="cannot open"):
        async with model.connect():
            pass


# ---------------------------------------------------------------------------- text, audio


async def test_text_turn_gives_a_paired_response(gemini_emulator: GeminiLiveEmulator) -> None:
    model = gemini_model(gemini_emulator)
    async with model.connect() as connection:
        await connection.send(BidiTextInputEvent("hello"))
        events = await collect_until(connection, is_complete)
        await connection.send(BidiTextInputEvent("again"))
        events += await collect_until(connection, is_complete)
    session = gemini_emulator.sessions[0]
    assert session.messages[0] == {
        "clientContent": {
            "turns": [{"role": "user", "parts": [{"text": "hello"}]}],
            "turnComplete": True,
        }
    }
    assert isinstance(events[0], BidiConnectionStartEvent)
    starts = of_type(events, BidiResponseStartEvent)
    completes = of_type(events, BidiResponseCompleteEvent)
    assert [s.response_id for s in starts] == [c.response_id for c in completes]
    assert len(set(s.response_id for s in starts)) == 2
    assert all(c.stop_reason == "complete" for c in completes)
    audio = of_type(events, BidiAudioStreamEvent)
    assert len(audio) == 4
    assert all(a.sample_rate == 24000 and a.channels == 1 and a.format == "pcm" for a in audio)
    finals = [t for t in of_type(events, BidiTranscriptStreamEvent) if t.is_final]
    assert [(t.role, t.text) for t in finals] == [
        ("assistant", "You said hello"),
        ("assistant", "You said again"),
    ]
    usage = of_type(events, BidiUsageEvent)
    assert usage[0].input_tokens == 12
    assert usage[0].output_tokens == 30
    assert usage[0].total_tokens == 42
    assert usage[0].modality_details == [
        {"modality": "TEXT", "input_tokens": 4, "output_tokens": 0},
        {"modality": "AUDIO", "input_tokens": 8, "output_tokens": 30},
    ]
    # Order within a response: start, content, usage, complete.
    first = events[1 : events.index(completes[0]) + 1]
    assert isinstance(first[0], BidiResponseStartEvent)
    assert isinstance(first[-2], BidiUsageEvent)


async def test_text_frames_work_too() -> None:
    async with validated_gemini_emulator(binary_frames=False) as emulator:
        async with gemini_model(emulator).connect() as connection:
            await connection.send(BidiTextInputEvent("hello"))
            events = await collect_until(connection, is_complete)
        assert of_type(events, BidiTranscriptStreamEvent)[-1].text == "You said hello"
    assert_no_violations(emulator)


async def test_realtime_text_input(gemini_emulator: GeminiLiveEmulator) -> None:
    model = gemini_model(gemini_emulator, {"text_input": "realtime"})
    async with model.connect() as connection:
        await connection.send(BidiTextInputEvent("hi there"))
        events = await collect_until(connection, is_complete)
    assert gemini_emulator.sessions[0].messages[0] == {"realtimeInput": {"text": "hi there"}}
    assert of_type(events, BidiTranscriptStreamEvent)[-1].text == "You said hi there"


async def test_audio_in_and_out(gemini_emulator: GeminiLiveEmulator) -> None:
    model = gemini_model(gemini_emulator)
    chunk = pcm(320)
    async with model.connect() as connection:
        for _ in range(3):
            await connection.send(BidiAudioInputEvent(chunk, "pcm", 16000, 1))
        await connection.send_audio_stream_end()
        events = await collect_until(connection, is_complete)
    session = gemini_emulator.sessions[0]
    assert (
        session.messages[:3]
        == [{"realtimeInput": {"audio": {"data": chunk, "mimeType": "audio/pcm;rate=16000"}}}] * 3
    )
    assert session.messages[3] == {"realtimeInput": {"audioStreamEnd": True}}
    assert session.audio_bytes == 3 * 640
    transcripts = of_type(events, BidiTranscriptStreamEvent)
    user = [t for t in transcripts if t.role == "user"]
    assert [t.is_final for t in user] == [False, True]
    assert user[-1].text == "(1920 bytes of audio)"
    assert of_type(events, BidiAudioStreamEvent)


async def test_mismatched_audio_is_a_clear_error(gemini_emulator: GeminiLiveEmulator) -> None:
    model = gemini_model(gemini_emulator)
    async with model.connect() as connection:
        with pytest.raises(BidiAudioFormatError, match=r"16000 Hz.*24000 Hz"):
            await connection.send(BidiAudioInputEvent(pcm(10), "pcm", 24000, 1))
        with pytest.raises(BidiAudioFormatError, match="2 channel"):
            await connection.send(BidiAudioInputEvent(pcm(10), "pcm", 16000, 2))
        # The connection is still usable.
        await connection.send(BidiTextInputEvent("still here"))
        await collect_until(connection, is_complete)
    assert len(gemini_emulator.sessions[0].messages) == 1


async def test_input_rate_is_configurable(gemini_emulator: GeminiLiveEmulator) -> None:
    model = gemini_model(gemini_emulator, {"audio": {"input_rate": 24000}})
    assert model.config["audio"]["input_rate"] == 24000
    async with model.connect() as connection:
        await connection.send(BidiAudioInputEvent(pcm(10), "pcm", 24000, 1))
        session = await gemini_emulator.wait_session()
        await session.wait_message_count(1)
    audio = session.messages[0]["realtimeInput"]["audio"]
    assert audio["mimeType"] == "audio/pcm;rate=24000"


async def test_images_go_as_video(gemini_emulator: GeminiLiveEmulator) -> None:
    model = gemini_model(gemini_emulator)
    image = base64.b64encode(b"\xff\xd8\xff\xe0jpeg").decode()
    async with model.connect() as connection:
        await connection.send(BidiImageInputEvent(image, "image/jpeg"))
        with pytest.raises(BidiConfigurationError, match="image/gif"):
            await connection.send(BidiImageInputEvent(image, "image/gif"))
        session = await gemini_emulator.wait_session()
        await session.wait_message_count(1)
    assert session.messages == [
        {"realtimeInput": {"video": {"data": image, "mimeType": "image/jpeg"}}}
    ]


async def test_manual_activity_signals(gemini_emulator: GeminiLiveEmulator) -> None:
    model = gemini_model(gemini_emulator, {"manual_activity": True})
    async with model.connect() as connection:
        await connection.send_activity_start()
        await connection.send(BidiAudioInputEvent(pcm(160), "pcm", 16000, 1))
        await connection.send_activity_end()
        events = await collect_until(connection, is_complete)
    session = gemini_emulator.sessions[0]
    assert session.setup["realtimeInputConfig"] == {
        "automaticActivityDetection": {"disabled": True}
    }
    assert session.messages[0] == {"realtimeInput": {"activityStart": {}}}
    assert session.messages[2] == {"realtimeInput": {"activityEnd": {}}}
    assert any(t.role == "user" for t in of_type(events, BidiTranscriptStreamEvent))


async def test_activity_signals_need_manual_mode(gemini_emulator: GeminiLiveEmulator) -> None:
    model = gemini_model(gemini_emulator)
    async with model.connect() as connection:
        with pytest.raises(BidiStateError, match="manual_activity"):
            await connection.send_activity_start()


# ---------------------------------------------------------------------------- tools


async def test_tool_calls_and_responses(gemini_emulator: GeminiLiveEmulator) -> None:
    model = gemini_model(gemini_emulator)
    async with model.connect(tools=[TOOL_SPEC]) as connection:
        session = await gemini_emulator.wait_session()
        await session.call_tools(
            [
                ("call-1", "get_weather", {"city": "Oslo"}),
                ("call-2", "get_weather", {"city": "Rome"}),
            ]
        )
        events = await collect_until(
            connection,
            lambda e: (
                isinstance(e, ToolUseStreamEvent) and e.current_tool_use["toolUseId"] == "call-2"
            ),
        )
        uses = of_type(events, ToolUseStreamEvent)
        assert [u.current_tool_use for u in uses] == [
            {"toolUseId": "call-1", "name": "get_weather", "input": {"city": "Oslo"}},
            {"toolUseId": "call-2", "name": "get_weather", "input": {"city": "Rome"}},
        ]
        assert uses[0].delta["toolUse"]["input"] == {"city": "Oslo"}
        assert connection.protocol.open_tool_calls == {
            "call-1": "get_weather",
            "call-2": "get_weather",
        }
        await connection.send(
            ToolResultEvent(
                {"toolUseId": "call-1", "status": "success", "content": [{"json": {"sky": "sun"}}]}
            )
        )
        await connection.send(
            ToolResultEvent(
                {"toolUseId": "call-2", "status": "error", "content": [{"text": "no data"}]}
            )
        )
        events += await collect_until(connection, is_complete)
        events += await collect_until(connection, is_complete)
    assert session.messages == [
        {
            "toolResponse": {
                "functionResponses": [
                    {"id": "call-1", "name": "get_weather", "response": {"output": {"sky": "sun"}}}
                ]
            }
        },
        {
            "toolResponse": {
                "functionResponses": [
                    {"id": "call-2", "name": "get_weather", "response": {"error": "no data"}}
                ]
            }
        },
    ]
    completes = of_type(events, BidiResponseCompleteEvent)
    starts = of_type(events, BidiResponseStartEvent)
    assert [s.response_id for s in starts] == [c.response_id for c in completes]


async def test_result_for_an_unknown_call_is_a_state_error(
    gemini_emulator: GeminiLiveEmulator,
) -> None:
    model = gemini_model(gemini_emulator)
    async with model.connect() as connection:
        with pytest.raises(BidiStateError, match="unknown call id 'nope'"):
            await connection.send(
                ToolResultEvent({"toolUseId": "nope", "status": "success", "content": []})
            )


async def test_tool_call_cancellation(gemini_emulator: GeminiLiveEmulator) -> None:
    model = gemini_model(gemini_emulator)
    async with model.connect(tools=[TOOL_SPEC]) as connection:
        session = await gemini_emulator.wait_session()
        await session.call_tools(
            [
                ("call-1", "get_weather", {"city": "Oslo"}),
                ("call-2", "get_weather", {"city": "Rome"}),
            ]
        )
        await session.cancel_tools(["call-1", "call-2"])
        events = await collect_until(connection, lambda e: isinstance(e, BidiToolCancellationEvent))
        assert len(of_type(events, ToolUseStreamEvent)) == 2
        cancel = events[-1]
        assert isinstance(cancel, BidiToolCancellationEvent)
        assert cancel.tool_use_ids == ("call-1", "call-2")
        assert cancel.to_dict() == {
            "type": "bidi_tool_cancellation",
            "tool_use_ids": ["call-1", "call-2"],
        }
        assert connection.protocol.open_tool_calls == {}


# ---------------------------------------------------------------------------- interruption


async def test_interruption_ends_the_response(gemini_emulator: GeminiLiveEmulator) -> None:
    model = gemini_model(gemini_emulator)
    async with model.connect() as connection:
        session = await gemini_emulator.wait_session()
        await session.speak("one two three four", complete=False)
        await session.interrupt()
        await session.send({"serverContent": {"turnComplete": True}})
        await session.speak("next turn")
        events = await collect_until(
            connection,
            lambda e: isinstance(e, BidiResponseCompleteEvent) and e.stop_reason == "complete",
        )
    kinds = [type(e).__name__ for e in events]
    interruption = kinds.index("BidiInterruptionEvent")
    interrupt_event = events[interruption]
    assert isinstance(interrupt_event, BidiInterruptionEvent)
    assert interrupt_event.reason == "user_speech"
    after = events[interruption + 1 :]
    final = after[0]
    assert isinstance(final, BidiTranscriptStreamEvent)
    assert (final.is_final, final.text) == (True, "one two three four")
    cut = after[1]
    assert isinstance(cut, BidiResponseCompleteEvent)
    assert cut.stop_reason == "interrupted"
    completes = of_type(events, BidiResponseCompleteEvent)
    assert [c.stop_reason for c in completes] == ["interrupted", "complete"]
    assert completes[0].response_id != completes[1].response_id


# ---------------------------------------------------------------------------- multi-part


async def test_multi_part_message_drops_nothing(gemini_emulator: GeminiLiveEmulator) -> None:
    model = gemini_model(gemini_emulator)
    audio = pcm(240)
    async with model.connect() as connection:
        session = await gemini_emulator.wait_session()
        await session.send(
            {
                "serverContent": {
                    "inputTranscription": {"text": "stop", "finished": True},
                    "modelTurn": {
                        "parts": [
                            {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": audio}},
                            {"text": "Okay"},
                            {"inlineData": {"mimeType": "audio/pcm", "data": audio}},
                        ]
                    },
                    "outputTranscription": {"text": "Okay, stopping"},
                    "interrupted": True,
                    "turnComplete": True,
                },
                "usageMetadata": {
                    "promptTokenCount": 5,
                    "responseTokenCount": 7,
                    "totalTokenCount": 12,
                    "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 7}],
                },
            }
        )
        await session.send(
            {
                "toolCall": {"functionCalls": [{"id": "c9", "name": "get_weather", "args": {}}]},
                "sessionResumptionUpdate": {"newHandle": "ignored-unknown", "resumable": True},
            }
        )
        events = await collect_until(connection, lambda e: isinstance(e, ToolUseStreamEvent))
        assert connection.session_handle == "ignored-unknown"
    kinds = [type(e).__name__ for e in events[1:]]
    assert kinds == [
        "BidiTranscriptStreamEvent",  # user "stop" (delta)
        "BidiTranscriptStreamEvent",  # user "stop" (final)
        "BidiResponseStartEvent",
        "BidiAudioStreamEvent",
        "BidiTranscriptStreamEvent",  # model text part
        "BidiAudioStreamEvent",
        "BidiTranscriptStreamEvent",  # output transcription
        "BidiInterruptionEvent",
        "BidiTranscriptStreamEvent",  # final output transcription
        "BidiTranscriptStreamEvent",  # final model text
        "BidiResponseCompleteEvent",
        "BidiUsageEvent",
        "BidiResponseStartEvent",
        "ToolUseStreamEvent",
    ]
    audio_events = of_type(events, BidiAudioStreamEvent)
    assert [a.audio for a in audio_events] == [audio, audio]
    usage = of_type(events, BidiUsageEvent)[0]
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (5, 7, 12)


async def test_reference_sdk_frames_are_all_converted(gemini_emulator: GeminiLiveEmulator) -> None:
    """The google-genai test frames, sent by the emulator; each one yields what it carries."""
    model = gemini_model(gemini_emulator)
    async with model.connect() as connection:
        session = await gemini_emulator.wait_session()
        await session.send({"serverContent": {"modelTurn": {"parts": [{"text": "test"}]}}})
        await session.send(
            {
                "serverContent": {
                    "modelTurn": {
                        "parts": [{"inlineData": {"data": "MDAwMDAw", "mimeType": "audio/pcm"}}]
                    }
                }
            }
        )
        await session.send(
            {"serverContent": {"inputTranscription": {"text": "test_input", "finished": True}}}
        )
        await session.send(
            {"serverContent": {"outputTranscription": {"text": "test_output", "finished": False}}}
        )
        await session.send(
            {"voiceActivityDetectionSignal": {"vadSignalType": "VAD_SIGNAL_TYPE_SOS"}}
        )
        await session.send(
            {
                "serverContent": {
                    "turnComplete": True,
                    "turnCompleteReason": "NEED_MORE_INPUT",
                    "waitingForInput": True,
                }
            }
        )
        events = await collect_until(connection, is_complete)
    texts = [(t.role, t.text, t.is_final) for t in of_type(events, BidiTranscriptStreamEvent)]
    assert texts == [
        ("assistant", "test", False),
        ("user", "test_input", False),
        ("user", "test_input", True),
        ("assistant", "test_output", False),
        ("assistant", "test_output", True),
        ("assistant", "test", True),
    ]
    (audio,) = of_type(events, BidiAudioStreamEvent)
    assert (audio.audio, audio.sample_rate) == ("MDAwMDAw", 24000)


# ---------------------------------------------------------------------------- resumption


async def _expect_timeout(connection: BidiConnection) -> BidiModelTimeoutError:
    with pytest.raises(BidiModelTimeoutError) as info:
        await drain(connection)
    return info.value


async def test_go_away_restarts_with_the_newest_handle(gemini_emulator: GeminiLiveEmulator) -> None:
    model = gemini_model(gemini_emulator)
    async with model.connect(messages=HISTORY) as connection:
        await connection.send(BidiTextInputEvent("first"))
        await collect_until(connection, is_complete)
        session = await gemini_emulator.wait_session()
        stale = await session.issue_handle()
        await session.go_away(time_left_s=5)  # then a fresh handle, as the service does
        error = await _expect_timeout(connection)
        assert "going away (5 s left)" in str(error)
        with pytest.raises(BidiModelTimeoutError):
            await connection.send(BidiTextInputEvent("too late"))
    handle = session.handles[-1]
    assert handle != stale
    assert error.restart_config == {"session_handle": handle}
    assert len(session.handles) == 3  # after the turn, scripted, after goAway
    # The new connection resumes: handle in setup, no history replay.
    async with model.connect(messages=HISTORY, **error.restart_config) as resumed:
        second = await gemini_emulator.wait_session_count(2)
        assert second.resumed_from == handle
        assert second.setup["sessionResumption"] == {"handle": handle}
        await resumed.send(BidiTextInputEvent("second"))
        events = await collect_until(resumed, is_complete)
    assert second.messages == [
        {
            "clientContent": {
                "turns": [{"role": "user", "parts": [{"text": "second"}]}],
                "turnComplete": True,
            }
        }
    ]
    assert of_type(events, BidiTranscriptStreamEvent)[-1].text == "You said second"


async def test_input_after_the_last_handle_is_replayed() -> None:
    async with validated_gemini_emulator(auto_reply=False) as emulator:
        model = gemini_model(emulator)
        chunk = pcm(160)
        async with model.connect() as connection:
            session = await emulator.wait_session()
            await connection.send(BidiTextInputEvent("covered"))
            await session.wait_message_count(1)
            handle = await session.issue_handle()
            await wait_for(lambda: connection.session_handle == handle)
            await connection.send(BidiAudioInputEvent(chunk, "pcm", 16000, 1))
            await connection.send(BidiTextInputEvent("not covered"))
            await session.wait_message_count(3)
            # Too little time left to wait for a fresh handle: restart at once.
            await session.go_away(time_left_s=0.5, issue_handle=False)
            error = await _expect_timeout(connection)
        assert error.restart_config == {"session_handle": handle}
        async with model.connect(**error.restart_config):
            second = await emulator.wait_session_count(2)
            await second.wait_message_count(2)
        assert second.messages == session.messages[1:]
    assert_no_violations(emulator)


async def test_transparent_resumption_uses_the_consumed_index() -> None:
    async with validated_gemini_emulator(auto_reply=False) as emulator:
        model = gemini_model(emulator, {"session_resumption": {"transparent": True}})
        async with model.connect() as connection:
            session = await emulator.wait_session()
            assert session.setup["sessionResumption"] == {"transparent": True}
            for word in ("a", "b", "c"):
                await connection.send(BidiTextInputEvent(word))
            await session.wait_message_count(3)
            handle = await session.issue_handle()
            await wait_for(lambda: connection.session_handle == handle)
            for word in ("d", "e"):
                await connection.send(BidiTextInputEvent(word))
            await session.wait_message_count(5)
            # A handle whose index covers only "a".."c" (as if "d", "e" were in flight).
            await session.send(
                {
                    "sessionResumptionUpdate": {
                        "newHandle": session.handles[-1],
                        "resumable": True,
                        "lastConsumedClientMessageIndex": "3",
                    }
                }
            )
            await session.go_away(time_left_s=0.5, issue_handle=False)
            error = await _expect_timeout(connection)
        async with model.connect(**error.restart_config):
            second = await emulator.wait_session_count(2)
            await second.wait_message_count(2)
        texts = [m["clientContent"]["turns"][0]["parts"][0]["text"] for m in second.messages]
        assert texts == ["d", "e"]
    assert_no_violations(emulator)


async def test_restart_config_after_a_lost_connection(gemini_emulator: GeminiLiveEmulator) -> None:
    model = gemini_model(gemini_emulator)
    async with model.connect() as connection:
        assert connection.restart_config() == {}
        await connection.send(BidiTextInputEvent("hello"))
        await collect_until(connection, is_complete)
        session = await gemini_emulator.wait_session()
        await wait_for(lambda: connection.session_handle == session.handles[-1])
        await session.drop()
        with pytest.raises(BidiConnectionError):
            await drain(connection)
        restart_config = connection.restart_config()
    assert restart_config == {"session_handle": session.handles[-1]}
    async with model.connect(**restart_config):
        second = await gemini_emulator.wait_session_count(2)
        assert second.resumed_from == session.handles[-1]


async def test_go_away_without_a_handle_restarts_fresh() -> None:
    async with validated_gemini_emulator(auto_reply=False) as emulator:
        model = gemini_model(emulator, {"session_resumption": False})
        async with model.connect(messages=HISTORY) as connection:
            session = await emulator.wait_session()
            assert "sessionResumption" not in session.setup
            await session.go_away()
            error = await _expect_timeout(connection)
        assert error.restart_config == {}
        async with model.connect(messages=HISTORY, **error.restart_config):
            second = await emulator.wait_session_count(2)
            await second.wait_message_count(1)
        assert second.resumed_from is None
        assert "clientContent" in second.messages[0]
    assert_no_violations(emulator)


async def test_time_limit_restarts_with_the_handle(gemini_emulator: GeminiLiveEmulator) -> None:
    model = gemini_model(gemini_emulator, time_limit_s=30)
    async with model.connect() as connection:
        opened = trio.current_time()
        assert opened + 29 < connection.deadline <= opened + 30
        await connection.send(BidiTextInputEvent("hello"))
        await collect_until(connection, is_complete)
        session = gemini_emulator.sessions[0]
        await wait_for(lambda: connection.session_handle == session.handles[-1])
        # Bring the deadline forward instead of waiting 30 s: the same cancel scope fires.
        connection.deadline = trio.current_time() + 0.05
        error = await _expect_timeout(connection)
    assert "time limit (30 s)" in str(error)
    assert error.restart_config == {"session_handle": session.handles[-1]}


async def test_default_time_limit_is_under_ten_minutes(
    gemini_emulator: GeminiLiveEmulator,
) -> None:
    model = gemini_model(gemini_emulator)
    async with model.connect() as connection:
        assert connection.deadline - trio.current_time() == pytest.approx(570, abs=5)


async def test_unknown_handle_is_refused(gemini_emulator: GeminiLiveEmulator) -> None:
    model = gemini_model(gemini_emulator)
    with pytest.raises(BidiConnectionError, match=r"1007.*Invalid session resumption handle"):
        async with model.connect(session_handle="never-issued"):
            pass


# ---------------------------------------------------------------------------- close codes


@pytest.mark.parametrize(
    ("code", "meaning", "reason"),
    [
        (1007, "invalid argument", "Request contains an invalid argument."),
        (1008, "policy violation", "Quota exceeded for this project."),
        (1011, "internal error", "Internal error encountered."),
    ],
)
async def test_close_codes_are_precise_errors(
    gemini_emulator: GeminiLiveEmulator, code: int, meaning: str, reason: str
) -> None:
    model = gemini_model(gemini_emulator)
    async with model.connect() as connection:
        session: EmulatedGeminiSession = await gemini_emulator.wait_session()
        await session.close(code, reason)
        with pytest.raises(BidiConnectionError) as info:
            await drain(connection)
        with pytest.raises(BidiConnectionError):
            await connection.send(BidiTextInputEvent("after"))
    assert info.value.code == code
    assert info.value.reason == reason
    assert (
        str(info.value)
        == f"Gemini Live closed the connection with code {code} ({meaning}): {reason}"
    )


@pytest.mark.parametrize("code", [1007, 1008, 1011])
async def test_close_during_setup_is_a_precise_error(
    gemini_emulator: GeminiLiveEmulator, code: int
) -> None:
    gemini_emulator.fail_next_setup(code, "setup refused")
    model = gemini_model(gemini_emulator)
    with pytest.raises(BidiConnectionError, match=f"code {code} .*setup refused.*during setup"):
        async with model.connect():
            pass
    # The next attempt works.
    async with model.connect() as connection:
        assert connection.is_open


async def test_leaving_on_error_closes_the_socket(gemini_emulator: GeminiLiveEmulator) -> None:
    model = gemini_model(gemini_emulator)

    async def fail_inside() -> None:
        async with model.connect():
            await gemini_emulator.wait_session()
            raise KeyError("app")

    with pytest.raises(KeyError):
        await fail_inside()
    with trio.fail_after(5):
        await gemini_emulator.sessions[0].closed.wait()


async def test_a_burst_of_audio_is_batched_by_the_writer_task_and_arrives_in_order(
    gemini_emulator: GeminiLiveEmulator,
) -> None:
    model = gemini_model(gemini_emulator)
    chunks = [base64.b64encode(bytes([index]) * 640).decode() for index in range(64)]
    async with model.connect() as connection:
        assert connection._ws._writer_running  # type: ignore[attr-defined]
        for chunk in chunks:
            await connection.send(BidiAudioInputEvent(chunk, "pcm", 16000, 1))
        session = gemini_emulator.sessions[0]
        await wait_for(lambda: session.audio_bytes == 64 * 640)
    sent = [m["realtimeInput"]["audio"]["data"] for m in session.messages[:64]]
    assert sent == chunks


async def test_the_consumer_reads_the_websocket_itself(gemini_emulator: GeminiLiveEmulator) -> None:
    # Gemini reads in steps (ConnectionBase._read_step): while the consumer keeps asking,
    # the connection's reader task does not hand events over (it only checks, every
    # 0.25 s, that somebody still reads).
    async with gemini_model(gemini_emulator).connect() as connection:
        with counting_reader_steps() as instrument:
            events: list[object] = []
            for _ in range(3):
                await connection.send(BidiTextInputEvent("hello"))
                events += await collect_until(connection, is_complete)
    assert len(of_type(events, BidiResponseCompleteEvent)) == 3
    assert len(events) > 20
    assert instrument.steps < 10, instrument.steps
