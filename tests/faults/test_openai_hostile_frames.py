"""OpenAI Realtime against a hostile server: bad frames, bad calls, a peer that stops reading.

The hostile server is the emulator with rules that send raw frames (``send_raw``) or stop
reading; every client message still goes through the official-type oracle. Each test
states the precise outcome: an error event naming the server event, the session going
on, and no stall.
"""

from __future__ import annotations

import base64

import pytest
import trio

from tests.fixtures.openai import (
    OPENAI_TEST_KEY,
    assert_no_openai_violations,
    openai_model,
    validated_openai_emulator,
)
from tests.models._shared import TOOL_SPEC, collect_until, is_complete, of_type
from tests.oracles.openai import client_message_problems
from trio_bidi import BidiOpenAIRealtimeModel
from trio_bidi._websocket import WebSocket, serve_websocket
from trio_bidi.errors import BidiConnectionError, BidiModelTimeoutError, BidiProtocolError
from trio_bidi.events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiErrorEvent,
    BidiTextInputEvent,
    BidiTranscriptStreamEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from trio_bidi.testing import (
    EmulatedOpenAISession,
    FunctionCallReply,
    OpenAIRealtimeEmulator,
    SpokenReply,
)


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [65, 200_000])
async def test_a_deeply_nested_event_is_an_error_event_and_the_session_goes_on(
    depth: int,
) -> None:
    async def hostile(session: EmulatedOpenAISession, message: object) -> None:
        await session.send_raw(
            '{"type":"rate_limits.updated","rate_limits":' + _nested(depth) + "}"
        )

    async with validated_openai_emulator() as emulator:
        emulator.on_client("response.create", hostile)
        async with openai_model(emulator).connect() as connection:
            await connection.send(BidiTextInputEvent("hello"))
            events = await collect_until(connection, is_complete)
        assert_no_openai_violations(emulator)
    (error,) = of_type(events, BidiErrorEvent)
    assert isinstance(error.error, BidiProtocolError)
    assert "rate_limits.updated nests deeper than 64 levels" in str(error.error)
    assert error.details["server_event_type"] == "rate_limits.updated"
    assert of_type(events, BidiTranscriptStreamEvent)[-1].text == "You said: hello"


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ("{not json", "has malformed JSON arguments"),
        (_nested(5000), "has arguments nested deeper than 64 levels"),
        ("[1, 2]", "has arguments that are not a JSON object"),
    ],
    ids=["malformed", "nested", "not-an-object"],
)
async def test_a_bad_function_call_gets_an_error_result_and_the_turn_goes_on(
    arguments: str, problem: str
) -> None:
    async with validated_openai_emulator() as emulator:
        emulator.queue(FunctionCallReply("get_weather", arguments, call_id="call_bad"))
        async with openai_model(emulator).connect(tools=[TOOL_SPEC]) as connection:
            await connection.send(BidiTextInputEvent("weather?"))
            first = await collect_until(connection, is_complete)
            # No tool result from the application: the provider answered by itself.
            second = await collect_until(connection, is_complete)
        assert_no_openai_violations(emulator)
    (error,) = of_type(first, BidiErrorEvent)
    assert f"function call 'get_weather' (call_bad) {problem}" in str(error.error)
    assert error.details["server_event_type"] == "response.function_call_arguments.done"
    assert not of_type(first, ToolUseStreamEvent)
    (output,) = [
        m["item"]
        for m in emulator.messages_of("conversation.item.create")
        if m["item"]["type"] == "function_call_output"
    ]
    assert output["call_id"] == "call_bad"
    assert output["output"].startswith("Error: function call 'get_weather' (call_bad)")
    assert len(emulator.messages_of("response.create")) == 2
    spoken = of_type(second, BidiTranscriptStreamEvent)[-1].text
    assert spoken.startswith("The result is Error: function call 'get_weather'")


async def test_a_bad_call_beside_a_good_one_waits_for_the_good_result() -> None:
    async def two_calls(session: EmulatedOpenAISession, message: object) -> None:
        if len(emulator.messages_of("response.create")) > 1:
            return  # the response after the results: nothing more to say
        for call_id, arguments in (("call_ok", '{"city": "Oslo"}'), ("call_bad", "{nope")):
            await session.send(
                {
                    "type": "response.function_call_arguments.done",
                    "response_id": "resp_two",
                    "item_id": f"item_{call_id}",
                    "output_index": 0,
                    "call_id": call_id,
                    "name": "get_weather",
                    "arguments": arguments,
                }
            )
        await session.send(
            {
                "type": "response.done",
                "response": {
                    "id": "resp_two",
                    "object": "realtime.response",
                    "status": "completed",
                },
            }
        )

    # The server events here are hand-made and partial: only client messages are checked.
    emulator = OpenAIRealtimeEmulator(
        api_key=OPENAI_TEST_KEY, client_message_validator=client_message_problems
    )
    async with emulator:
        emulator.on_client("response.create", two_calls, replace_default=True)
        async with openai_model(emulator).connect(tools=[TOOL_SPEC]) as connection:
            await connection.send(BidiTextInputEvent("weather?"))
            events = await collect_until(connection, is_complete)
            (use,) = of_type(events, ToolUseStreamEvent)
            assert use.current_tool_use["toolUseId"] == "call_ok"
            # Only the error result went out; the next response waits for the good call.
            assert len(emulator.messages_of("response.create")) == 1
            await connection.send(
                ToolResultEvent(
                    {"toolUseId": "call_ok", "status": "success", "content": [{"text": "sunny"}]}
                )
            )
            await emulator.wait_for_client_message("response.create", count=2)
        assert_no_openai_violations(emulator)
    outputs = [
        m["item"]["call_id"]
        for m in emulator.messages_of("conversation.item.create")
        if m["item"]["type"] == "function_call_output"
    ]
    assert sorted(outputs) == ["call_bad", "call_ok"]


