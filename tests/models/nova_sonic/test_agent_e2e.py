"""BidiAgent with BidiNovaSonicModel against the emulator over loopback TLS: text and audio
turns, a tool round trip, barge-in, and restarts at the time limit with the history
replayed within Nova's limits. Every client event goes through the schema/order oracle."""

from __future__ import annotations

from typing import Any, TypeVar

import trio

from tests.fixtures.nova import nova_model
from trio_bidi import (
    BidiAgent,
    BidiAudioStreamEvent,
    BidiConnectionRestartEvent,
    BidiConnectionStartEvent,
    BidiInterruptionEvent,
    BidiResponseCompleteEvent,
    BidiTranscriptStreamEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
    tool,
)
from trio_bidi.testing import FunctionCallReply, SpokenReply
from trio_bidi.testing._nova_emulator import NovaSonicEmulator
from trio_bidi.types import Message

from ._util import audio_event

E = TypeVar("E")


@tool
async def get_weather(city: str) -> str:
    """Get the weather.

    Args:
        city: The city.
    """
    await trio.lowlevel.checkpoint()
    return f"{city}: 21 C and sunny"


async def receive_until(agent: BidiAgent, kind: type[E], count: int = 1) -> list[Any]:
    events: list[Any] = []
    seen = 0
    with trio.fail_after(10):
        async for event in agent.receive():
            events.append(event)
            if isinstance(event, kind):
                seen += 1
                if seen == count:
                    return events
    raise AssertionError(f"receive() ended before {kind.__name__}: {events!r}")


