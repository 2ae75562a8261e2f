"""BidiAgent with BidiGeminiLiveModel against the emulator: tools, cancellation, and a
goAway-driven resumption mid-conversation, over real loopback sockets."""

from __future__ import annotations

from typing import Any, TypeVar

import trio

from tests.fixtures.gemini import gemini_model
from trio_bidi import BidiAgent, tool
from trio_bidi.events import (
    BidiConnectionRestartEvent,
    BidiResponseCompleteEvent,
    BidiToolCancellationEvent,
    BidiTranscriptStreamEvent,
    ToolResultEvent,
)
from trio_bidi.testing import GeminiLiveEmulator

E = TypeVar("E")


async def receive_until(agent: BidiAgent, kind: type[E]) -> list[Any]:
    events: list[Any] = []
    with trio.fail_after(10):
        async for event in agent.receive():
            events.append(event)
            if isinstance(event, kind):
                return events
    raise AssertionError(f"receive() ended before {kind.__name__}: {events!r}")


async def test_agent_conversation_with_tools_and_resumption(
    gemini_emulator: GeminiLiveEmulator,
) -> None:
    slow_started = trio.Event()
    slow_cancelled = trio.Event()

    @tool
    async def get_weather(city: str) -> dict[str, str]:
        """Weather for a city.

        Args:
            city: The city.
        """
        await trio.lowlevel.checkpoint()
        return {"city": city, "sky": "clear"}

    @tool
    async def slow_lookup(query: str) -> str:
        """A lookup that takes forever.

        Args:
            query: What to look up.
        """
        slow_started.set()
        try:
            await trio.sleep(3600)
        finally:
            slow_cancelled.set()
        return query

    agent = BidiAgent(
        model=gemini_model(gemini_emulator),
        tools=[get_weather, slow_lookup],
        system_prompt="Be brief.",
    )
    async with agent:
        await agent.send("hello")
        await receive_until(agent, BidiResponseCompleteEvent)
        session = await gemini_emulator.wait_session()
        declared = session.setup["tools"][0]["functionDeclarations"]
        assert sorted(d["name"] for d in declared) == ["get_weather", "slow_lookup"]
        assert session.setup["systemInstruction"] == {"parts": [{"text": "Be brief."}]}

        # A tool call: the agent runs the tool and answers with the call's id and name.
        await session.call_tools([("w1", "get_weather", {"city": "Oslo"})])
        events = await receive_until(agent, BidiResponseCompleteEvent)
        results = [e for e in events if isinstance(e, ToolResultEvent)]
        assert [r.tool_result["toolUseId"] for r in results] == ["w1"]
        response = await session.wait_message(lambda m: "toolResponse" in m)
        (function_response,) = response["toolResponse"]["functionResponses"]
        assert function_response["id"] == "w1"
        assert function_response["name"] == "get_weather"
        assert "output" in function_response["response"]
        assert "clear" in str(function_response["response"]["output"])

        # A withdrawn call: the agent cancels the running tool and sends no result.
        await session.call_tools([("s1", "slow_lookup", {"query": "x"})])
        with trio.fail_after(10):
            await slow_started.wait()
        await session.cancel_tools(["s1"])
        cancel = (await receive_until(agent, BidiToolCancellationEvent))[-1]
        assert cancel.tool_use_ids == ("s1",)
        with trio.fail_after(10):
            await slow_cancelled.wait()
        await session.send({"serverContent": {"turnComplete": True}})
        complete = (await receive_until(agent, BidiResponseCompleteEvent))[-1]
        assert complete.stop_reason == "tool_use"
        await session.issue_handle()

        # goAway mid-conversation: the service sends a fresh handle right after it, and
        # the agent restarts with that one (not the one it held when goAway came).
        stale = session.handles[-1]
        await session.go_away(time_left_s=5)
        handle = session.handles[-1]
        assert handle != stale
        restart = (await receive_until(agent, BidiConnectionRestartEvent))[-1]
        assert restart.timeout_error.restart_config == {"session_handle": handle}
        second = await gemini_emulator.wait_session_count(2)
        assert second.resumed_from == handle
        assert second.setup["sessionResumption"] == {"handle": handle}

        await agent.send("after the restart")
        events = await receive_until(agent, BidiResponseCompleteEvent)
        finals = [
            e.text
            for e in events
            if isinstance(e, BidiTranscriptStreamEvent) and e.is_final and e.role == "assistant"
        ]
        assert finals == ["You said after the restart"]
        # Resumed, not replayed: the new connection got only the new input.
        assert second.messages == [
            {
                "clientContent": {
                    "turns": [{"role": "user", "parts": [{"text": "after the restart"}]}],
                    "turnComplete": True,
                }
            }
        ]
        assert not any(m.get("toolResponse") for m in session.messages[2:])

    texts = [
        block["text"]
        for message in agent.messages
        if message["role"] == "assistant"
        for block in message["content"]
        if "text" in block
    ]
    assert texts[0] == "You said hello"
    assert texts[-1] == "You said after the restart"
    assert len(gemini_emulator.sessions) == 2
