"""Tools through the agent (scripted model) and the @tool spec builder."""

from __future__ import annotations

import enum
import threading
from typing import Any, Literal, TypedDict

import attrs
import pytest
import trio

from tests.agent._helpers import of_type, receive_until, tool_use
from trio_bidi import (
    BidiAgent,
    BidiConfigurationError,
    BidiConnectionCloseEvent,
    BidiInterruptionEvent,
    BidiStateError,
    BidiToolCancellationEvent,
    ToolContext,
    ToolResultEvent,
    ToolUseStreamEvent,
    stop_conversation,
    tool,
)
from trio_bidi.testing import ScriptedModel


def results_sent(model: ScriptedModel, index: int = 0) -> list[Any]:
    return [e.tool_result for e in model.connections[index].sent if isinstance(e, ToolResultEvent)]


# --------------------------------------------------------------------------- execution


async def test_tool_round_trip_reaches_model_receive_and_history() -> None:
    @tool
    async def add(a: int, b: int) -> int:
        """Add two numbers.

        Args:
            a: First.
            b: Second.
        """
        return a + b

    model = ScriptedModel()
    async with BidiAgent(model=model, tools=[add]) as agent:
        assert agent.tool_names == ["add"]
        connection = await model.wait_connection()
        assert connection.tools == [add.spec]
        connection.push(tool_use("call-1", "add", a=2, b=3))
        events = await receive_until(agent, ToolResultEvent)
        await connection.wait_sent_count(1)
    assert isinstance(events[-2], ToolUseStreamEvent)
    expected = {"toolUseId": "call-1", "status": "success", "content": [{"json": 5}]}
    assert events[-1].tool_result == expected
    assert results_sent(model) == [expected]
    assert agent.messages == [
        {
            "role": "assistant",
            "content": [
                {"toolUse": {"toolUseId": "call-1", "name": "add", "input": {"a": 2, "b": 3}}}
            ],
        },
        {"role": "user", "content": [{"toolResult": expected}]},
    ]


async def test_sync_tool_runs_in_a_worker_thread() -> None:
    threads: list[threading.Thread] = []

    @tool
    def where() -> str:
        """Say where it ran."""
        threads.append(threading.current_thread())
        return "ok"

    model = ScriptedModel()
    async with BidiAgent(model=model, tools=[where]) as agent:
        connection = await model.wait_connection()
        connection.push(tool_use("c1", "where"))
        await receive_until(agent, ToolResultEvent)
    assert threads
    assert threads[0] is not threading.main_thread()


async def test_bad_calls_become_error_results_not_crashes() -> None:
    @tool
    async def greet(name: str) -> str:
        """Greet someone.

        Args:
            name: Who.
        """
        if name == "boom":
            raise RuntimeError("greeting machine broke")
        return f"hello {name}"

    model = ScriptedModel()
    async with BidiAgent(model=model, tools=[greet]) as agent:
        connection = await model.wait_connection()
        connection.push(
            tool_use("c1", "nope"),
            tool_use("c2", "greet", name=3),
            tool_use("c3", "greet", name="boom"),
            tool_use("c4", "greet", name="Ada", extra=1),
            ToolUseStreamEvent(
                delta={}, current_tool_use={"toolUseId": "c5", "name": "greet", "input": "{bad"}
            ),
            tool_use("c6", "greet", name="Ada"),
        )
        events = await receive_until(agent, ToolResultEvent, 6)
        await connection.wait_sent_count(6)
    results = {e.tool_result["toolUseId"]: e.tool_result for e in of_type(events, ToolResultEvent)}
    texts = {k: r["content"][0].get("text", "") for k, r in results.items()}
    assert {k: r["status"] for k, r in results.items()} == {
        "c1": "error",
        "c2": "error",
        "c3": "error",
        "c4": "error",
        "c5": "error",
        "c6": "success",
    }
    assert "unknown tool 'nope'" in texts["c1"]
    assert "greet" in texts["c1"]
    assert "input.name: expected string, got int" in texts["c2"]
    assert texts["c3"] == "RuntimeError: greeting machine broke"
    assert "unexpected key 'extra'" in texts["c4"]
    assert "invalid JSON arguments" in texts["c5"]
    assert texts["c6"] == "hello Ada"
    assert len(results_sent(model)) == 6


