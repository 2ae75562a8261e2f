"""BidiAgent: the public surface of a supervised, tool-using, real-time conversation.

::

    async with BidiAgent(model=model, tools=[get_weather], system_prompt="Be brief.") as agent:
        await agent.send("What's the weather in Lyon?")
        async for event in agent.receive():
            ...

Entering the agent opens its nursery and the first connection; leaving it, on any path,
cancels the connection, every running tool call and the supervision loop, and waits for
them (sync tools included) before returning. See `trio_bidi.agent._loop` for the
supervision (restarts, the input buffer) and `trio_bidi.agent._tools` for tools.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import trio

from .._util import open_nursery_unwrapped
from ..errors import BidiConfigurationError, BidiStateError
from ..events import (
    BidiAudioInputEvent,
    BidiImageInputEvent,
    BidiInputEvent,
    BidiTextInputEvent,
    ToolResultEvent,
    event_from_dict,
)
from ..models._base import BidiModel, SendableEvent
from ..types import Message, ToolResult
from . import _hooks as hooks_module
from ._cleanup import bounded_cleanup
from ._history import copy_json
from ._hooks import HookProvider, HookRegistry
from ._loop import AgentLoop, AgentOutput
from ._run_inputs import INPUT_END_REPLY_TIMEOUT_S, InputTurns
from ._settings import AgentSettings
from ._state import AgentState
from ._stats import AgentStatistics
from ._tool_loader import ToolDirectoryWatcher, ToolProviders, resolve_tool_entries
from ._tool_runner import ToolRunner
from ._tools import (
    ConcurrentToolExecutor,
    DirectToolCall,
    SequentialToolExecutor,
    ToolExecutor,
    ToolRegistry,
)

__all__ = ["BidiAgent"]

logger = logging.getLogger(__name__)

_INPUT_TYPES = (BidiTextInputEvent, BidiAudioInputEvent, BidiImageInputEvent, ToolResultEvent)
# Events are Mappings (an ABC): an exact type lookup skips ABCMeta's isinstance per frame.
_EXACT_INPUT_TYPES = frozenset(_INPUT_TYPES)


def _resolve_model(model: BidiModel | str | None) -> BidiModel:
    if model is None or isinstance(model, str):
        # As in the API we follow: nothing selects Amazon Nova 2 Sonic, a model id selects
        # its provider (amazon.nova-*, gpt-*, gemini-*), configured from the environment.
        from ..models._registry import model_from_id

        return model_from_id(model)
    if not isinstance(model, BidiModel):
        raise TypeError(
            f"model must be a BidiModel (with model_id, config and connect) or a model id "
            f"string, not {type(model).__name__}"
        )
    return model


class _ToolCaller:
    """``agent.tool.<name>(**kwargs)``: direct tool calls."""

    __slots__ = ("_agent",)

    def __init__(self, agent: BidiAgent) -> None:
        self._agent = agent

    def __getattr__(self, name: str) -> Callable[..., Any]:
        registry = self._agent.tool_registry
        tool_name = name
        if tool_name not in registry and name.replace("_", "-") in registry:
            tool_name = name.replace("_", "-")
        if tool_name not in registry:
            raise AttributeError(
                f"agent has no tool {name!r} (tools: {', '.join(registry.names) or 'none'})"
            )

        def call(record_direct_tool_call: bool | None = None, **kwargs: Any) -> DirectToolCall:
            # Awaitable; warns at the caller's line if never awaited.
            run = functools.partial(
                self._agent._call_tool_directly, tool_name, kwargs, record_direct_tool_call
            )
            return DirectToolCall(tool_name, run)

        call.__name__ = tool_name
        return call

    def __dir__(self) -> list[str]:
        return [n.replace("-", "_") for n in self._agent.tool_registry.names]


class _Receiver:
    """Async iterator over the agent's output; raises the agent's terminal error at the end.

    Each ``__anext__`` reads and handles the next event in the caller's task (see
    `AgentLoop.next_output`).
    """

    __slots__ = ("_loop",)

    def __init__(self, loop: AgentLoop) -> None:
        self._loop = loop

    def __aiter__(self) -> _Receiver:
        return self

    async def __anext__(self) -> AgentOutput:
        event = await self._loop.next_output()
        if event is not None:
            return event
        error = self._loop.terminal_error()
        if error is not None:
            raise error
        raise StopAsyncIteration


class BidiAgent:
    """A real-time conversation with a model: connection supervision, tools, history, hooks.

    The parameters are Strands' (``strands.experimental.bidi.BidiAgent``), plus this
    library's settings as keyword arguments.

    Args:
        model: A model object ([`BidiModel`][trio_bidi.BidiModel]), or a model id string
            (selects [`BidiOpenAIRealtimeModel`][trio_bidi.BidiOpenAIRealtimeModel]; None selects
            its default model). The OpenAI provider reads ``OPENAI_API_KEY``.
        tools: Tools: functions decorated with [`tool`][trio_bidi.tool], other
            [`AgentTool`][trio_bidi.agent.AgentTool] objects, plain functions, module paths
            (``"pkg.mod"``, ``"pkg.mod:name"``), ``.py`` files, modules, or tool
            providers (objects with ``async load_tools()``, loaded when the agent starts).
        system_prompt: Instructions sent with every connection.
        messages: History to continue from (Strands ``Message`` dicts; copied).
        record_direct_tool_call: Append ``agent.tool.<name>(...)`` calls to the history.
        load_tools_from_directory: Load the ``@tool`` functions of ``./tools/*.py`` and
            pick up added or changed files while the agent runs.
        agent_id: Identifies the agent in a session (default ``"default"``, as in
            Strands; no path separators).
        name: A display name (default ``"Strands Agents"``, as in Strands).
        description: What the agent does.
        hooks: Hook callbacks (annotated with their event class) and hook providers.
        state: Initial agent state (JSON-serialisable values).
        session_manager: Keeps history and state in a store, e.g.
            [`FileSessionManager`][trio_bidi.session.FileSessionManager]; restored when the agent
            starts.
        tool_executor: [`ConcurrentToolExecutor`][trio_bidi.ConcurrentToolExecutor] (the default) or
            [`SequentialToolExecutor`][trio_bidi.SequentialToolExecutor].
        **settings: Tunables, see [`AgentSettings`][trio_bidi.agent.AgentSettings] (for example
            ``tool_timeout_s=10``, ``gap_audio_buffer_s=3``, ``restart_margin_s=20``).

    Raises:
        BidiConfigurationError: An unknown keyword argument (neither a Strands parameter
            nor a setting), a bad value, two tools with one name, a tool that cannot be
            loaded, or a hook that cannot be registered.
        TypeError: ``model`` is neither a model nor a string.
        ValueError: ``agent_id`` contains a path separator, or ``state`` is neither a dict
            nor an [`AgentState`][trio_bidi.AgentState].
    """

    def __init__(
        self,
        model: BidiModel | str | None = None,
        tools: Sequence[Any] | None = None,
        system_prompt: str | None = None,
        messages: Sequence[Message] | None = None,
        record_direct_tool_call: bool = True,
        load_tools_from_directory: bool = False,
        agent_id: str | None = None,
        name: str | None = None,
        description: str | None = None,
        hooks: Sequence[HookProvider | Callable[..., Any]] | None = None,
        state: AgentState | Mapping[str, Any] | None = None,
        session_manager: HookProvider | None = None,
        tool_executor: ToolExecutor | None = None,
        **settings: Any,
    ) -> None:
        self.settings = _settings_with_executor(settings, tool_executor)
        self.model: BidiModel = _resolve_model(model)
        tool_entries, providers = resolve_tool_entries(tools or ())
        self.tool_registry = ToolRegistry(tool_entries)
        self.load_tools_from_directory = load_tools_from_directory
        self.tool_watcher: ToolDirectoryWatcher | None = None
        if load_tools_from_directory:
            self.tool_watcher = ToolDirectoryWatcher(Path.cwd() / "tools")
            failures = self.tool_watcher.load_now(self.tool_registry)
            if failures:
                raise BidiConfigurationError("; ".join(str(f) for f in failures)) from failures[0]
        self.tool_executor = tool_executor or ConcurrentToolExecutor(self.settings.tool_concurrency)
        self.system_prompt = system_prompt
        self.messages: list[Message] = copy_json(list(messages or ()))
        if state is not None and not isinstance(state, (AgentState, Mapping)):
            raise ValueError("state must be an AgentState object or a dict")
        self.state = state if isinstance(state, AgentState) else AgentState(state)
        self.agent_id = _checked_agent_id(agent_id)
        self.name = name or _DEFAULT_AGENT_NAME
        self.description = description
        self.record_direct_tool_call = record_direct_tool_call
        self.invocation_state: dict[str, Any] = {}
        self.hooks = _hooks_registry(hooks or ())
        if providers:
            self.hooks.add_hook(ToolProviders(providers, self.tool_registry))
        self._session_manager = session_manager
        if session_manager is not None:
            self.hooks.add_hook(session_manager)
        self._loop: AgentLoop | None = None
        self._running = False
        self._session_cm: Any = None
        self.hooks.invoke_sync(hooks_module.BidiAgentInitializedEvent(agent=self))

    def __repr__(self) -> str:
        return f"BidiAgent(name={self.name!r}, model={self.model.model_id!r})"

    # ------------------------------------------------------------------ properties

    @property
    def tool_names(self) -> list[str]:
        """The names of the agent's tools."""
        return self.tool_registry.names

    @property
    def tool(self) -> _ToolCaller:
        """Direct tool calls: ``await agent.tool.get_weather(city="Lyon")``.

        Each call returns the [`ToolResult`][trio_bidi.types.ToolResult]; it runs the tool
        hooks and, with ``record_direct_tool_call``, is appended to the history (so the
        model sees it from the next connection on). It needs no connection.
        """
        return _ToolCaller(self)

    @property
    def running(self) -> bool:
        """True between entering and leaving ``async with agent``."""
        return self._running

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> BidiAgent:
        if self._running:
            raise BidiStateError(
                f"{self!r} is already started; leave its `async with` block before "
                "starting it again"
            )
        self._running = True
        cm = self._session()
        try:
            await cm.__aenter__()
        except BaseException:
            self._running = False
            raise
        self._session_cm = cm
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        cm, self._session_cm = self._session_cm, None
        try:
            return await cm.__aexit__(exc_type, exc, tb)  # type: ignore[no-any-return]
        finally:
            self._running = False

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[None]:
        loop = AgentLoop(self, self.model, self.settings)
        self._loop = loop
        await self.hooks.invoke(hooks_module.BidiBeforeInvocationEvent(agent=self))
        try:
            async with open_nursery_unwrapped() as nursery:
                await nursery.start(loop.run, nursery)
                if self.tool_watcher is not None:
                    loop.start_reporter(nursery, self.tool_watcher.run, self.tool_registry)
                logger.debug("agent_id=<%s> | agent started", self.agent_id)
                try:
                    yield
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            logger.debug("agent_id=<%s> | agent stopped", self.agent_id)
            with bounded_cleanup(self.settings.cleanup_timeout_s, "after-invocation hooks"):
                await self.hooks.invoke(hooks_module.BidiAfterInvocationEvent(agent=self))

    async def start(self, invocation_state: Mapping[str, Any] | None = None) -> NoReturn:
        """Not available: start the agent with ``async with agent:`` instead.

        Trio runs background work only inside a nursery, so the agent starts by entering
        it (``async with agent:``, or ``async with agent.session(invocation_state=...)``)
        and stops when the block ends (or at [`stop`][trio_bidi.BidiAgent.stop]).

        Raises:
            BidiStateError: Always, showing the ``async with`` form.
        """
        await trio.lowlevel.checkpoint()
        raise BidiStateError(
            "BidiAgent.start() does not exist in trio_bidi: Trio starts background work "
            "inside a nursery, so write\n"
            "    async with agent:  # or: async with agent.session(invocation_state={...}):\n"
            "        await agent.send(...)\n"
            "        async for event in agent.receive(): ...\n"
            "(the agent stops when the block ends, or at `await agent.stop()`)"
        )

    async def stop(self) -> None:
        """End the conversation gracefully, from any task; idempotent.

        The connection is closed properly, [`receive`][trio_bidi.BidiAgent.receive] yields the
        remaining events and a
        [`BidiConnectionCloseEvent`][trio_bidi.events.BidiConnectionCloseEvent] (reason
        ``"client_disconnect"``) and ends, and [`run`][trio_bidi.BidiAgent.run] returns. Does
        nothing when the agent is not running or already ending. The agent's nursery closes when its
        ``async with`` block ends.
        """
        loop = self._loop
        if self._running and loop is not None and not loop.ended:
            loop.request_stop("client_disconnect")
        await trio.lowlevel.checkpoint()

    @asynccontextmanager
    async def session(
        self, invocation_state: Mapping[str, Any] | None = None
    ) -> AsyncIterator[BidiAgent]:
        """``async with agent`` with an invocation state for the tools.

        ``async with agent.session(invocation_state={"user_id": "u1"}) as agent:`` is
        Strands' ``await agent.start(invocation_state={...})``: tools see the state as
        ``tool_context.invocation_state``.
        """
        self.invocation_state = dict(invocation_state or {})
        async with self:
            yield self

    def _require_loop(self, action: str) -> AgentLoop:
        if not self._running or self._loop is None:
            raise BidiStateError(
                f"cannot {action}: the agent is not running (start it with `async with agent:` "
                "or `await agent.run(...)`)"
            )
        return self._loop

    # ------------------------------------------------------------------ conversation

    async def send(self, event: str | BidiInputEvent | ToolResultEvent | Mapping[str, Any]) -> None:
        """Send input to the model.

        While the agent reconnects, input waits for the new connection: text and images
        in order, audio in a buffer bounded by ``gap_audio_buffer_s`` (the oldest audio
        is dropped beyond it and counted in [`statistics`][trio_bidi.BidiAgent.statistics]).

        Args:
            event: Text (a ``str``), an input event, a tool result event, or an event
                dict such as a browser sends (``{"type": "bidi_text_input", ...}``).

        Raises:
            ValueError: A dict with an unknown ``type`` or malformed fields, or the dict
                form of an output event.
            TypeError: Any other kind of object.
            BidiStateError: The agent is not running, or the conversation ended.
            BidiConnectionError: The agent gave up reconnecting.
        """
        loop = self._require_loop("send")
        await loop.send_input(_as_sendable(event))

    def receive(self) -> AsyncIterator[AgentOutput]:
        """Iterate over the model's output events and the agent's tool events.

        The iteration goes on across connection restarts (a
        [`BidiConnectionRestartEvent`][trio_bidi.events.BidiConnectionRestartEvent] marks each) and
        ends after a [`BidiConnectionCloseEvent`][trio_bidi.events.BidiConnectionCloseEvent] when
        the conversation ends.

        Raises:
            BidiStateError: The agent is not running.
            BidiConnectionError: (while iterating) every reconnection attempt failed; a
                [`BidiErrorEvent`][trio_bidi.events.BidiErrorEvent] comes first.
        """
        return _Receiver(self._require_loop("receive"))

    async def run(
        self,
        inputs: Sequence[Any],
        outputs: Sequence[Any],
        invocation_state: Mapping[str, Any] | None = None,
    ) -> None:
        """Run the conversation between inputs and outputs until it ends.

        Starts the agent when it is not running (and stops it at the end). Calls every
        ``start(agent)`` of the inputs and outputs first; then sends what each input
        returns and hands every output event to every output, until the conversation
        ends (a tool ended it, or the agent gave up reconnecting) or an input or output
        raises. Every ``stop()`` then runs, whatever happened.

        Args:
            inputs: [`BidiInput`][trio_bidi.io.BidiInput] objects (``await source()``).
            outputs: [`BidiOutput`][trio_bidi.io.BidiOutput] objects (``await sink(event)``).
            invocation_state: Given to tools (``invocation_state`` parameter).

        Raises:
            Exception: What an input or output raised, or what a ``stop()`` raised.
            BaseExceptionGroup: Several errors at once (stops that raised, together with
                the error that ended the run, if any).
        """
        self.invocation_state = dict(invocation_state or {})
        if self._running:
            await self._run_io(inputs, outputs)
            return
        async with self:
            await self._run_io(inputs, outputs)

    async def _run_io(self, inputs: Sequence[Any], outputs: Sequence[Any]) -> None:
        started: list[Any] = []
        try:
            for io in [*inputs, *outputs]:
                start = getattr(io, "start", None)
                if callable(start):
                    await _maybe_await(start(self))
                started.append(io)
            turns = InputTurns(len(inputs))
            async with open_nursery_unwrapped() as nursery:
                for source in inputs:
                    nursery.start_soon(self._pump_input, source, turns)
                if inputs:
                    nursery.start_soon(self._end_after_inputs, turns)
                await self._pump_outputs(outputs, turns)
                nursery.cancel_scope.cancel()
        except BaseException as exc:
            stop_errors = await _stop_all(started, self.settings.cleanup_timeout_s)
            if stop_errors:
                # Keep the run's own error (even a Cancelled, which Trio takes back out
                # of the group) together with the stop errors: nothing is lost.
                raise BaseExceptionGroup(
                    "the conversation failed and inputs/outputs failed to stop",
                    [exc, *stop_errors],
                ) from None
            raise
        stop_errors = await _stop_all(started, self.settings.cleanup_timeout_s)
        if len(stop_errors) == 1:
            raise stop_errors[0]
        if stop_errors:
            raise ExceptionGroup("several inputs/outputs failed to stop", stop_errors)

    async def _pump_input(self, source: Any, turns: InputTurns) -> None:
        while True:
            try:
                event = await source()
            except EOFError:  # BidiInputEnded, or a Strands-style input's end
                logger.debug("input=<%r> | input ended", source)
                turns.input_ended()
                return
            await self.send(event)
            turns.sent()

    async def _end_after_inputs(self, turns: InputTurns) -> None:
        """Once every input ended, let the reply in progress finish, then end the run."""
        await turns.all_ended.wait()
        with trio.move_on_after(INPUT_END_REPLY_TIMEOUT_S) as scope:
            await turns.wait_idle()
        if scope.cancelled_caught:
            logger.warning(
                "timeout_s=<%s> | every input ended; the reply did not finish in time",
                INPUT_END_REPLY_TIMEOUT_S,
            )
        self._require_loop("end the conversation").request_stop("client_disconnect")

    async def _pump_outputs(self, outputs: Sequence[Any], turns: InputTurns) -> None:
        async for event in self.receive():
            turns.saw(event)
            for sink in outputs:
                await sink(event)

    async def report_playback(self, played_ms: int) -> None:
        """Tell the model how much of its interrupted audio the user heard.

        Audio outputs call this after an interruption; the agent forwards it to the
        current connection (OpenAI truncates the unheard part). Without an open
        connection the report is dropped and logged (the next connection's history
        holds only final transcripts anyway).
        """
        loop = self._require_loop("report playback")
        connection = loop.current_connection
        if connection is None:
            logger.debug("played_ms=<%d> | no open connection, playback report dropped", played_ms)
            return
        await connection.report_playback(played_ms)

    def statistics(self) -> AgentStatistics:
        """Return a frozen snapshot of the agent's counters (zeros before the first start)."""
        if self._loop is None:
            return AgentStatistics(
                connections_opened=0,
                restarts=0,
                failed_connection_attempts=0,
                connected=False,
                connection_age_s=None,
                buffered_input_events=0,
                buffered_audio_ms=0.0,
                dropped_audio_events=0,
                dropped_audio_ms=0.0,
                tool_calls_running=0,
                tool_calls_total=0,
                tool_calls_cancelled=0,
            )
        return self._loop.statistics()

    async def _call_tool_directly(
        self, name: str, tool_input: dict[str, Any], record: bool | None = None
    ) -> ToolResult:
        """Run a tool for ``agent.tool.<name>(...)`` (``record``: Strands' per-call override)."""
        loop = self._loop
        # In a conversation the agent's tool runner serves the call (its nursery lets a
        # time limit abandon a worker thread); otherwise a runner of its own.
        runner = (
            loop.tools if loop is not None and self._running else ToolRunner(self, self.settings)
        )
        if record is None:
            record = self.record_direct_tool_call
        return await runner.call_directly(name, tool_input, record=record)


def _hooks_registry(entries: Sequence[Any]) -> HookRegistry:
    registry = HookRegistry()
    for entry in entries:
        registry.add_hook(entry)
    return registry


def _as_sendable(event: Any) -> SendableEvent:
    if type(event) in _EXACT_INPUT_TYPES:
        return event  # type: ignore[no-any-return]
    if isinstance(event, str):
        return BidiTextInputEvent(event)
    if isinstance(event, _INPUT_TYPES):
        return event
    if isinstance(event, Mapping):
        if event.get("type") == "bidi_text_input" and "role" not in event:
            event = {**event, "role": "user"}  # Strands' default role
        parsed = event_from_dict(event)
        if not isinstance(parsed, _INPUT_TYPES):
            raise ValueError(
                f"event: type {parsed.type!r} is an output event; send takes "
                "bidi_text_input, bidi_audio_input, bidi_image_input or tool_result"
            )
        return parsed
    raise TypeError(
        f"send takes a str, an input event or an event dict, not {type(event).__name__}"
    )


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value


async def _stop_all(started: Sequence[Any], timeout_s: float) -> list[Exception]:
    """Call every ``stop()`` (last started first); return what they raised.

    Each runs shielded from cancellation with its own deadline of ``timeout_s``: a stop
    that hangs is abandoned (and logged), and the next one still runs.
    """
    errors: list[Exception] = []
    for io in reversed(started):
        stop = getattr(io, "stop", None)
        if not callable(stop):
            continue
        with bounded_cleanup(timeout_s, f"{io!r}.stop()"):
            try:
                await _maybe_await(stop())
            except Exception as exc:
                logger.debug("io=<%r>, error=<%s> | stop failed", io, exc, exc_info=True)
                errors.append(exc)
    return errors


_DEFAULT_AGENT_ID = "default"
_DEFAULT_AGENT_NAME = "Strands Agents"


def _checked_agent_id(agent_id: str | None) -> str:
    value = agent_id or _DEFAULT_AGENT_ID
    if os.path.basename(value) != value or value in (".", ".."):
        raise ValueError(f"agent_id={value!r} | id cannot contain path separators")
    return value


def _settings_with_executor(
    settings: dict[str, Any], tool_executor: ToolExecutor | None
) -> AgentSettings:
    if tool_executor is not None:
        if not isinstance(tool_executor, (ConcurrentToolExecutor, SequentialToolExecutor)):
            raise BidiConfigurationError(
                f"tool_executor must be a ConcurrentToolExecutor or SequentialToolExecutor "
                f"from trio_bidi.agent, not {type(tool_executor).__name__}"
            )
        if "tool_concurrency" in settings:
            raise BidiConfigurationError("give tool_executor or tool_concurrency, not both")
        settings = {**settings, "tool_concurrency": tool_executor.max_concurrency}
    return AgentSettings.from_kwargs(settings)
