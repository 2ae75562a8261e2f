"""BidiAgent keeps Strands' constructor, lifecycle calls and input forms (issue: parity)."""

from __future__ import annotations

import math
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from trio_bidi import (
    BidiAgent,
    BidiConfigurationError,
    BidiConnectionCloseEvent,
    BidiStateError,
    BidiTextInputEvent,
    SequentialToolExecutor,
    ToolContext,
    ToolResultEvent,
    tool,
)
from trio_bidi.agent import AgentTool, ConcurrentToolExecutor
from trio_bidi.testing import ScriptedModel

from ._helpers import receive_until, tool_use


def test_defaults_are_strands() -> None:
    agent = BidiAgent(model=ScriptedModel())
    assert agent.agent_id == "default"
    assert agent.name == "Strands Agents"
    assert isinstance(agent.tool_executor, ConcurrentToolExecutor)
    assert agent.load_tools_from_directory is False
    assert agent.tool_watcher is None


def test_every_strands_parameter_is_accepted() -> None:
    agent = BidiAgent(
        model=ScriptedModel(),
        tools=[],
        system_prompt="s",
        messages=[],
        record_direct_tool_call=False,
        load_tools_from_directory=False,
        agent_id="a1",
        name="n",
        description="d",
        hooks=[],
        state={"k": 1},
        session_manager=None,
        tool_executor=SequentialToolExecutor(),
    )
    assert agent.settings.tool_concurrency == 1
    assert (agent.agent_id, agent.name, agent.description) == ("a1", "n", "d")


def test_an_unknown_keyword_is_an_error_naming_it() -> None:
    with pytest.raises(BidiConfigurationError, match="'tool_timeout'"):
        BidiAgent(model=ScriptedModel(), tool_timeout=3)
    # A setting of this library is not an error.
    assert BidiAgent(model=ScriptedModel(), tool_timeout_s=3).settings.tool_timeout_s == 3


def test_a_foreign_executor_or_bad_state_is_refused() -> None:
    with pytest.raises(BidiConfigurationError, match="tool_executor must be"):
        BidiAgent(model=ScriptedModel(), tool_executor=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="state must be"):
        BidiAgent(model=ScriptedModel(), state=[1])  # type: ignore[arg-type]


async def test_start_points_at_async_with() -> None:
    agent = BidiAgent(model=ScriptedModel())
    with pytest.raises(BidiStateError, match=r"async with agent:") as info:
        await agent.start()
    assert "agent.session(invocation_state=" in str(info.value)
    assert not agent.running


async def test_stop_from_another_task_ends_receive_and_closes_the_connection() -> None:
    model = ScriptedModel()
    events: list[Any] = []
    async with BidiAgent(model=model) as agent:
        connection = await model.wait_connection()

        async def consume() -> None:
            async for event in agent.receive():
                events.append(event)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await trio.testing.wait_all_tasks_blocked()
            await agent.stop()
            await agent.stop()  # idempotent
        assert not connection.is_open
        with pytest.raises(BidiStateError, match="conversation has ended"):
            await agent.send("late")
    assert isinstance(events[-1], BidiConnectionCloseEvent)
    assert events[-1].reason == "client_disconnect"
    await agent.stop()  # after the block: nothing to do


async def test_stop_makes_run_return(autojump_clock: trio.abc.Clock) -> None:
    model = ScriptedModel()
    agent = BidiAgent(model=model)
    seen: list[Any] = []

    async def silent() -> BidiTextInputEvent:
        await trio.sleep(math.inf)
        raise AssertionError("unreachable")

    async def sink(event: Any) -> None:
        seen.append(event)

    async def stop_later() -> None:
        await model.wait_connection()
        await trio.sleep(5)
        await agent.stop()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(stop_later)
        await agent.run(inputs=[silent], outputs=[sink])
    assert isinstance(seen[-1], BidiConnectionCloseEvent)
    assert not agent.running


async def test_invocation_state_reaches_tools_with_request_state() -> None:
    seen: dict[str, Any] = {}

    @tool(context=True)
    async def whoami(tool_context: ToolContext) -> str:
        """Say who asks."""
        state = tool_context.invocation_state
        seen.update(
            user=state["user_id"],
            request_state=state["request_state"],
            same=state["request_state"] is tool_context.request_state,
            agent=state["agent"],
        )
        return state["user_id"]

    model = ScriptedModel()
    agent = BidiAgent(model=model, tools=[whoami])
    async with agent.session(invocation_state={"user_id": "u-1"}):
        connection = await model.wait_connection()
        connection.push(tool_use("t1", "whoami"))
        await receive_until(agent, ToolResultEvent)
    assert seen == {"user": "u-1", "request_state": {}, "same": True, "agent": agent}
    assert agent.invocation_state == {"user_id": "u-1"}  # the caller's dict is unchanged