async def test_results_stay_adjacent_to_their_use_when_tools_finish_out_of_order(
    autojump_clock: trio.abc.Clock,
) -> None:
    @tool
    async def wait(seconds: float) -> str:
        """Wait.

        Args:
            seconds: How long.
        """
        await trio.sleep(seconds)
        return f"waited {seconds:g}"

    model = ScriptedModel()
    async with BidiAgent(model=model, tools=[wait]) as agent:
        connection = await model.wait_connection()
        connection.push(tool_use("slow", "wait", seconds=5), tool_use("fast", "wait", seconds=1))
        await receive_until(agent, ToolResultEvent, 2)
    ids = [
        next(iter(m["content"][0].values()))["toolUseId"]  # type: ignore[index]
        for m in agent.messages
    ]
    assert ids == ["fast", "fast", "slow", "slow"]
    assert [m["role"] for m in agent.messages] == ["assistant", "user", "assistant", "user"]


async def test_concurrency_limit_and_tool_timeout(autojump_clock: trio.abc.Clock) -> None:
    running = 0
    peak = 0

    @tool
    async def work(seconds: float) -> str:
        """Work for a while.

        Args:
            seconds: How long.
        """
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await trio.sleep(seconds)
        finally:
            running -= 1
        return "done"

    model = ScriptedModel()
    async with BidiAgent(model=model, tools=[work], tool_concurrency=2, tool_timeout_s=10) as agent:
        connection = await model.wait_connection()
        start = trio.current_time()
        connection.push(*(tool_use(f"c{i}", "work", seconds=3) for i in range(4)))
        connection.push(tool_use("late", "work", seconds=60))
        events = await receive_until(agent, ToolResultEvent, 5)
        elapsed = trio.current_time() - start
    assert peak == 2
    results = {e.tool_result["toolUseId"]: e.tool_result for e in of_type(events, ToolResultEvent)}
    assert results["late"]["status"] == "error"
    assert results["late"]["content"] == [{"text": "tool work timed out after 10 s"}]
    assert all(results[f"c{i}"]["status"] == "success" for i in range(4))
    # Two rounds of 3 s for the four short calls; the long one is cut at its 10 s limit
    # (measured from when it got a slot, at 6 s).
    assert elapsed == pytest.approx(16.0)


async def test_tool_receives_invocation_state_agent_and_context() -> None:
    seen: dict[str, Any] = {}

    @tool
    async def inspect_call(
        query: str, agent: BidiAgent, invocation_state: dict[str, Any], tool_context: ToolContext
    ) -> str:
        """Look at the call.

        Args:
            query: Anything.
        """
        seen.update(
            agent=agent,
            state=invocation_state,
            id=tool_context.tool_use["toolUseId"],
            query=query,
        )
        return "seen"

    assert set(inspect_call.spec["inputSchema"]["json"]["properties"]) == {"query"}
    model = ScriptedModel()
    agent = BidiAgent(model=model, tools=[inspect_call])
    async with agent:
        agent.invocation_state["user_id"] = "u-7"
        connection = await model.wait_connection()
        connection.push(tool_use("c9", "inspect_call", query="q"))
        await receive_until(agent, ToolResultEvent)
    assert seen == {"agent": agent, "state": {"user_id": "u-7"}, "id": "c9", "query": "q"}


async def test_stop_conversation_tool_closes_with_user_request() -> None:
    model = ScriptedModel()
    async with BidiAgent(model=model, tools=[stop_conversation]) as agent:
        connection = await model.wait_connection()
        connection.push(tool_use("bye", "stop_conversation"))
        events = [event async for event in agent.receive()]
        with pytest.raises(BidiStateError, match="conversation has ended"):
            await agent.send("anyone?")
    assert isinstance(events[-1], BidiConnectionCloseEvent)
    assert events[-1].reason == "user_request"
    assert events[-1].connection_id == connection.connection_id
    assert of_type(events, ToolResultEvent)[0].tool_result["status"] == "success"
    assert not connection.is_open


async def test_barge_in_cancels_cancellable_tools_and_records_them(
    autojump_clock: trio.abc.Clock,
) -> None:
    finished: list[str] = []

    @tool(cancellable=True)
    async def search(query: str) -> str:
        """Search (slow).

        Args:
            query: What.
        """
        await trio.sleep(30)
        finished.append(query)
        return "found"

    @tool
    async def book(room: str) -> str:
        """Book a room (must not be cut).

        Args:
            room: Which.
        """
        await trio.sleep(5)
        finished.append(room)
        return "booked"

    model = ScriptedModel()
    async with BidiAgent(model=model, tools=[search, book]) as agent:
        connection = await model.wait_connection()
        connection.push(tool_use("s1", "search", query="flights"), tool_use("b1", "book", room="A"))
        await receive_until(agent, ToolUseStreamEvent, 2)
        await trio.sleep(1)
        assert agent.statistics().tool_calls_running == 2
        connection.push(BidiInterruptionEvent("user_speech"))
        events = await receive_until(agent, ToolResultEvent, 2)
        await connection.wait_sent_count(2)
    results = {e.tool_result["toolUseId"]: e.tool_result for e in of_type(events, ToolResultEvent)}
    assert results["s1"] == {
        "toolUseId": "s1",
        "status": "error",
        "content": [{"text": "tool call cancelled: the user interrupted"}],
    }
    assert results["b1"]["status"] == "success"
    assert finished == ["A"]
    assert {r["toolUseId"] for r in results_sent(model)} == {"s1", "b1"}
    assert agent.statistics().tool_calls_cancelled == 1
    history_results = [
        m["content"][0]["toolResult"] for m in agent.messages if "toolResult" in m["content"][0]
    ]
    assert {r["toolUseId"] for r in history_results} == {"s1", "b1"}