def of_type(events: list[Any], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def history_blocks(emulator: NovaSonicEmulator, session: int) -> list[tuple[str, str]]:
    """(role, text) of the non-interactive USER/ASSISTANT text blocks a session received."""
    blocks: dict[str, list[Any]] = {}
    order: list[str] = []
    for event in emulator.sessions[session].events:
        ((name, body),) = event["event"].items()
        if name == "contentStart" and body["type"] == "TEXT" and not body["interactive"]:
            if body["role"] in ("USER", "ASSISTANT"):
                blocks[body["contentName"]] = [body["role"], ""]
                order.append(body["contentName"])
        elif name == "textInput" and body["contentName"] in blocks:
            blocks[body["contentName"]][1] += body["content"]
    return [(blocks[n][0], blocks[n][1]) for n in order]


async def test_text_turn_keeps_only_final_transcripts(nova_emulator: NovaSonicEmulator) -> None:
    async with BidiAgent(model=nova_model(nova_emulator), system_prompt="Be brief.") as agent:
        await agent.send("Hello there")
        events = await receive_until(agent, BidiResponseCompleteEvent)
        assert of_type(events, BidiAudioStreamEvent)
        finals = [t.text for t in of_type(events, BidiTranscriptStreamEvent) if t.is_final]
        assert finals == ["You said: Hello there"]
        assert agent.messages == [
            {"role": "user", "content": [{"text": "Hello there"}]},
            {"role": "assistant", "content": [{"text": "You said: Hello there"}]},
        ]


async def test_audio_turn(nova_emulator: NovaSonicEmulator) -> None:
    async with BidiAgent(model=nova_model(nova_emulator)) as agent:
        for _ in range(10):
            await agent.send(audio_event(32, amplitude=8000))
        for _ in range(20):
            await agent.send(audio_event(32))
        events = await receive_until(agent, BidiResponseCompleteEvent)
    user = [t for t in of_type(events, BidiTranscriptStreamEvent) if t.role == "user"]
    assert [t.text for t in user] == ["(spoken input, 0.3 seconds)"]


async def test_tool_round_trip(nova_emulator: NovaSonicEmulator) -> None:
    nova_emulator.queue(
        FunctionCallReply("get_weather", {"city": "Paris"}, call_id="tool-paris"),
        SpokenReply("Paris is sunny."),
    )
    async with BidiAgent(model=nova_model(nova_emulator), tools=[get_weather]) as agent:
        await agent.send("Weather in Paris?")
        events = await receive_until(agent, BidiResponseCompleteEvent, 2)
    (use,) = of_type(events, ToolUseStreamEvent)
    assert use.current_tool_use["input"] == {"city": "Paris"}
    (result,) = of_type(events, ToolResultEvent)
    assert result.tool_result["toolUseId"] == "tool-paris"
    (sent,) = nova_emulator.messages_of("toolResult")
    assert "Paris: 21 C and sunny" in sent["content"]
    (tool_block,) = [s for s in nova_emulator.messages_of("contentStart") if s["type"] == "TOOL"]
    assert tool_block["toolResultInputConfiguration"]["toolUseId"] == "tool-paris"
    assert of_type(events, BidiResponseCompleteEvent)[-1].stop_reason == "complete"


async def test_barge_in(nova_emulator: NovaSonicEmulator) -> None:
    nova_emulator.queue(SpokenReply("A very long story.", hold=True))
    async with BidiAgent(model=nova_model(nova_emulator)) as agent:
        await agent.send("Tell me a story.")
        await receive_until(agent, BidiAudioStreamEvent)
        await nova_emulator.barge_in()
        events = await receive_until(agent, BidiResponseCompleteEvent)
        assert len(of_type(events, BidiInterruptionEvent)) == 1
        assert of_type(events, BidiResponseCompleteEvent)[0].stop_reason == "interrupted"
        # The interrupted reply was never spoken in full: no final transcript of it.
        assert all("interrupted" not in str(m) for m in agent.messages)


async def test_restart_at_the_time_limit_replays_history_within_limits(
    nova_emulator: NovaSonicEmulator,
) -> None:
    old: list[Message] = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": [{"text": f"{i} " + "x" * 9000}]}
        for i in range(8)
    ]
    model = nova_model(nova_emulator)
    async with BidiAgent(model=model, messages=old, system_prompt="Be kind.") as agent:
        await agent.send("Remember: blue.")
        await receive_until(agent, BidiResponseCompleteEvent)
        await nova_emulator.expire()  # the ~8 minute limit: modelTimeoutException
        events = await receive_until(agent, BidiConnectionStartEvent)
        await agent.send("Which colour?")
        events += await receive_until(agent, BidiResponseCompleteEvent)
        assert len(agent.messages) == len(old) + 4
    (restart,) = of_type(events, BidiConnectionRestartEvent)
    assert "modelTimeoutException" in str(restart.timeout_error)
    assert len(nova_emulator.sessions) == 2
    replayed = history_blocks(nova_emulator, 1)
    assert replayed[0][0] == "USER"
    assert sum(len(text.encode()) for _, text in replayed) <= 40 * 1024
    assert replayed[-2:] == [
        ("USER", "Remember: blue."),
        ("ASSISTANT", "You said: Remember: blue."),
    ]
    # The oldest messages made room for the newest.
    assert not replayed[0][1].startswith("0 ")
    system = [
        e["event"]["contentStart"]
        for e in nova_emulator.sessions[1].events
        if "contentStart" in e["event"] and e["event"]["contentStart"]["role"] == "SYSTEM"
    ]
    assert len(system) == 1


async def test_proactive_restart_before_the_deadline(nova_emulator: NovaSonicEmulator) -> None:
    model = nova_model(nova_emulator, time_limit_s=1.0)
    async with BidiAgent(model=model, restart_margin_s=0.6) as agent:
        await agent.send("Remember: blue.")
        await receive_until(agent, BidiResponseCompleteEvent)
        events = await receive_until(agent, BidiConnectionStartEvent)
    (restart,) = of_type(events, BidiConnectionRestartEvent)
    assert "restarted before its time limit" in str(restart.timeout_error)
    first = nova_emulator.sessions[0]
    with trio.fail_after(5):
        await first.input_ended.wait()
    assert first.exceptions_sent == []  # closed by us, cleanly, before the service cut it
    assert history_blocks(nova_emulator, 1) == [
        ("USER", "Remember: blue."),
        ("ASSISTANT", "You said: Remember: blue."),
    ]


async def test_recoverable_531_restarts(nova_emulator: NovaSonicEmulator) -> None:
    async with BidiAgent(model=nova_model(nova_emulator)) as agent:
        await agent.send("hi")
        await receive_until(agent, BidiResponseCompleteEvent)
        await nova_emulator.send_error(
            "InternalErrorCode=531: Timed out waiting for input events",
            exception_type="validationException",
        )
        events = await receive_until(agent, BidiConnectionStartEvent)
    assert of_type(events, BidiConnectionRestartEvent)
    assert len(nova_emulator.sessions) == 2
