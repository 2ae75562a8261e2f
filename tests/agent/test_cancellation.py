"""Leaving the agent on any path leaves no task, tool call or thread work behind."""

from __future__ import annotations

import threading
import time

import pytest
import trio

from tests.agent._helpers import receive_until, reply, tool_use
from trio_bidi import (
    BidiAgent,
    BidiConnectionError,
    BidiConnectionRestartEvent,
    ToolUseStreamEvent,
    tool,
)
from trio_bidi.testing import ScriptedModel


def tasks_living() -> int:
    return trio.lowlevel.current_statistics().tasks_living


def _tools(
    log: list[str], thread_released: threading.Event, thread_started: trio.Event
) -> list[object]:
    @tool
    async def forever() -> str:
        """Never finishes."""
        try:
            await trio.sleep_forever()
        finally:
            log.append("async tool cancelled")
        return "unreachable"  # pragma: no cover

    @tool
    def blocking() -> str:
        """Blocks a worker thread until released."""
        log.append("thread started")
        trio.from_thread.run_sync(thread_started.set)
        thread_released.wait(5)
        time.sleep(0.01)
        log.append("thread finished")
        return "done"

    return [forever, blocking]


async def _start_tools(agent: BidiAgent, model: ScriptedModel, started: trio.Event) -> None:
    connection = await model.wait_connection()
    connection.push(tool_use("f1", "forever"), tool_use("b1", "blocking"))
    await receive_until(agent, ToolUseStreamEvent, 2)
    await started.wait()


async def test_cancelling_the_caller_stops_everything() -> None:
    log: list[str] = []
    released = threading.Event()
    baseline = tasks_living()
    model = ScriptedModel()
    started = trio.Event()
    agent = BidiAgent(model=model, tools=_tools(log, released, started))
    with trio.CancelScope() as scope:
        async with agent:
            await _start_tools(agent, model, started)
            # Release the worker thread a little later: the agent must wait for it.
            trio.lowlevel.current_trio_token().run_sync_soon(released.set)
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert "async tool cancelled" in log
    assert log[-1] == "thread finished" or "thread finished" in log
    assert tasks_living() == baseline
    assert not agent.running
    assert not model.connections[0].is_open
    # Both calls stay in the history, recorded as cancelled by the stop.
    results = [m["content"][0]["toolResult"] for m in agent.messages if m["role"] == "user"]  # type: ignore[typeddict-item]
    assert {r["toolUseId"] for r in results} == {"f1", "b1"}
    assert all(r["status"] == "error" for r in results)
    assert agent.statistics().tool_calls_running == 0


async def test_keyboard_interrupt_in_the_body_leaves_nothing_behind() -> None:
    log: list[str] = []
    released = threading.Event()
    baseline = tasks_living()
    model = ScriptedModel()
    started = trio.Event()
    agent = BidiAgent(model=model, tools=_tools(log, released, started))

    async def body() -> None:
        async with agent:
            await _start_tools(agent, model, started)
            released.set()
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await body()
    assert "async tool cancelled" in log
    assert "thread finished" in log
    assert tasks_living() == baseline
    assert not model.connections[0].is_open


async def test_cancel_during_the_restart_gap_is_prompt(autojump_clock: trio.abc.Clock) -> None:
    baseline = tasks_living()
    model = ScriptedModel()
    with trio.move_on_after(100) as outer:
        async with BidiAgent(model=model, restart_backoff_s=60, restart_backoff_max_s=60) as agent:
            first = await model.wait_connection()
            first.push(*reply("r1", "Hi."))
            model.connect_failures.append(BidiConnectionError("down"))
            first.disconnect()
            await receive_until(agent, BidiConnectionRestartEvent)
            await agent.send("waiting in the buffer")
            with trio.move_on_after(5):
                async for _ in agent.receive():
                    pass
            started = trio.current_time()
    assert not outer.cancelled_caught
    assert trio.current_time() == started  # leaving did not wait for the backoff
    assert tasks_living() == baseline
    assert agent.statistics().buffered_input_events == 1  # counted, not silently dropped