async def test_provider_tool_cancellation_cancels_the_task_without_sending(
    autojump_clock: trio.abc.Clock,
) -> None:
    @tool
    async def slow() -> str:
        """Slow."""
        await trio.sleep(30)
        return "late"  # pragma: no cover

    model = ScriptedModel()
    async with BidiAgent(model=model, tools=[slow]) as agent:
        connection = await model.wait_connection()
        connection.push(tool_use("g1", "slow"))
        await receive_until(agent, ToolUseStreamEvent)
        connection.push(BidiToolCancellationEvent(["g1"]))
        events = await receive_until(agent, ToolResultEvent)
        await trio.sleep(1)
    assert events[-1].tool_result["content"] == [
        {"text": "tool call cancelled: the model withdrew the call"}
    ]
    assert results_sent(model) == []  # the provider withdrew it: nothing to answer
    assert agent.messages[-1]["content"][0]["toolResult"]["status"] == "error"  # type: ignore[index]


async def test_direct_tool_call_is_recorded() -> None:
    @tool(name="get-time")
    def get_time(zone: str = "UTC") -> str:
        """Tell the time.

        Args:
            zone: Time zone.
        """
        return f"noon {zone}"

    agent = BidiAgent(model=ScriptedModel(), tools=[get_time])
    result = await agent.tool.get_time(zone="CET")
    assert result["status"] == "success"
    assert result["content"] == [{"text": "noon CET"}]
    assert agent.messages[0]["content"][0]["toolUse"]["name"] == "get-time"  # type: ignore[typeddict-item]
    assert agent.messages[1]["content"][0]["toolResult"] == result  # type: ignore[typeddict-item]
    bad = await agent.tool.get_time(zone=5)
    assert bad["status"] == "error"
    with pytest.raises(AttributeError, match="no tool 'missing'"):
        agent.tool.missing  # noqa: B018
    quiet = BidiAgent(model=ScriptedModel(), tools=[get_time], record_direct_tool_call=False)
    await quiet.tool.get_time()
    assert quiet.messages == []


# --------------------------------------------------------------------------- specs


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.define
class Address:
    street: str
    number: int = 1


class Options(TypedDict, total=False):
    verbose: bool


