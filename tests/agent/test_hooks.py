"""Hooks on the scripted model: order, sync and async callbacks, changing tool calls."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tests.agent._helpers import of_type, receive_until, reply, tool_use
from trio_bidi import (
    BidiAfterConnectionRestartEvent,
    BidiAfterInvocationEvent,
    BidiAfterToolCallEvent,
    BidiAgent,
    BidiAgentInitializedEvent,
    BidiBeforeConnectionRestartEvent,
    BidiBeforeInvocationEvent,
    BidiBeforeToolCallEvent,
    BidiConfigurationError,
    BidiConnectionError,
    BidiConnectionStartEvent,
    BidiInterruptionEvent,
    BidiInterruptionHookEvent,
    BidiMessageAddedEvent,
    BidiModelTimeoutError,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    HookRegistry,
    ToolResultEvent,
    tool,
)
from trio_bidi.testing import ScriptedModel


@tool
async def double(x: int) -> int:
    """Double a number.

    Args:
        x: The number.
    """
    return 2 * x


@tool
async def triple(x: int) -> int:
    """Triple a number.

    Args:
        x: The number.
    """
    return 3 * x


async def test_lifecycle_hooks_fire_in_order_and_after_hooks_reverse() -> None:
    calls: list[str] = []

    def initialized(event: BidiAgentInitializedEvent) -> None:
        calls.append("initialized")

    async def before_a(event: BidiBeforeInvocationEvent) -> None:
        await trio.lowlevel.checkpoint()
        calls.append("before a")

    def before_b(event: BidiBeforeInvocationEvent) -> None:
        calls.append("before b")

    async def after_a(event: BidiAfterInvocationEvent) -> None:
        await trio.lowlevel.checkpoint()
        calls.append("after a")

    def after_b(event: BidiAfterInvocationEvent) -> None:
        calls.append("after b")

    model = ScriptedModel()
    agent = BidiAgent(model=model, hooks=[initialized, before_a, before_b, after_a, after_b])
    assert calls == ["initialized"]
    async with agent:
        assert calls == ["initialized", "before a", "before b"]
    assert calls == ["initialized", "before a", "before b", "after b", "after a"]


async def test_after_invocation_runs_when_the_body_fails() -> None:
    seen: list[BidiAgent] = []

    def after(event: BidiAfterInvocationEvent) -> None:
        seen.append(event.agent)

    agent = BidiAgent(model=ScriptedModel(), hooks=[after])

    async def body() -> None:
        async with agent:
            raise ValueError("app bug")

    with pytest.raises(ValueError, match="app bug"):
        await body()
    assert seen == [agent]


async def test_message_added_fires_for_every_history_entry() -> None:
    added: list[Any] = []

    async def on_message(event: BidiMessageAddedEvent) -> None:
        added.append(event.message)

    model = ScriptedModel(
        responder=lambda e: reply("r1", "Hi.") if e.type == "bidi_text_input" else []
    )
    async with BidiAgent(model=model, tools=[double], hooks=[on_message]) as agent:
        await agent.send("hello")
        await receive_until(agent, BidiResponseCompleteEvent)
        connection = await model.wait_connection()
        connection.push(tool_use("t1", "double", x=4))
        await receive_until(agent, ToolResultEvent)
    assert added == agent.messages
    assert len(added) == 4


async def test_before_tool_call_can_replace_the_tool_or_cancel_the_call() -> None:
    def route(event: BidiBeforeToolCallEvent) -> None:
        if event.tool_use["input"].get("x") == 0:
            event.cancel_tool = "zero is not allowed"
        elif event.tool_use["input"].get("x") == 5:
            event.selected_tool = triple

    model = ScriptedModel()
    async with BidiAgent(model=model, tools=[double], hooks=[route]) as agent:
        connection = await model.wait_connection()
        connection.push(
            tool_use("a", "double", x=2), tool_use("b", "double", x=5), tool_use("c", "double", x=0)
        )
        events = await receive_until(agent, ToolResultEvent, 3)
    results = {e.tool_result["toolUseId"]: e.tool_result for e in of_type(events, ToolResultEvent)}
    assert results["a"]["content"] == [{"json": 4}]
    assert results["b"]["content"] == [{"json": 15}]
    assert results["c"] == {
        "toolUseId": "c",
        "status": "error",
        "content": [{"text": "tool call cancelled: zero is not allowed"}],
    }
    assert agent.statistics().tool_calls_cancelled == 1


async def test_after_tool_call_can_replace_the_result_and_sees_exceptions() -> None:
    seen: list[Any] = []

    @tool
    async def explode() -> str:
        """Explode."""
        raise ZeroDivisionError("kaboom")

    def first(event: BidiAfterToolCallEvent) -> None:
        seen.append(("first", event.result["status"]))

    def redact(event: BidiAfterToolCallEvent) -> None:
        # Registered second, runs first ("after" hooks run in reverse).
        seen.append(("redact", type(event.exception).__name__))
        event.result = {
            "toolUseId": event.tool_use["toolUseId"],
            "status": "error",
            "content": [{"text": "redacted"}],
        }

    model = ScriptedModel()
    async with BidiAgent(model=model, tools=[explode], hooks=[first, redact]) as agent:
        connection = await model.wait_connection()
        connection.push(tool_use("e1", "explode"))
        events = await receive_until(agent, ToolResultEvent)
        await connection.wait_sent_count(1)
    assert seen == [("redact", "ZeroDivisionError"), ("first", "error")]
    assert events[-1].tool_result["content"] == [{"text": "redacted"}]
    assert connection.sent == [events[-1]]
    assert agent.messages[-1]["content"][0]["toolResult"]["content"] == [{"text": "redacted"}]  # type: ignore[typeddict-item]


async def test_interruption_hook_names_the_cut_response() -> None:
    seen: list[tuple[str, str | None]] = []

    def on_interrupt(event: BidiInterruptionHookEvent) -> None:
        seen.append((event.reason, event.interrupted_response_id))

    model = ScriptedModel()
    async with BidiAgent(model=model, hooks=[on_interrupt]) as agent:
        connection = await model.wait_connection()
        connection.push(BidiResponseStartEvent("r7"), BidiInterruptionEvent("user_speech"))
        await receive_until(agent, BidiInterruptionEvent)
    assert seen == [("user_speech", "r7")]


async def test_restart_hooks(autojump_clock: trio.abc.Clock) -> None:
    calls: list[Any] = []

    class Provider:
        def register_hooks(self, registry: HookRegistry) -> None:
            registry.add_callback(BidiBeforeConnectionRestartEvent, self.before)
            registry.add_callback(BidiAfterConnectionRestartEvent, self.after)

        async def before(self, event: BidiBeforeConnectionRestartEvent) -> None:
            calls.append(("before", str(event.timeout_error)))

        def after(self, event: BidiAfterConnectionRestartEvent) -> None:
            calls.append(("after", event.exception))

    model = ScriptedModel()
    async with BidiAgent(model=model, hooks=[Provider()], max_restart_attempts=1) as agent:
        first = await model.wait_connection()
        first.push(*reply("r1", "Hello."))
        first.expire(BidiModelTimeoutError("limit"))
        await receive_until(agent, BidiConnectionStartEvent, 2)
        second = await model.wait_connection(1)
        second.push(*reply("r2", "Hello again."))
        model.connect_failures.append(BidiConnectionError("gone"))
        second.disconnect()
        with pytest.raises(BidiConnectionError):
            async for _ in agent.receive():
                pass
    assert calls[:2] == [("before", "limit"), ("after", None)]
    assert calls[2][0] == "before"
    assert calls[3][0] == "after"
    assert isinstance(calls[3][1], BidiConnectionError)
    assert "after 1 attempts" in str(calls[3][1])


def test_bad_hooks_are_configuration_errors() -> None:
    def no_annotation(event):  # type: ignore[no-untyped-def]
        pass

    async def async_init(event: BidiAgentInitializedEvent) -> None:
        pass

    with pytest.raises(BidiConfigurationError, match="annotate its first parameter"):
        BidiAgent(model=ScriptedModel(), hooks=[no_annotation])
    with pytest.raises(BidiConfigurationError, match="must be sync"):
        BidiAgent(model=ScriptedModel(), hooks=[async_init])
    with pytest.raises(BidiConfigurationError, match="not a hook event class"):
        HookRegistry().add_callback(int, lambda e: None)  # type: ignore[type-var]
