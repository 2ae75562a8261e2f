"""The agent end to end with the Gemini Live provider against the loopback emulator.

Every client message is validated against ``google.genai.types`` by the
``gemini_emulator`` fixture.
"""

from __future__ import annotations

import trio

from tests.agent._helpers import of_type, receive_until
from tests.fixtures.gemini import gemini_model
from trio_bidi import (
    BidiAgent,
    BidiConnectionRestartEvent,
    BidiConnectionStartEvent,
    BidiResponseCompleteEvent,
    BidiToolCancellationEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
    tool,
)
from trio_bidi.testing import GeminiLiveEmulator

cancelled: list[str] = []


@tool
async def long_search(query: str) -> str:
    """Search for a long time.

    Args:
        query: What to look for.
    """
    try:
        await trio.sleep_forever()
    finally:
        cancelled.append(query)
    return "never"  # pragma: no cover


async def test_provider_tool_cancellation_cancels_the_running_call(
    gemini_emulator: GeminiLiveEmulator,
) -> None:
    cancelled.clear()
    model = gemini_model(gemini_emulator)
    with trio.fail_after(10):
        async with BidiAgent(model=model, tools=[long_search]) as agent:
            session = await gemini_emulator.wait_session()
            await session.call_tools([("fc-1", "long_search", {"query": "flights"})])
            events = await receive_until(agent, ToolUseStreamEvent)
            await session.cancel_tools(["fc-1"])
            events += await receive_until(agent, ToolResultEvent)
            assert agent.statistics().tool_calls_running == 0
    assert of_type(events, BidiToolCancellationEvent)[0].tool_use_ids == ("fc-1",)
    assert cancelled == ["flights"]
    result = of_type(events, ToolResultEvent)[0].tool_result
    assert result["content"] == [{"text": "tool call cancelled: the model withdrew the call"}]
    # The model withdrew the call: nothing is sent back for it.
    assert not [m for m in session.messages if "toolResponse" in m]


async def test_go_away_restarts_with_the_resumption_handle(
    gemini_emulator: GeminiLiveEmulator,
) -> None:
    model = gemini_model(gemini_emulator)
    with trio.fail_after(10):
        async with BidiAgent(model=model) as agent:
            await agent.send("Hello there.")
            await receive_until(agent, BidiResponseCompleteEvent)
            first = await gemini_emulator.wait_session(0)
            handle = await first.issue_handle()
            await first.go_away(0.05)
            events = await receive_until(agent, BidiConnectionStartEvent)
            second = await gemini_emulator.wait_session(1)
    restart = of_type(events, BidiConnectionRestartEvent)[0]
    assert restart.timeout_error.restart_config == {"session_handle": handle}
    assert second.resumed_from == handle
    assert agent.statistics().restarts == 1