@pytest.mark.parametrize("delta", ["not base64 at all!", "@@@@" * 400, "AAAA" * 40 + "ÿÿÿÿ"])
async def test_audio_that_is_not_base64_is_an_error_event_and_never_audio(delta: str) -> None:
    async def hostile(session: EmulatedOpenAISession, message: object) -> None:
        await session.send(
            {
                "type": "response.output_audio.delta",
                "response_id": "resp_x",
                "item_id": "item_x",
                "output_index": 0,
                "content_index": 0,
                "delta": delta,
            }
        )

    async with validated_openai_emulator() as emulator:
        emulator.on_client("response.create", hostile)
        async with openai_model(emulator).connect() as connection:
            await connection.send(BidiTextInputEvent("hello"))
            events = await collect_until(connection, is_complete)
        assert_no_openai_violations(emulator)
    (error,) = of_type(events, BidiErrorEvent)
    assert "response.output_audio.delta" in str(error.error)
    assert error.details == {"server_event_type": "response.output_audio.delta"}
    for audio in of_type(events, BidiAudioStreamEvent):
        base64.b64decode(audio.audio, validate=True)  # every audio event is real audio
    assert of_type(events, BidiTranscriptStreamEvent)[-1].text == "You said: hello"


async def test_real_speech_pcm_is_resampled_and_chunked() -> None:
    pcm = bytes(range(256)) * 64  # 16384 bytes = 8192 samples at 16 kHz = 512 ms
    async with validated_openai_emulator() as emulator:
        emulator.queue(SpokenReply("spoken", pcm=pcm, pcm_rate=16000, chunk_ms=100))
        async with openai_model(emulator).connect() as connection:
            await connection.send(BidiTextInputEvent("hello"))
            events = await collect_until(connection, is_complete)
        assert_no_openai_violations(emulator)
    chunks = [base64.b64decode(e.audio) for e in of_type(events, BidiAudioStreamEvent)]
    assert [len(c) for c in chunks] == [4800] * 5 + [24576 - 4800 * 5]
    assert all(e.sample_rate == 24000 for e in of_type(events, BidiAudioStreamEvent))


async def test_a_send_blocked_on_a_server_that_stopped_reading_ends_at_the_time_limit(
    autojump_clock: trio.abc.Clock,
) -> None:
    stalled = trio.Event()

    async def stop_reading(session: EmulatedOpenAISession, message: object) -> None:
        stalled.set()
        await trio.sleep_forever()

    async with validated_openai_emulator() as emulator:
        emulator.on_client("input_audio_buffer.append", stop_reading, replace_default=True)
        model = openai_model(emulator, timeout_s=10)
        audio = BidiAudioInputEvent("AAAA" * 4800, "pcm", 24000, 1)
        async with model.connect() as connection:

            async def send_forever() -> None:
                while True:
                    await connection.send(audio)

            start = trio.current_time()
            with pytest.raises(BidiModelTimeoutError):
                await send_forever()
            elapsed = trio.current_time() - start
        assert stalled.is_set()
    # The time limit, plus at most the transport's bounded close.
    assert 10 <= elapsed <= 15, elapsed


@pytest.mark.parametrize("connect_timeout_s", [None, 3.0])
async def test_a_server_that_never_says_session_created_fails_at_the_connect_timeout(
    autojump_clock: trio.abc.Clock, connect_timeout_s: float | None
) -> None:
    async def silent(ws: WebSocket) -> None:
        await trio.sleep_forever()

    client = {} if connect_timeout_s is None else {"connect_timeout_s": connect_timeout_s}
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, silent)
        model = BidiOpenAIRealtimeModel(
            client_config={"api_key": "k", "url": f"{server.url}/v1/realtime", **client}
        )
        start = trio.current_time()
        with pytest.raises(BidiConnectionError, match=r"no session\.created") as info:
            async with model.connect():
                pass
        elapsed = trio.current_time() - start
        server.close()
    expected = connect_timeout_s or 15.0
    assert f"within {expected:g} s" in str(info.value)
    # The timeout, plus the transport's bounded close handshake with a silent server.
    assert expected <= elapsed <= expected + 2.5
