"""End to end: the OpenAI Realtime provider against the loopback emulator over real sockets.

Every client message in these tests goes through the official-type oracle (the
``openai_emulator`` fixture fails the test at teardown otherwise), and so does every event
the emulator sends.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio

from tests.fixtures.openai import (
    OPENAI_TEST_KEY,
    assert_no_openai_violations,
    openai_model,
    validated_openai_emulator,
)
from trio_bidi import BidiOpenAIRealtimeModel
from trio_bidi._websocket import WebSocket, WebSocketClosed, serve_websocket
from trio_bidi.errors import (
    BidiAudioFormatError,
    BidiConfigurationError,
    BidiConnectionError,
    BidiModelTimeoutError,
    BidiProtocolError,
    BidiProviderError,
)
from trio_bidi.events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiConnectionStartEvent,
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
from trio_bidi.models import BidiModel
from trio_bidi.testing import FunctionCallReply, OpenAIRealtimeEmulator, SpokenReply
from trio_bidi.testing.contract import BidiModelContract
from trio_bidi.types import Message

from ._util import TOOL_SPEC, audio_event, collect_until, is_complete, of_type


async def test_text_turn(openai_emulator: OpenAIRealtimeEmulator) -> None:
    model = openai_model(openai_emulator)
    async with model.connect(system_prompt="Be brief.", tools=[TOOL_SPEC]) as connection:
        await connection.send(BidiTextInputEvent("hello there"))
        events = await collect_until(connection, is_complete)

    assert isinstance(events[0], BidiConnectionStartEvent)
    assert isinstance(events[1], BidiResponseStartEvent)
    audio = of_type(events, BidiAudioStreamEvent)
    assert len(audio) == 6  # 600 ms in 100 ms deltas
    assert all((a.sample_rate, a.channels, a.format) == (24000, 1, "pcm") for a in audio)
    transcripts = of_type(events, BidiTranscriptStreamEvent)
    partial = [t for t in transcripts if not t.is_final]
    final = [t for t in transcripts if t.is_final]
    assert "".join(t.text for t in partial) == "You said: hello there"
    assert partial[-1].current_transcript == "You said: hello there"
    assert [(t.role, t.text) for t in final] == [("assistant", "You said: hello there")]
    usage = of_type(events, BidiUsageEvent)[0]
    assert usage.input_tokens == 120
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.cache_read_input_tokens == 64
    assert {d["modality"] for d in usage.modality_details or []} == {"text", "audio"}
    complete = events[-1]
    assert isinstance(complete, BidiResponseCompleteEvent)
    assert complete.stop_reason == "complete"
    assert complete.response_id == events[1].response_id

    session = openai_emulator.sessions[0]
    assert session.headers["authorization"] == f"Bearer {OPENAI_TEST_KEY}"
    assert "openai-beta" not in session.headers
    assert session.model == "gpt-realtime"
    assert session.path == "/v1/realtime"
    kinds = [m["type"] for m in session.messages]
    assert kinds == ["session.update", "conversation.item.create", "response.create"]
    update = session.messages[0]["session"]
    assert update["instructions"] == "Be brief."
    assert update["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city.",
            "parameters": TOOL_SPEC["inputSchema"]["json"],
        }
    ]
    assert update["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session.messages[1]["item"] == {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "hello there"}],
    }
    assert session.config["instructions"] == "Be brief."


async def test_text_only_session(openai_emulator: OpenAIRealtimeEmulator) -> None:
    model = openai_model(openai_emulator, {"inference": {"output_modalities": ["text"]}})
    async with model.connect() as connection:
        await connection.send(BidiTextInputEvent("ping"))
        events = await collect_until(connection, is_complete)
    assert not of_type(events, BidiAudioStreamEvent)
    final = [t for t in of_type(events, BidiTranscriptStreamEvent) if t.is_final]
    assert [t.text for t in final] == ["You said: ping"]
    assert openai_emulator.client_messages[0]["session"]["output_modalities"] == ["text"]


async def test_audio_turn_with_server_vad(openai_emulator: OpenAIRealtimeEmulator) -> None:
    model = openai_model(openai_emulator)
    async with model.connect() as connection:
        for _ in range(3):
            await connection.send(audio_event(100, amplitude=6000))
        for _ in range(5):  # 500 ms of silence ends the turn (server_vad default)
            await connection.send(audio_event(100))
        events = await collect_until(connection, is_complete)

    assert of_type(events, BidiInterruptionEvent) == [BidiInterruptionEvent("user_speech")]
    user = [t for t in of_type(events, BidiTranscriptStreamEvent) if t.role == "user"]
    expected = "(spoken input, 0.8 seconds)"
    assert "".join(t.text for t in user if not t.is_final) == expected
    assert [t.text for t in user if t.is_final] == [expected]
    assistant = [t for t in of_type(events, BidiTranscriptStreamEvent) if t.role == "assistant"]
    assert assistant[-1].is_final
    assert assistant[-1].text == f"You said: {expected}"
    assert of_type(events, BidiAudioStreamEvent)
    appends = openai_emulator.messages_of("input_audio_buffer.append")
    assert len(appends) == 8
    assert openai_emulator.sessions[0].items  # the committed user audio item


async def test_audio_in_another_format_is_rejected(openai_emulator: OpenAIRealtimeEmulator) -> None:
    model = openai_model(openai_emulator)
    async with model.connect() as connection:
        with pytest.raises(BidiAudioFormatError, match="16000 Hz"):
            await connection.send(BidiAudioInputEvent("AAAA", "pcm", 16000, 1))
        with pytest.raises(BidiAudioFormatError, match="2 channel"):
            await connection.send(BidiAudioInputEvent("AAAA", "pcm", 24000, 2))
        await connection.send(BidiTextInputEvent("still open"))
        await collect_until(connection, is_complete)
    assert not openai_emulator.messages_of("input_audio_buffer.append")


async def test_tool_round_trip(openai_emulator: OpenAIRealtimeEmulator) -> None:
    openai_emulator.queue(
        FunctionCallReply("get_weather", {"city": "Paris"}, call_id="call_w1", argument_chunks=4)
    )
    model = openai_model(openai_emulator)
    async with model.connect(tools=[TOOL_SPEC]) as connection:
        await connection.send(BidiTextInputEvent("weather in Paris?"))
        events = await collect_until(connection, is_complete)
        uses = of_type(events, ToolUseStreamEvent)
        assert len(uses) == 1
        assert uses[0].current_tool_use == {
            "toolUseId": "call_w1",
            "name": "get_weather",
            "input": {"city": "Paris"},
        }
        complete = events[-1]
        assert isinstance(complete, BidiResponseCompleteEvent)
        assert complete.stop_reason == "tool_use"

        await connection.send(
            ToolResultEvent(
                {"toolUseId": "call_w1", "status": "success", "content": [{"json": {"c": 21}}]}
            )
        )
        events = await collect_until(connection, is_complete)
        final = [t for t in of_type(events, BidiTranscriptStreamEvent) if t.is_final]
        assert final[-1].text == 'The result is {"c":21}.'
        start = events[0]
        assert isinstance(start, BidiResponseStartEvent)
        assert events[-1] == BidiResponseCompleteEvent(start.response_id, "complete")

    output_items = [
        m["item"]
        for m in openai_emulator.messages_of("conversation.item.create")
        if m["item"]["type"] == "function_call_output"
    ]
    assert output_items == [
        {"type": "function_call_output", "call_id": "call_w1", "output": '{"c":21}'}
    ]
    assert len(openai_emulator.messages_of("response.create")) == 2


async def test_tool_call_with_malformed_arguments(openai_emulator: OpenAIRealtimeEmulator) -> None:
    openai_emulator.queue(FunctionCallReply("get_weather", '{"city": "Par', call_id="call_bad"))
    model = openai_model(openai_emulator)
    async with model.connect(tools=[TOOL_SPEC]) as connection:
        await connection.send(BidiTextInputEvent("weather?"))
        events = await collect_until(connection, is_complete)
        errors = of_type(events, BidiErrorEvent)
        assert len(errors) == 1
        assert isinstance(errors[0].error, BidiProtocolError)
        assert "malformed JSON arguments" in str(errors[0].error)
        assert errors[0].details == {
            "server_event_type": "response.function_call_arguments.done",
            "call_id": "call_bad",
            "name": "get_weather",
            "arguments": '{"city": "Par',
        }
        assert not of_type(events, ToolUseStreamEvent)
        # The model got an error result for the call, and the turn goes on by itself.
        events = await collect_until(connection, is_complete)
        assert of_type(events, BidiTranscriptStreamEvent)[-1].text.startswith(
            "The result is Error: function call 'get_weather' (call_bad)"
        )
        (output,) = openai_emulator.messages_of("conversation.item.create")[1:]
        assert output["item"]["call_id"] == "call_bad"
        assert len(openai_emulator.messages_of("response.create")) == 2
        # The connection keeps going.
        await connection.send(BidiTextInputEvent("again"))
        await collect_until(connection, is_complete)


async def test_barge_in_truncates_to_what_was_played(
    openai_emulator: OpenAIRealtimeEmulator,
) -> None:
    openai_emulator.queue(SpokenReply("A long answer that the user cuts off.", 500, hold=True))
    model = openai_model(openai_emulator)
    async with model.connect() as connection:
        # Before any assistant audio there is nothing to truncate: no message at all.
        await connection.report_playback(250)
        await connection.send(BidiTextInputEvent("tell me a story"))
        audio_seen = 0

        def five_audio(event: object) -> bool:
            nonlocal audio_seen
            audio_seen += isinstance(event, BidiAudioStreamEvent)
            return audio_seen == 5

        await collect_until(connection, five_audio)
        await openai_emulator.barge_in()
        events = await collect_until(connection, is_complete)
        assert BidiInterruptionEvent("user_speech") in events
        complete = events[-1]
        assert isinstance(complete, BidiResponseCompleteEvent)
        assert complete.stop_reason == "interrupted"

        await connection.report_playback(300)
        truncate = await openai_emulator.wait_for_client_message("conversation.item.truncate")
        # A second report for the same item sends nothing more.
        await connection.report_playback(320)

        # The next reply is clamped to the audio actually received (600 ms).
        await connection.send(BidiTextInputEvent("go on"))
        events = await collect_until(connection, is_complete)
        await connection.report_playback(10_000)
        second = await openai_emulator.wait_for_client_message(
            "conversation.item.truncate", count=2
        )

    session = openai_emulator.sessions[0]
    audio_item = next(i for i in session.items.values() if i.data.get("role") == "assistant")
    assert truncate == {
        "type": "conversation.item.truncate",
        "item_id": audio_item.id,
        "content_index": 0,
        "audio_end_ms": 300,
    }
    assert second["audio_end_ms"] == 600
    assert second["item_id"] != truncate["item_id"]
    assert len(openai_emulator.messages_of("conversation.item.truncate")) == 2
    assert [end for _, end in session.truncations] == [300, 600]
    assert not session.errors_sent  # the server accepted both truncations


async def test_server_error_becomes_error_event(openai_emulator: OpenAIRealtimeEmulator) -> None:
    model = openai_model(openai_emulator)
    async with model.connect() as connection:
        await collect_until(connection, lambda e: isinstance(e, BidiConnectionStartEvent))
        await openai_emulator.send_error(
            "Cancellation failed: no active response found", code="response_cancel_not_active"
        )
        await openai_emulator.send_error("Something broke.", code="server_boom")
        session = await openai_emulator.wait_for_session()
        await session.send_raw("{not json")
        events = await collect_until(
            connection, lambda e: isinstance(e, BidiErrorEvent) and "JSON" in str(e.error)
        )
        errors = of_type(events, BidiErrorEvent)
        assert len(errors) == 2  # the harmless cancel error is not reported
        assert isinstance(errors[0].error, BidiProviderError)
        assert str(errors[0].error) == "Something broke."
        assert errors[0].error.code == "server_boom"
        assert errors[0].details == {"type": "server_error", "code": "server_boom"}
        assert isinstance(errors[1].error, BidiProtocolError)
        # The connection keeps going after both.
        await connection.send(BidiTextInputEvent("still there?"))
        events = await collect_until(connection, is_complete)
        complete = events[-1]
        assert isinstance(complete, BidiResponseCompleteEvent)
        assert complete.stop_reason == "complete"


async def test_server_rejects_a_second_response(openai_emulator: OpenAIRealtimeEmulator) -> None:
    openai_emulator.queue(SpokenReply("first", 200, hold=True))
    model = openai_model(openai_emulator)
    async with model.connect() as connection:
        await connection.send(BidiTextInputEvent("one"))
        await collect_until(connection, lambda e: isinstance(e, BidiAudioStreamEvent))
        await connection.send(BidiTextInputEvent("two"))
        events = await collect_until(connection, lambda e: isinstance(e, BidiErrorEvent))
        error = events[-1]
        assert isinstance(error, BidiErrorEvent)
        assert isinstance(error.error, BidiProviderError)
        assert error.error.code == "conversation_already_has_active_response"
        await openai_emulator.finish()
        await collect_until(connection, is_complete)


async def test_disconnect_raises_connection_error(openai_emulator: OpenAIRealtimeEmulator) -> None:
    model = openai_model(openai_emulator)
    async with model.connect() as connection:
        await collect_until(connection, lambda e: isinstance(e, BidiConnectionStartEvent))
        await openai_emulator.drop()
        with pytest.raises(BidiConnectionError), trio.fail_after(5):
            async for _event in connection.receive():
                pass
        with pytest.raises(BidiConnectionError):
            await connection.send(BidiTextInputEvent("anyone?"))
        # A playback report on a broken connection is a quiet no-op.
        await connection.report_playback(100)


async def test_clean_server_close_raises_connection_error(
    openai_emulator: OpenAIRealtimeEmulator,
) -> None:
    model = openai_model(openai_emulator)
    async with model.connect() as connection:
        session = await openai_emulator.wait_for_session()
        await session.close(1011, "internal")
        with pytest.raises(BidiConnectionError) as info, trio.fail_after(5):
            async for _event in connection.receive():
                pass
        assert info.value.code == 1011


async def test_client_time_limit(openai_emulator: OpenAIRealtimeEmulator) -> None:
    model = openai_model(openai_emulator, timeout_s=0.3)
    async with model.connect() as connection:
        start = trio.current_time()
        assert connection.deadline == pytest.approx(start + 0.3, abs=0.05)
        with pytest.raises(BidiModelTimeoutError, match=r"0\.3 s"), trio.fail_after(5):
            async for _event in connection.receive():
                pass
        assert trio.current_time() - start >= 0.29


async def test_server_time_limit_is_a_timeout(openai_emulator: OpenAIRealtimeEmulator) -> None:
    openai_emulator.session_time_limit_s = 0.2
    model = openai_model(openai_emulator)
    async with model.connect() as connection:
        with pytest.raises(BidiModelTimeoutError, match="session_expired"), trio.fail_after(5):
            async for _event in connection.receive():
                pass
    assert openai_emulator.sessions[0].errors_sent[-1]["error"]["code"] == "session_expired"


async def test_history_replay(openai_emulator: OpenAIRealtimeEmulator) -> None:
    long_id = "tooluse_" + "x" * 60
    history: list[Message] = [
        {"role": "user", "content": [{"text": "What is the weather?"}]},
        {
            "role": "assistant",
            "content": [
                {
                    "toolUse": {
                        "toolUseId": long_id,
                        "name": "get_weather",
                        "input": {"city": "Oslo"},
                    }
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "toolResult": {
                        "toolUseId": long_id,
                        "status": "success",
                        "content": [{"text": "cold"}],
                    }
                },
                {
                    "toolResult": {
                        "toolUseId": "orphan",
                        "status": "success",
                        "content": [{"text": "lost"}],
                    }
                },
            ],
        },
        {"role": "assistant", "content": [{"text": "It is cold in Oslo."}]},
    ]
    model = openai_model(openai_emulator)
    async with model.connect(messages=history) as connection:
        await connection.send(BidiTextInputEvent("thanks"))
        await collect_until(connection, is_complete)
    items = [m["item"] for m in openai_emulator.messages_of("conversation.item.create")]
    call_id = items[1]["call_id"]
    assert len(call_id) <= 32
    assert items[:4] == [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "What is the weather?"}],
        },
        {
            "type": "function_call",
            "call_id": call_id,
            "name": "get_weather",
            "arguments": '{"city":"Oslo"}',
        },
        {"type": "function_call_output", "call_id": call_id, "output": "cold"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "It is cold in Oslo."}],
        },
    ]
    assert len(items) == 5  # the orphaned result is skipped; the last is "thanks"


async def test_history_with_unsupported_tool_content_fails_before_connecting(
    openai_emulator: OpenAIRealtimeEmulator,
) -> None:
    history: list[Message] = [
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {}}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "toolResult": {
                        "toolUseId": "t1",
                        "status": "success",
                        "content": [{"image": {"format": "png"}}],  # type: ignore[typeddict-unknown-key]
                    }
                }
            ],
        },
    ]
    model = openai_model(openai_emulator)
    with pytest.raises(BidiConfigurationError, match=r"content\[0\]"):
        async with model.connect(messages=history):
            pass
    assert not openai_emulator.sessions


async def test_image_input(openai_emulator: OpenAIRealtimeEmulator) -> None:
    model = openai_model(openai_emulator)
    async with model.connect() as connection:
        await connection.send(BidiImageInputEvent("iVBORw0KGgo=", "image/png"))
        with pytest.raises(BidiConfigurationError, match="image/gif"):
            await connection.send(BidiImageInputEvent("R0lGOD", "image/gif"))
        await connection.send(BidiTextInputEvent("what is in the picture?"))
        await collect_until(connection, is_complete)
    first = openai_emulator.messages_of("conversation.item.create")[0]
    assert first["item"]["content"] == [
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}
    ]


async def test_wrong_key_is_refused(openai_emulator: OpenAIRealtimeEmulator) -> None:
    model = BidiOpenAIRealtimeModel(client_config={"api_key": "wrong", "url": openai_emulator.url})
    with pytest.raises(BidiConnectionError) as info:
        async with model.connect():
            pass
    assert info.value.code == 401
    assert "wrong" not in str(info.value)
    assert openai_emulator.refused == [(401, "Incorrect API key provided.")]


async def test_organization_and_project_headers(openai_emulator: OpenAIRealtimeEmulator) -> None:
    model = openai_model(openai_emulator, organization="org-1", project="proj-1")
    async with model.connect():
        session = await openai_emulator.wait_for_session()
    assert session.headers["openai-organization"] == "org-1"
    assert session.headers["openai-project"] == "proj-1"


async def test_unreachable_server() -> None:
    async with validated_openai_emulator() as emulator:
        url = emulator.url
    model = BidiOpenAIRealtimeModel(client_config={"api_key": "k", "url": url})
    with pytest.raises(BidiConnectionError, match="cannot open"):
        async with model.connect():
            pass


# ---------------------------------------------------------------------- the contract


@attrs.define
class OpenAIHarness:
    model: BidiModel
    emulator: OpenAIRealtimeEmulator

    async def drop_connection(self) -> None:
        await self.emulator.drop()


class TestOpenAIRealtimeContract(BidiModelContract):
    @asynccontextmanager
    async def harness(self, *, time_limit_s: float | None = None) -> AsyncIterator[OpenAIHarness]:
        extra: dict[str, Any] = {} if time_limit_s is None else {"timeout_s": time_limit_s}
        async with validated_openai_emulator() as emulator:
            yield OpenAIHarness(openai_model(emulator, None, **extra), emulator)
        assert_no_openai_violations(emulator)


def test_model_is_a_bidi_model() -> None:
    model = BidiOpenAIRealtimeModel(client_config={"api_key": "k"})
    assert isinstance(model, BidiModel)
    assert json.dumps(model.config["audio"])  # plain data


# ---------------------------------------------------------------------- opening failures


@asynccontextmanager
async def scripted_server(script: list[str | None]) -> AsyncIterator[str]:
    """A bare WebSocket server that sends ``script`` (None: close 1011) and then waits."""

    async def handler(ws: WebSocket) -> None:
        for text in script:
            if text is None:
                await ws.aclose(1011, "internal error")
                return
            await ws.send_text(text)
        with contextlib.suppress(WebSocketClosed):
            while True:
                await ws.receive()

    async with trio.open_nursery() as nursery:
        server = await nursery.start(functools.partial(serve_websocket, handler))
        yield f"{server.url}/v1/realtime"
        server.close()


async def test_error_instead_of_session_created_is_a_provider_error() -> None:
    error = {
        "type": "error",
        "event_id": "event_1",
        "error": {"type": "invalid_request_error", "code": "model_not_found", "message": "No."},
    }
    async with scripted_server([json.dumps(error)]) as url:
        model = BidiOpenAIRealtimeModel(client_config={"api_key": "k", "url": url})
        with pytest.raises(BidiProviderError, match=r"^No\.$") as info:
            async with model.connect():
                pass
    assert info.value.code == "model_not_found"


async def test_close_while_opening_is_a_connection_error() -> None:
    async with scripted_server([None]) as url:
        model = BidiOpenAIRealtimeModel(client_config={"api_key": "k", "url": url})
        with pytest.raises(BidiConnectionError, match="while opening") as info:
            async with model.connect():
                pass
    assert info.value.code == 1011


async def test_noise_before_session_created_is_skipped() -> None:
    created = {"type": "session.created", "event_id": "e", "session": {"type": "realtime"}}
    script: list[str | None] = [
        "{junk",
        json.dumps({"type": "rate_limits.updated"}),
        json.dumps(created),
    ]
    async with scripted_server(script) as url:
        model = BidiOpenAIRealtimeModel(client_config={"api_key": "k", "url": url})
        async with model.connect() as connection:
            events = await collect_until(
                connection, lambda e: isinstance(e, BidiConnectionStartEvent)
            )
    assert len(events) == 1