def test_spec_from_signature_and_google_docstring() -> None:
    @tool
    def plan(
        city: str,
        days: int,
        budget: float | None,
        tags: list[str],
        extra: dict[str, int],
        mode: Literal["fast", "cheap"] = "fast",
        color: Color = Color.RED,
        home: Address | None = None,
        options: Options | None = None,
        flag: bool = False,
        nothing: None = None,
    ) -> str:
        """Plan a trip.

        More detail that is still description.

        Args:
            city: Where to go,
                over two lines.
            days: How long.
            budget: Max spend.
            tags: Labels.
            extra: Extras.
            mode: Speed.
            color: Colour.
            home: Where from.
            options: Options.
            flag: A flag.
            nothing: Nothing.

        Returns:
            The plan.
        """
        return "x"

    spec = plan.spec
    assert spec["name"] == "plan"
    assert spec["description"] == "Plan a trip.\n\nMore detail that is still description."
    schema = spec["inputSchema"]["json"]
    assert schema["required"] == ["city", "days", "budget", "tags", "extra"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["city"] == {"type": "string", "description": "Where to go, over two lines."}
    assert props["days"] == {"type": "integer", "description": "How long."}
    assert props["budget"] == {
        "anyOf": [{"type": "number"}, {"type": "null"}],
        "description": "Max spend.",
    }
    assert props["tags"] == {"type": "array", "items": {"type": "string"}, "description": "Labels."}
    assert props["extra"]["additionalProperties"] == {"type": "integer"}
    assert props["mode"] == {
        "enum": ["fast", "cheap"],
        "type": "string",
        "description": "Speed.",
        "default": "fast",
    }
    assert props["color"]["enum"] == ["red", "blue"]
    assert props["color"]["default"] == "red"
    assert props["home"]["anyOf"][0] == {
        "type": "object",
        "properties": {"street": {"type": "string"}, "number": {"type": "integer"}},
        "required": ["street"],
        "additionalProperties": False,
    }
    assert props["options"]["anyOf"][0]["properties"] == {"verbose": {"type": "boolean"}}
    assert "required" not in props["options"]["anyOf"][0]
    assert props["flag"]["type"] == "boolean"
    assert props["nothing"]["type"] == "null"


async def test_arguments_are_converted_to_annotated_types() -> None:
    got: dict[str, Any] = {}

    @tool
    async def convert(color: Color, home: Address, count: int, ratio: float) -> str:
        """Convert."""
        got.update(color=color, home=home, count=count, ratio=ratio)
        return "ok"

    use = {
        "toolUseId": "x",
        "name": "convert",
        "input": {"color": "blue", "home": {"street": "Main"}, "count": 2.0, "ratio": 1},
    }
    await convert.invoke(use, ToolContext(tool_use=use))  # type: ignore[arg-type]
    assert got == {"color": Color.BLUE, "home": Address("Main"), "count": 2, "ratio": 1.0}


def test_plain_spec_and_callable() -> None:
    spec = {
        "name": "lookup",
        "description": "Look up.",
        "inputSchema": {"json": {"type": "object", "properties": {"q": {"type": "string"}}}},
    }
    looked = tool(spec, lambda q: q.upper())  # type: ignore[arg-type]
    assert looked.spec == spec
    assert looked.name == "lookup"


def test_tools_that_cannot_be_built_fail_clearly() -> None:
    with pytest.raises(BidiConfigurationError, match="has no JSON schema"):

        @tool
        def bad(x: threading.Thread) -> None:
            """Bad."""

    with pytest.raises(BidiConfigurationError, match="tool name"):
        tool(name="has space")(lambda: None)
    with pytest.raises(BidiConfigurationError, match="two tools are named"):
        BidiAgent(model=ScriptedModel(), tools=[stop_conversation, stop_conversation])


async def test_result_the_provider_rejects_becomes_an_error_event() -> None:
    from trio_bidi import BidiErrorEvent
    from trio_bidi.errors import BidiConfigurationError as Rejected

    def responder(event: Any) -> list[Any]:
        if isinstance(event, ToolResultEvent):
            raise Rejected("tool result content the provider cannot take")
        return []

    @tool
    async def picture() -> dict[str, Any]:
        """Return something odd."""
        return {"status": "success", "content": [{"json": {"image": "..."}}]}

    model = ScriptedModel(responder=responder)
    async with BidiAgent(model=model, tools=[picture]) as agent:
        connection = await model.wait_connection()
        connection.push(tool_use("p1", "picture"))
        events = await receive_until(agent, BidiErrorEvent)
        # The conversation goes on.
        await agent.send("still there?")
        await connection.wait_sent_count(1)
    assert events[-1].details == {"toolUseId": "p1"}
    assert "cannot take" in events[-1].message
    assert of_type(events, ToolResultEvent)[0].tool_result["toolUseId"] == "p1"
    assert agent.running is False


async def test_tuples_have_positional_schemas_and_are_checked() -> None:
    got: list[Any] = []

    @tool
    async def place(point: tuple[int, str], path: tuple[float, ...]) -> str:
        """Place a point.

        Args:
            point: Index and label.
            path: Coordinates.
        """
        got.append((point, path))
        return "placed"

    props = place.spec["inputSchema"]["json"]["properties"]
    assert props["point"] == {
        "type": "array",
        "prefixItems": [{"type": "integer"}, {"type": "string"}],
        "minItems": 2,
        "maxItems": 2,
        "description": "Index and label.",
    }
    assert props["path"]["items"] == {"type": "number"}
    use: Any = {"toolUseId": "x", "name": "place", "input": {"point": [1, "a"], "path": [1, 2.5]}}
    await place.invoke(use, ToolContext(tool_use=use))
    assert got == [((1, "a"), (1.0, 2.5))]
    from trio_bidi.agent import ToolArgumentError

    use["input"] = {"point": [1, 2], "path": []}
    with pytest.raises(ToolArgumentError, match=r"input.point\[1\]: expected string"):
        await place.invoke(use, ToolContext(tool_use=use))
    use["input"] = {"point": [1], "path": []}
    with pytest.raises(ToolArgumentError, match="at least 2 items"):
        await place.invoke(use, ToolContext(tool_use=use))
