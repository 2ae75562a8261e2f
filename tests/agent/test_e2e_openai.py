"""The agent end to end with the OpenAI Realtime provider against the loopback emulator.

Every client message the provider sends is validated against ``openai.types.realtime``
by the ``openai_emulator`` fixture (undeclared keys included).
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

import numpy as np
import trio

from tests.agent._helpers import of_type, receive_until
from tests.fixtures.openai import openai_model
from trio_bidi import (
    BidiAgent,
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiConnectionRestartEvent,
    BidiConnectionStartEvent,
    BidiInterruptionEvent,
    BidiInterruptionHookEvent,
    BidiResponseCompleteEvent,
    BidiTranscriptStreamEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
    tool,
)
from trio_bidi.testing import FunctionCallReply, OpenAIRealtimeEmulator, SpokenReply

RATE = 24000


def pcm_frame(ms: int, amplitude: float) -> BidiAudioInputEvent:
    samples = np.arange(RATE * ms // 1000)
    wave = (amplitude * np.sin(2 * np.pi * 440 * samples / RATE)).astype("<i2")
    return BidiAudioInputEvent(base64.b64encode(wave.tobytes()).decode(), "pcm", RATE, 1)


@tool
async def get_weather(city: str) -> str:
    """Get the weather.

    Args:
        city: The city.
    """
    return f"{city}: 21 C and sunny"


def items_created(emulator: OpenAIRealtimeEmulator, session: int) -> list[dict[str, Any]]:
    return [
        m["item"]
        for m in emulator.sessions[session].messages
        if m["type"] == "conversation.item.create"
    ]


async def test_spoken_turn(openai_emulator: OpenAIRealtimeEmulator) -> None:
    model = openai_model(openai_emulator)
    with trio.fail_after(10):
        async with BidiAgent(model=model, system_prompt="Be brief.") as agent:
            for _ in range(15):  # 300 ms of speech
                await agent.send(pcm_frame(20, 8000))
            for _ in range(30):  # 600 ms of silence ends the turn (server VAD)
                await agent.send(pcm_frame(20, 0))
            events = await receive_until(agent, BidiResponseCompleteEvent)
    assert of_type(events, BidiAudioStreamEvent)
    finals = [e for e in of_type(events, BidiTranscriptStreamEvent) if e.is_final]
    assert [e.role for e in finals] == ["user", "assistant"]
    assert [m["role"] for m in agent.messages] == ["user", "assistant"]
    user_text = agent.messages[0]["content"][0]["text"]  # type: ignore[typeddict-item]
    assert agent.messages[1]["content"][0]["text"] == f"You said: {user_text}"  # type: ignore[typeddict-item]
    session = openai_emulator.sessions[0]
    assert session.config["instructions"] == "Be brief."


async def test_tool_round_trip(openai_emulator: OpenAIRealtimeEmulator) -> None:
    openai_emulator.queue(
        FunctionCallReply("get_weather", {"city": "Paris"}, call_id="call_weather_1"),
        SpokenReply("It is sunny in Paris."),
    )
    model = openai_model(openai_emulator)
    with trio.fail_after(10):
        async with BidiAgent(model=model, tools=[get_weather]) as agent:
            await agent.send("Weather in Paris?")
            events = await receive_until(agent, BidiResponseCompleteEvent, 2)
    use = of_type(events, ToolUseStreamEvent)[0].current_tool_use
    assert use["name"] == "get_weather"
    assert use["input"] == {"city": "Paris"}
    result = of_type(events, ToolResultEvent)[0].tool_result
    assert result["content"] == [{"text": "Paris: 21 C and sunny"}]
    # The emulator got the function's output for the model's call id.
    outputs = [i for i in items_created(openai_emulator, 0) if i["type"] == "function_call_output"]
    assert len(outputs) == 1
    assert outputs[0]["call_id"] == "call_weather_1"
    assert "Paris: 21 C and sunny" in outputs[0]["output"]
    assert openai_emulator.messages_of("response.create")
    roles = [(m["role"], next(iter(m["content"][0]))) for m in agent.messages]
    assert roles == [
        ("user", "text"),
        ("assistant", "toolUse"),
        ("user", "toolResult"),
        ("assistant", "text"),
    ]


async def test_barge_in(openai_emulator: OpenAIRealtimeEmulator) -> None:
    interruptions: list[str | None] = []

    def on_interrupt(event: BidiInterruptionHookEvent) -> None:
        interruptions.append(event.interrupted_response_id)

    openai_emulator.queue(SpokenReply("A very long story...", audio_ms=2000, hold=True))
    model = openai_model(openai_emulator)
    with trio.fail_after(10):
        async with BidiAgent(model=model, hooks=[on_interrupt]) as agent:
            await agent.send("Tell me a story.")
            await receive_until(agent, BidiAudioStreamEvent)
            await openai_emulator.barge_in()
            events = await receive_until(agent, BidiInterruptionEvent)
            # The audio output reports what was actually played; the agent forwards it.
            await agent.report_playback(300)
            truncate = await openai_emulator.wait_for_client_message("conversation.item.truncate")
            events += await receive_until(agent, BidiResponseCompleteEvent)
    assert of_type(events, BidiInterruptionEvent)[0].reason == "user_speech"
    assert of_type(events, BidiResponseCompleteEvent)[-1].stop_reason == "interrupted"
    assert interruptions
    assert interruptions[0] is not None
    assert truncate["audio_end_ms"] == 300
    assert openai_emulator.sessions[0].truncations == [(truncate["item_id"], 300)]


async def test_restart_at_the_time_limit_replays_history(
    openai_emulator: OpenAIRealtimeEmulator,
) -> None:
    openai_emulator.queue(
        FunctionCallReply("get_weather", {"city": "Oslo"}, call_id="call_oslo"),
        SpokenReply("Oslo is sunny."),
    )
    model = openai_model(openai_emulator)
    with trio.fail_after(10):
        async with BidiAgent(model=model, tools=[get_weather], system_prompt="Be kind.") as agent:
            await agent.send("Weather in Oslo?")
            await receive_until(agent, BidiResponseCompleteEvent, 2)
            history = list(agent.messages)
            await openai_emulator.expire()  # the service's 60-minute limit, then a close
            events = await receive_until(agent, BidiConnectionStartEvent)
            await agent.send("And tomorrow?")
            events += await receive_until(agent, BidiResponseCompleteEvent)
    assert of_type(events, BidiConnectionRestartEvent)
    assert len(openai_emulator.sessions) == 2
    second = openai_emulator.sessions[1]
    assert second.config["instructions"] == "Be kind."
    assert [t["name"] for t in second.config["tools"]] == ["get_weather"]
    replayed = items_created(openai_emulator, 1)
    # The history, replayed as items, in order, before the new input.
    kinds = [(i["type"], i.get("role")) for i in replayed]
    assert kinds == [
        ("message", "user"),
        ("function_call", None),
        ("function_call_output", None),
        ("message", "assistant"),
        ("message", "user"),
    ]
    assert replayed[0]["content"][0]["text"] == "Weather in Oslo?"
    assert replayed[1]["call_id"] == "call_oslo"
    assert replayed[1]["name"] == "get_weather"
    assert replayed[2]["call_id"] == "call_oslo"
    assert "Oslo: 21 C and sunny" in replayed[2]["output"]
    assert replayed[3]["content"][0]["text"] == "Oslo is sunny."
    assert replayed[4]["content"][0]["text"] == "And tomorrow?"
    assert len(history) == 4
    assert agent.messages[:4] == history
    assert agent.statistics().restarts == 1


async def test_proactive_restart_before_the_connection_deadline(
    openai_emulator: OpenAIRealtimeEmulator,
) -> None:
    # A 1 s connection limit (client_config timeout_s) and a 0.6 s margin: the agent
    # replaces the connection, idle, at about 0.4 s, before the limit cuts it.
    model = openai_model(openai_emulator, timeout_s=1.0)
    with trio.fail_after(10):
        async with BidiAgent(model=model, restart_margin_s=0.6) as agent:
            await agent.send("Remember: blue.")
            await receive_until(agent, BidiResponseCompleteEvent)
            opened = trio.current_time()
            events = await receive_until(agent, BidiConnectionStartEvent)
            restarted_after = trio.current_time() - opened
    restart = of_type(events, BidiConnectionRestartEvent)[0]
    assert "restarted before its time limit" in str(restart.timeout_error)
    assert restarted_after < 1.0
    assert openai_emulator.sessions[0].errors_sent == []
    replayed = items_created(openai_emulator, 1)
    assert [i["content"][0]["text"] for i in replayed] == [
        "Remember: blue.",
        "You said: Remember: blue.",
    ]


async def test_unpaced_sending_while_reconnecting(openai_emulator: OpenAIRealtimeEmulator) -> None:
    """The service drops the socket while the application sends as fast as it can."""
    model = openai_model(openai_emulator)
    ticks: list[float] = []
    sent = 0
    with trio.fail_after(10):
        async with BidiAgent(model=model, deadline_grace_s=0.05, gap_audio_buffer_s=0.1) as agent:

            async def heartbeat() -> None:
                while True:
                    await trio.sleep(0.01)
                    ticks.append(trio.current_time())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(heartbeat)
                await openai_emulator.sessions[0].drop()
                with trio.move_on_after(1.5) as timer:
                    while True:
                        await agent.send(pcm_frame(20, 0))
                        sent += 1
                nursery.cancel_scope.cancel()
            stats = agent.statistics()
            events = await receive_until(agent, BidiConnectionStartEvent, 2)
    assert timer.cancelled_caught
    assert len(ticks) >= 30
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.5
    assert stats.restarts == 1
    assert of_type(events, BidiConnectionRestartEvent)
    assert len(openai_emulator.sessions) == 2
    appended = [
        m for m in openai_emulator.sessions[1].messages if m["type"] == "input_audio_buffer.append"
    ]
    assert appended  # sending went on to the new connection
    assert sent > len(appended)