async def test_a_tool_setting_stop_event_loop_in_invocation_state_ends_the_conversation() -> None:
    @tool(context=True)
    def hang_up(tool_context: ToolContext) -> str:
        """End the call."""
        tool_context.invocation_state["request_state"]["stop_event_loop"] = True
        return "bye"

    model = ScriptedModel()
    async with BidiAgent(model=model, tools=[hang_up]) as agent:
        connection = await model.wait_connection()
        connection.push(tool_use("t1", "hang_up"))
        events = [event async for event in agent.receive()]
    assert isinstance(events[-1], BidiConnectionCloseEvent)
    assert events[-1].reason == "user_request"


@pytest.mark.parametrize(
    "sent",
    [
        {"type": "bidi_text_input", "text": "hi"},
        {"type": "bidi_text_input", "text": "hi", "role": "user"},
        "hi",
        BidiTextInputEvent("hi"),
    ],
)
async def test_send_forms_as_in_strands(sent: Any) -> None:
    model = ScriptedModel()
    async with BidiAgent(model=model) as agent:
        connection = await model.wait_connection()
        await agent.send(sent)
        await connection.wait_sent_count(1)
    assert connection.sent == [BidiTextInputEvent("hi", "user")]
    assert agent.messages == [{"role": "user", "content": [{"text": "hi"}]}]


# --------------------------------------------------------------------- tools given by name


@pytest.fixture
def tool_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    package = tmp_path / "parity_tools_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "weather.py").write_text(
        textwrap.dedent(
            '''
            from trio_bidi import tool

            @tool
            def forecast(city: str) -> str:
                """Forecast.

                Args:
                    city: Where.
                """
                return f"sun in {city}"

            @tool
            def humidity(city: str) -> int:
                """Humidity.

                Args:
                    city: Where.
                """
                return 40
            '''
        )
    )
    (package / "legacy.py").write_text(
        textwrap.dedent(
            """
            TOOL_SPEC = {
                "name": "legacy",
                "description": "A Strands module tool.",
                "inputSchema": {
                    "json": {"type": "object", "properties": {"x": {"type": "integer"}}}
                },
            }

            def legacy(tool_use, **kwargs):
                return {
                    "toolUseId": tool_use["toolUseId"],
                    "status": "success",
                    "content": [{"text": f"x={tool_use['input']['x']}"}],
                }
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield package
    for name in [m for m in sys.modules if m.startswith("parity_tools_pkg")]:
        del sys.modules[name]


async def test_tools_as_module_paths_files_and_modules(tool_package: Path) -> None:
    import parity_tools_pkg.legacy as legacy_module  # type: ignore[import-not-found]

    agent = BidiAgent(
        model=ScriptedModel(),
        tools=[
            "parity_tools_pkg.weather:forecast",
            {"path": str(tool_package / "weather.py"), "name": "humidity"},
            legacy_module,
        ],
    )
    assert agent.tool_names == ["forecast", "humidity", "legacy"]
    assert (await agent.tool.forecast(city="Oslo"))["content"] == [{"text": "sun in Oslo"}]
    assert (await agent.tool.legacy(x=3))["content"] == [{"text": "x=3"}]
    whole_module = BidiAgent(model=ScriptedModel(), tools=["parity_tools_pkg.weather"])
    assert whole_module.tool_names == ["forecast", "humidity"]


def test_a_tool_that_cannot_be_loaded_is_named() -> None:
    with pytest.raises(BidiConfigurationError, match="'no_such_module_xyz'"):
        BidiAgent(model=ScriptedModel(), tools=["no_such_module_xyz"])
    with pytest.raises(BidiConfigurationError, match=r"missing_file\.py"):
        BidiAgent(model=ScriptedModel(), tools=["./missing_file.py"])


class _Provider:
    """A Strands-style tool provider."""

    def __init__(self, tools: Sequence[AgentTool]) -> None:
        self._tools = list(tools)
        self.consumers: list[Any] = []

    async def load_tools(self, **_: Any) -> Sequence[AgentTool]:
        await trio.lowlevel.checkpoint()
        return self._tools

    def add_consumer(self, consumer_id: Any, **_: Any) -> None:
        self.consumers.append(consumer_id)

    def remove_consumer(self, consumer_id: Any, **_: Any) -> None:
        self.consumers.remove(consumer_id)


async def test_tool_providers_load_when_the_agent_starts() -> None:
    @tool
    def provided() -> str:
        """From a provider."""
        return "ok"

    provider = _Provider([provided])
    model = ScriptedModel()
    agent = BidiAgent(model=model, tools=[provider])
    assert agent.tool_names == []
    async with agent:
        connection = await model.wait_connection()
        assert [spec["name"] for spec in connection.tools] == ["provided"]
        assert len(provider.consumers) == 1
    assert provider.consumers == []
