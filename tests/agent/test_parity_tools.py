"""@tool and stop_conversation as in Strands; awaitable direct calls that cannot be forgotten."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from trio_bidi import (
    BidiAgent,
    BidiConfigurationError,
    BidiConnectionCloseEvent,
    ToolContext,
    ToolResultEvent,
    stop_conversation,
    tool,
)
from trio_bidi.agent import DirectToolCall
from trio_bidi.testing import ScriptedModel

from ._helpers import of_type, tool_use


def test_context_true_passes_tool_context_and_hides_it_from_the_schema() -> None:
    @tool(context=True)
    def lookup(key: str, tool_context: ToolContext) -> str:
        """Look a key up.

        Args:
            key: The key.
        """
        return key

    assert set(lookup.spec["inputSchema"]["json"]["properties"]) == {"key"}


async def test_context_can_name_another_parameter() -> None:
    @tool(context="ctx")
    async def which(ctx: ToolContext) -> str:
        """Say the call id."""
        return ctx.tool_use["toolUseId"]

    assert which.spec["inputSchema"]["json"]["properties"] == {}
    agent = BidiAgent(model=ScriptedModel(), tools=[which])
    result = await agent.tool.which()
    assert result["content"] == [{"text": result["toolUseId"]}]


def test_context_naming_no_parameter_is_an_error() -> None:
    with pytest.raises(BidiConfigurationError, match="context='ctx' names no parameter"):

        @tool(context="ctx")
        def nothing() -> str:
            """Nothing."""
            return ""


@pytest.mark.parametrize(
    "given",
    [
        {"json": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}},
        {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    ],
)
async def test_input_schema_replaces_the_built_one(given: dict[str, Any]) -> None:
    @tool(name="search", description="Search the web.", inputSchema=given)
    def search_impl(**kwargs: Any) -> str:
        return f"results for {kwargs['q']}"

    assert search_impl.spec == {
        "name": "search",
        "description": "Search the web.",
        "inputSchema": {
            "json": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
        },
    }
    agent = BidiAgent(model=ScriptedModel(), tools=[search_impl])
    assert (await agent.tool.search(q="trio"))["content"] == [{"text": "results for trio"}]
    refused = await agent.tool.search(q=3)
    assert refused["status"] == "error"


def test_stop_conversation_is_for_the_exact_phrase_only() -> None:
    description = stop_conversation.spec["description"].lower()
    assert '"stop conversation"' in description
    for farewell in ("bye", "goodbye", "stop", "quit", "exit"):
        assert farewell in description  # listed as NOT a reason to call it
    assert stop_conversation.spec["inputSchema"]["json"]["properties"] == {}


async def test_stop_conversation_ends_the_conversation_and_keeps_the_call() -> None:
    model = ScriptedModel()
    agent = BidiAgent(model=model, tools=[stop_conversation])
    async with agent:
        connection = await model.wait_connection()
        connection.push(tool_use("t-stop", "stop_conversation"))
        events = [event async for event in agent.receive()]
    assert isinstance(events[-1], BidiConnectionCloseEvent)
    assert events[-1].reason == "user_request"
    assert of_type(events, ToolResultEvent)[0].tool_use_id == "t-stop"
    assert [next(iter(m["content"][0])) for m in agent.messages] == ["toolUse", "toolResult"]


@pytest.mark.xfail(
    strict=True,
    reason="needs the AgentLoop._run_tool change in the parity report: check "
    "request_state['stop_event_loop'] before delivering the result",
)
async def test_stop_conversation_result_is_not_sent_to_the_model() -> None:
    model = ScriptedModel()
    async with BidiAgent(model=model, tools=[stop_conversation]) as agent:
        connection = await model.wait_connection()
        connection.push(tool_use("t-stop", "stop_conversation"))
        _ = [event async for event in agent.receive()]
    assert not [e for e in connection.sent if isinstance(e, ToolResultEvent)]


async def test_direct_calls_are_awaitable() -> None:
    @tool
    def double(x: int) -> int:
        """Double.

        Args:
            x: A number.
        """
        return 2 * x

    agent = BidiAgent(model=ScriptedModel(), tools=[double])
    call = agent.tool.double(x=4)
    assert isinstance(call, DirectToolCall)
    result = await call
    assert result["content"] == [{"json": 8}]
    with pytest.raises(RuntimeError, match="already awaited"):
        await call


def _forget_a_call(agent: BidiAgent) -> int:
    agent.tool.ping()  # never awaited: the warning names this line
    frame = inspect.currentframe()
    assert frame is not None
    return frame.f_lineno - 3


def test_a_forgotten_await_warns_at_the_call_site() -> None:
    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    agent = BidiAgent(model=ScriptedModel(), tools=[ping])
    with pytest.warns(
        RuntimeWarning, match=r"agent\.tool\.ping\(\.\.\.\) was never awaited"
    ) as rec:
        line = _forget_a_call(agent)
    assert rec[0].filename == __file__
    assert rec[0].lineno == line


def _use_as_result(agent: BidiAgent) -> str:
    call = agent.tool.ping()
    try:
        call["status"]
    except TypeError as exc:
        return str(exc)
    raise AssertionError("an unawaited call answered like a result")


def test_using_an_unawaited_call_as_a_result_says_to_await_it() -> None:
    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    agent = BidiAgent(model=ScriptedModel(), tools=[ping])
    with pytest.warns(RuntimeWarning, match="never awaited"):
        message = _use_as_result(agent)
    assert "write `result = await agent.tool.ping(...)`" in message
