"""BidiAgent with BidiOpenAIRealtimeModel: a malformed function call does not stall the turn.

The provider answers the call with an error result itself; the agent passes the error
event on, runs no tool, and the conversation goes on.
"""

from __future__ import annotations

from typing import Any

import trio

from tests.fixtures.openai import (
    assert_no_openai_violations,
    openai_model,
    validated_openai_emulator,
)
from trio_bidi import BidiAgent, tool
from trio_bidi.events import (
    BidiErrorEvent,
    BidiResponseCompleteEvent,
    BidiTranscriptStreamEvent,
    ToolUseStreamEvent,
)
from trio_bidi.testing import FunctionCallReply


async def test_a_malformed_call_gets_an_error_result_and_the_agent_goes_on() -> None:
    calls: list[str] = []

    @tool
    async def get_weather(city: str) -> str:
        """Weather for a city.

        Args:
            city: The city.
        """
        calls.append(city)
        await trio.lowlevel.checkpoint()
        return "sunny"

    async with validated_openai_emulator() as emulator:
        emulator.queue(FunctionCallReply("get_weather", '{"city": "Par', call_id="call_bad"))
        agent = BidiAgent(model=openai_model(emulator), tools=[get_weather])
        events: list[Any] = []
        async with agent:
            await agent.send("weather in Paris?")
            with trio.fail_after(10):
                async for event in agent.receive():
                    events.append(event)
                    completes = [e for e in events if isinstance(e, BidiResponseCompleteEvent)]
                    if len(completes) == 2:
                        break
        assert_no_openai_violations(emulator)
    (error,) = [e for e in events if isinstance(e, BidiErrorEvent)]
    assert "function call 'get_weather' (call_bad) has malformed JSON arguments" in str(error.error)
    assert not [e for e in events if isinstance(e, ToolUseStreamEvent)]
    assert calls == []
    finals = [
        e.text
        for e in events
        if isinstance(e, BidiTranscriptStreamEvent) and e.is_final and e.role == "assistant"
    ]
    assert finals[-1].startswith("The result is Error: function call 'get_weather' (call_bad)")
    assert len(emulator.messages_of("response.create")) == 2
