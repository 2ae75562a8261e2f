"""Bounded cleanup: tool time limits free the model's turn at once, hung cleanups end.

A sync tool runs in a worker thread that cannot be cancelled; at its time limit the model
gets the error result at once and the thread is abandoned (its late result dropped).
Shielded cleanups (after-invocation hooks, input/output ``stop()``) have a deadline.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
import trio

from tests.agent._helpers import receive_until, tool_use
from trio_bidi import (
    BidiAfterInvocationEvent,
    BidiAgent,
    ToolResultEvent,
    tool,
)
from trio_bidi.testing import ScriptedModel

_released = threading.Event()


@tool(timeout_s=1)
def slow_lookup(city: str) -> str:
    """Look a city up, slowly (a blocking call).

    Args:
        city: The city.
    """
    _released.wait(5)  # stands in for time.sleep(5); the test releases it at the end
    return f"{city}: sunny"


async def test_a_sync_tool_past_its_time_limit_gets_its_error_result_at_once() -> None:
    """Real clock: the autojump clock does not drive worker threads."""
    _released.clear()
    model = ScriptedModel()
    try:
        async with BidiAgent(model=model, tools=[slow_lookup]) as agent:
            first = await model.wait_connection()
            started = trio.current_time()
            first.push(tool_use("t1", "slow_lookup", city="Oslo"))
            events = await receive_until(agent, ToolResultEvent)
            elapsed = trio.current_time() - started
            await first.wait_sent(lambda sent: any(isinstance(e, ToolResultEvent) for e in sent))
            sent_after = trio.current_time() - started
            stats = agent.statistics()
            _released.set()  # the abandoned thread ends; its result is dropped
    finally:
        _released.set()
    result = events[-1].tool_result
    assert result["status"] == "error"
    assert result["content"] == [{"text": "tool slow_lookup timed out after 1 s"}]
    assert 0.9 <= elapsed < 2.5
    assert sent_after < 2.5  # the model got it at once too
    assert stats.tool_calls_timed_out == 1
    assert stats.tool_calls_running == 0
    assert agent.messages[-1]["content"][0]["toolResult"] == result  # type: ignore[typeddict-item]


async def test_a_hanging_after_invocation_hook_is_abandoned_at_its_deadline(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    async def hang(event: BidiAfterInvocationEvent) -> None:
        await trio.sleep_forever()

    model = ScriptedModel()
    agent = BidiAgent(model=model, hooks=[hang], cleanup_timeout_s=2)
    with caplog.at_level(logging.WARNING, logger="trio_bidi.agent"):
        async with agent:
            await model.wait_connection()
            left_at = trio.current_time()
    assert trio.current_time() - left_at == pytest.approx(2.0)
    assert "after-invocation hooks" in caplog.text
    assert not agent.running


class _StuckOutput:
    def __init__(self) -> None:
        self.stopped = False

    async def __call__(self, event: Any) -> None:
        raise RuntimeError("speaker unplugged")

    async def stop(self) -> None:
        await trio.sleep_forever()


class _Output:
    def __init__(self) -> None:
        self.stopped = False

    async def __call__(self, event: Any) -> None:
        await trio.lowlevel.checkpoint()

    async def stop(self) -> None:
        await trio.lowlevel.checkpoint()
        self.stopped = True


async def test_a_hanging_stop_is_abandoned_and_the_others_still_run(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    model = ScriptedModel()
    agent = BidiAgent(model=model, cleanup_timeout_s=3)
    fine, stuck = _Output(), _StuckOutput()
    with caplog.at_level(logging.WARNING, logger="trio_bidi.agent"):
        started = trio.current_time()
        with pytest.raises(RuntimeError, match="speaker unplugged"):
            await agent.run(inputs=[], outputs=[fine, stuck])
    assert trio.current_time() - started == pytest.approx(3.0)
    assert fine.stopped  # stopped after the stuck one was abandoned
    assert "stop()" in caplog.text
