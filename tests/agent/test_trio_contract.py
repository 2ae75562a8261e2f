"""Trio's contract on the agent's surface: checkpoints, fresh errors, safe history copies."""

from __future__ import annotations

import traceback
from typing import Any

import pytest
import trio
import trio.testing

from tests.agent._helpers import audio, receive_until, tool_use
from trio_bidi import (
    BidiAgent,
    BidiConnectionError,
    BidiConnectionRestartEvent,
    BidiConnectionStartEvent,
    BidiErrorEvent,
    BidiMessageAddedEvent,
    ToolResultEvent,
    tool,
)
from trio_bidi.agent import HookRegistry
from trio_bidi.testing import ScriptedModel


async def test_hook_invoke_is_a_checkpoint_without_async_callbacks() -> None:
    registry = HookRegistry()
    seen: list[Any] = []
    registry.add_callback(BidiMessageAddedEvent, seen.append)
    event = BidiMessageAddedEvent(agent=None, message={"role": "user", "content": []})  # type: ignore[arg-type]
    with trio.testing.assert_checkpoints():
        await registry.invoke(event)
    with trio.testing.assert_checkpoints():  # no callback at all
        await HookRegistry().invoke(event)
    assert seen == [event]


async def test_send_is_a_checkpoint_connected_and_while_reconnecting(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = ScriptedModel()
    async with BidiAgent(model=model, restart_backoff_s=1) as agent:
        first = await model.wait_connection()
        with trio.testing.assert_checkpoints():
            await agent.send(audio(20))
        model.connect_failures.append(BidiConnectionError("down"))
        first.disconnect()
        await receive_until(agent, BidiConnectionRestartEvent)
        assert not agent.statistics().connected
        with trio.testing.assert_checkpoints():  # buffered for the next connection
            await agent.send(audio(20))
        assert agent.statistics().buffered_input_events == 1


async def _give_up(model: ScriptedModel, agent: BidiAgent) -> None:
    first = await model.wait_connection()
    model.connect_failures.extend(BidiConnectionError(f"down {i}") for i in range(2))
    first.disconnect()
    events = await receive_until(agent, BidiErrorEvent)
    assert isinstance(events[-1].error, BidiConnectionError)


async def test_the_terminal_error_is_a_fresh_exception_every_time(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = ScriptedModel()
    errors: list[BaseException] = []
    async with BidiAgent(model=model, max_restart_attempts=2, restart_backoff_s=1) as agent:
        await _give_up(model, agent)
        for _ in range(1000):
            with pytest.raises(BidiConnectionError) as info:
                await agent.send("hello?")
            errors.append(info.value)
        with pytest.raises(BidiConnectionError) as at_end:
            async for _ in agent.receive():
                pass
        errors.append(at_end.value)
    assert len({id(e) for e in errors}) == len(errors)
    for error in (errors[0], errors[-2], errors[-1]):
        assert len(traceback.extract_tb(error.__traceback__)) < 10
        assert isinstance(error.__cause__, BidiConnectionError)
        assert "after 2 attempts" in str(error)


@tool
async def echo_depth(payload: Any) -> str:
    """Measure how deep the payload is.

    Args:
        payload: Nested lists and objects.
    """
    depth = 0
    while isinstance(payload, dict | list) and payload:
        payload = payload["next"] if isinstance(payload, dict) else payload[0]
        depth += 1
    return f"depth {depth}"


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = {"next": value} if level % 2 else [value]
    return value


async def test_deeply_nested_tool_input_survives_a_restart(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = ScriptedModel()
    async with BidiAgent(model=model, tools=[echo_depth]) as agent:
        first = await model.wait_connection()
        first.push(tool_use("t1", "echo_depth", payload=_nested(600)))
        events = await receive_until(agent, ToolResultEvent)
        assert events[-1].tool_result["content"] == [{"text": "depth 600"}]
        first.disconnect()
        await receive_until(agent, BidiConnectionStartEvent)
        second = await model.wait_connection(1)
    replayed = second.messages[0]["content"][0]["toolUse"]["input"]  # type: ignore[typeddict-item]
    original = agent.messages[0]["content"][0]["toolUse"]["input"]  # type: ignore[typeddict-item]
    assert replayed == original
    assert replayed is not original  # a copy: the connection cannot change the history
