"""Tool execution: the model's tool calls (as tasks that outlive connections) and direct calls.

`ToolRunner` starts each call the model makes as a task in the agent's nursery, so
a call survives connection restarts: a call still running when a new connection opens is
replayed to it as a pending tool use (`ToolRunner.pending_uses`), and its result
goes to whichever connection knows it (the ``deliver`` callback). Every call runs the tool
hooks; its use and result enter the history together when it ends.

A time limit (the tool's ``timeout_s`` or the agent's ``tool_timeout_s``) ends the wait at
once: the model gets an error result saying so. A sync tool runs in a worker thread that
cannot be stopped; the call waits for it in a helper task, which the time limit (or an
interruption) abandons, so the model's turn is not held up by the thread. Whatever the
thread returns later is dropped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..errors import BidiProtocolError
from ..events import BidiErrorEvent, CloseReason, ToolResultEvent, ToolUseStreamEvent
from ..types import Message, ToolResult, ToolUse
from . import _hooks as hooks
from ._history import add_messages, tool_exchange
from ._settings import AgentSettings
from ._slots import OrderedSlots
from ._tools import AgentTool, ToolArgumentError, ToolContext, error_result, to_tool_result

if TYPE_CHECKING:
    from ._agent import BidiAgent

__all__ = ["ToolRunner"]

logger = logging.getLogger(__name__)

Deliver = Callable[[ToolResultEvent, int], Awaitable[None]]
"""Sends a call's result to the connection of the given generation, if still open."""


@attrs.define(eq=False)
class ToolCall:
    """One tool call in progress.

    Attributes:
        tool_use: The call (hooks may replace it).
        known_to: The generation of the newest connection that knows the call.
        scope: Cancels the call (interruption, withdrawal, stop).
        cancellable: The tool may be cancelled when the user interrupts.
        cancel_reason: Why it was cancelled (None: it was not).
        send_result: Send the result to the model (False: the model withdrew the call).
        turn: Its place in line for a tool slot (with ``tool_concurrency``).
    """

    tool_use: ToolUse
    known_to: int
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    cancellable: bool = False
    cancel_reason: str | None = None
    send_result: bool = True
    turn: trio.Event | None = None


class _TimedOut(Exception):
    """The tool did not finish within its time limit."""


class ToolRunner:
    """Runs the agent's tool calls; see the module docstring.

    Args:
        agent: The agent (tools, hooks, history, invocation state).
        settings: The agent's settings.
        emit: Hands a result event to ``receive()``, without waiting.
        deliver: Sends a result to the model (see `Deliver`).
        request_stop: Ends the conversation (a tool asked to).
    """

    def __init__(
        self,
        agent: BidiAgent,
        settings: AgentSettings,
        *,
        emit: Callable[[Any], None] | None = None,
        deliver: Deliver | None = None,
        request_stop: Callable[[CloseReason], None] | None = None,
    ) -> None:
        self._agent = agent
        self._settings = settings
        self._emit = emit
        self._deliver = deliver
        self._request_stop = request_stop
        self._nursery: trio.Nursery | None = None
        self._calls: dict[str, ToolCall] = {}
        self._seen_ids: set[str] = set()
        self._slots = OrderedSlots(settings.tool_concurrency) if settings.tool_concurrency else None
        self.total = 0
        """Calls started so far."""
        self.cancelled = 0
        """Calls cancelled (interruption, withdrawal, hook, stop)."""
        self.timed_out = 0
        """Calls that reached their time limit."""
        self._tasks = 0

    @property
    def running(self) -> int:
        """Calls in progress."""
        return len(self._calls)

    @property
    def busy(self) -> bool:
        """True while a call task runs (until it handed its result over)."""
        return self._tasks > 0

    def attach(self, nursery: trio.Nursery) -> None:
        """Run calls (and abandoned worker-thread waits) in ``nursery`` from now on."""
        self._nursery = nursery

    # ------------------------------------------------------------------ the model's calls

    def start(self, event: ToolUseStreamEvent, generation: int) -> BidiErrorEvent | None:
        """Start the call ``event`` asks for (once per id), known to connection ``generation``.

        Returns:
            An error event for the application when the call has no id or name.
        """
        current = event.current_tool_use
        tool_use_id = current.get("toolUseId")
        name = current.get("name")
        if not isinstance(tool_use_id, str) or not isinstance(name, str):
            logger.warning("tool_use=<%s> | tool use without id or name", current)
            return BidiErrorEvent(
                BidiProtocolError(
                    "the model asked for a tool call without a toolUseId or name", raw=current
                ),
                {"current_tool_use": current},
            )
        if tool_use_id in self._seen_ids:
            logger.debug("tool_use_id=<%s> | repeated tool use event, already handled", tool_use_id)
            return None
        self._seen_ids.add(tool_use_id)
        tool_input = current.get("input", {})
        if isinstance(tool_input, str):
            # Arguments as a JSON string: keep the parsed form (the history holds it);
            # unparsable text stays a string and becomes an error result when it runs.
            with contextlib.suppress(json.JSONDecodeError, RecursionError):
                tool_input = json.loads(tool_input) if tool_input.strip() else {}
        tool_use = ToolUse(toolUseId=tool_use_id, name=name, input=tool_input)
        selected = self._agent.tool_registry.get(name)
        call = ToolCall(
            tool_use,
            known_to=generation,
            cancellable=bool(selected is not None and selected.cancellable),
            turn=self._slots.reserve() if self._slots is not None else None,
        )
        self._calls[tool_use_id] = call
        self.total += 1
        assert self._nursery is not None, "the runner takes the model's calls once attached"
        self._tasks += 1
        self._nursery.start_soon(self._run, call, name=f"tool {name} {tool_use_id}")
        return None

    def pending_uses(self, generation: int) -> list[Message]:
        """The running calls as history for connection ``generation`` (which now knows them)."""
        messages: list[Message] = []
        for call in self._calls.values():
            call.known_to = generation
            messages.append({"role": "assistant", "content": [{"toolUse": call.tool_use}]})
        return messages

    def interrupt(self) -> None:
        """Cancel the cancellable calls: the user interrupted (the model gets the error result)."""
        for call in list(self._calls.values()):
            if call.cancellable:
                self._cancel(call, "the user interrupted", send_result=True)

    def withdraw(self, tool_use_ids: list[str]) -> None:
        """Cancel calls the model withdrew (no result is sent for them)."""
        for tool_use_id in tool_use_ids:
            call = self._calls.get(tool_use_id)
            if call is not None:
                self._cancel(call, "the model withdrew the call", send_result=False)

    def cancel_all(self, reason: str) -> None:
        """Cancel every call (the conversation ended)."""
        for call in list(self._calls.values()):
            self._cancel(call, reason, send_result=False)

    def _cancel(self, call: ToolCall, reason: str, *, send_result: bool) -> None:
        if call.cancel_reason is None:
            call.cancel_reason = reason
            call.send_result = send_result
        call.scope.cancel()

    async def _run(self, call: ToolCall) -> None:
        tool_use_id = call.tool_use["toolUseId"]
        recorded = False
        try:
            try:
                result, request_state = await self._call_with_hooks(call)
            finally:
                self._release_slot(call)  # calls that ended before their turn came
            generation = call.known_to
            # Leave the running set and enter the history in one step (no checkpoint in
            # between), so a restart replays the call exactly once.
            del self._calls[tool_use_id]
            recorded = True
            await add_messages(self._agent, *tool_exchange(call.tool_use, result))
            result_event = ToolResultEvent(result)
            if self._emit is not None:
                self._emit(result_event)  # never waits: the model's turn waits for it
            if request_state.get("stop_event_loop") and self._request_stop is not None:
                # As in Strands: the conversation ends and the model never sees the result.
                logger.info("tool=<%s> | a tool ended the conversation", call.tool_use["name"])
                self._request_stop("user_request")
            elif call.send_result and self._deliver is not None:
                await self._deliver(result_event, generation)
        finally:
            if not recorded:
                # The agent itself is being cancelled (it stopped): keep the call in the
                # history as cancelled rather than losing it. Hooks cannot run here.
                self.cancelled += 1
                cancelled = error_result(tool_use_id, "tool call cancelled: the agent stopped")
                self._agent.messages.extend(tool_exchange(call.tool_use, cancelled))
            self._calls.pop(tool_use_id, None)
            self._tasks -= 1

    # ------------------------------------------------------------------ direct calls

    async def call_directly(self, name: str, tool_input: Any, *, record: bool) -> ToolResult:
        """Run a tool outside the conversation (``agent.tool.<name>(...)``).

        The call goes through the tool hooks like a model's call; its use and result are
        appended to the history when ``record`` is true (the next connection sees them).
        """
        tool_use = ToolUse(
            toolUseId=f"tooluse_{uuid.uuid4().hex[:20]}", name=name, input=tool_input
        )
        call = ToolCall(tool_use, known_to=0)
        self.total += 1
        result, _request_state = await self._call_with_hooks(call)
        if record:
            await add_messages(self._agent, *tool_exchange(call.tool_use, result))
        return result

    # ------------------------------------------------------------------ one call

    async def _call_with_hooks(self, call: ToolCall) -> tuple[ToolResult, dict[str, Any]]:
        """Run one call with its hooks; return the final result and the request state."""
        agent = self._agent
        tool_use = call.tool_use
        tool_use_id = tool_use["toolUseId"]
        invocation_state = agent.invocation_state
        before = await agent.hooks.invoke(
            hooks.BidiBeforeToolCallEvent(
                agent=agent,
                selected_tool=agent.tool_registry.get(tool_use["name"]),
                tool_use=tool_use,
                invocation_state=invocation_state,
            )
        )
        selected = before.selected_tool
        tool_use = before.tool_use
        call.tool_use = tool_use
        exception: Exception | None = None
        request_state: dict[str, Any] = {}
        if before.cancel_tool:
            call.cancel_reason = (
                before.cancel_tool
                if isinstance(before.cancel_tool, str)
                else "a hook cancelled the call"
            )
            result = error_result(tool_use_id, f"tool call cancelled: {call.cancel_reason}")
        elif selected is None:
            result = error_result(
                tool_use_id,
                f"unknown tool {tool_use['name']!r} (available: "
                f"{', '.join(agent.tool_registry.names) or 'none'})",
            )
        else:
            result, exception = await self._execute(call, selected, request_state)
        if call.cancel_reason is not None:
            self.cancelled += 1
        after = await agent.hooks.invoke(
            hooks.BidiAfterToolCallEvent(
                agent=agent,
                selected_tool=selected,
                tool_use=tool_use,
                invocation_state=invocation_state,
                result=result,
                exception=exception,
                cancel_message=call.cancel_reason,
            )
        )
        final = ToolResult(
            toolUseId=tool_use_id, status=after.result["status"], content=after.result["content"]
        )
        return final, request_state

    def _release_slot(self, call: ToolCall) -> None:
        # Idempotent: a call gives its slot (or its place in line) back exactly once.
        if call.turn is not None and self._slots is not None:
            self._slots.release(call.turn)
        call.turn = None

    async def _execute(
        self, call: ToolCall, selected: AgentTool, request_state: dict[str, Any]
    ) -> tuple[ToolResult, Exception | None]:
        tool_use = call.tool_use
        tool_use_id = tool_use["toolUseId"]
        name = tool_use["name"]
        tool_input = tool_use.get("input")
        if isinstance(tool_input, str):
            try:
                tool_input = json.loads(tool_input) if tool_input.strip() else {}
            except (json.JSONDecodeError, RecursionError) as exc:
                return error_result(tool_use_id, f"invalid JSON arguments for {name}: {exc}"), None
            tool_use = ToolUse(toolUseId=tool_use_id, name=name, input=tool_input)
        context = ToolContext(
            tool_use=tool_use,
            agent=self._agent,
            invocation_state=self._agent.invocation_state,
            request_state=request_state,
        )
        timeout = selected.timeout_s or self._settings.tool_timeout_s
        result: ToolResult | None = None
        exception: Exception | None = None
        with call.scope:
            try:
                try:
                    if call.turn is not None:
                        await call.turn.wait()
                    value = await self._invoke(
                        name, lambda: selected.invoke(tool_use, context), timeout
                    )
                    result = to_tool_result(tool_use_id, value)
                finally:
                    self._release_slot(call)
            except _TimedOut:
                result = error_result(tool_use_id, f"tool {name} timed out after {timeout:g} s")
            except ToolArgumentError as exc:
                result = error_result(tool_use_id, f"invalid arguments for {name}: {exc}")
            except Exception as exc:
                logger.debug("tool=<%s>, error=<%s> | tool raised", name, exc, exc_info=True)
                exception = exc
                result = error_result(tool_use_id, f"{type(exc).__name__}: {exc}")
        if call.scope.cancelled_caught or result is None:
            call.cancel_reason = call.cancel_reason or "cancelled"
            result = error_result(tool_use_id, f"tool call cancelled: {call.cancel_reason}")
        return result, exception

    async def _invoke(
        self, name: str, invoke: Callable[[], Awaitable[Any]], timeout: float | None
    ) -> Any:
        """Await ``invoke()``; raise `_TimedOut` after ``timeout`` seconds.

        With a nursery, the tool runs in a helper task there, so the time limit (or a
        cancellation) ends this wait at once even when the tool is a worker thread that
        cannot be stopped; the helper is cancelled and left to finish on its own.
        """
        nursery = self._nursery
        if nursery is None:
            # No conversation (a direct call before the agent started): wait in place.
            with trio.move_on_after(math.inf if timeout is None else timeout):
                return await invoke()
            self.timed_out += 1
            raise _TimedOut
        box: list[tuple[Any, Exception | None]] = []  # (value, error) once the tool ended
        done = trio.Event()
        helper_scope = trio.CancelScope()

        async def run_tool() -> None:
            try:
                with helper_scope:
                    try:
                        value = await invoke()
                    except Exception as exc:
                        box.append((None, exc))
                    else:
                        box.append((value, None))
            finally:
                done.set()
            if helper_scope.cancel_called and box:
                logger.info("tool=<%s> | a late result after the call was given up: dropped", name)

        nursery.start_soon(run_tool, name=f"tool body {name}")
        try:
            with trio.move_on_after(math.inf if timeout is None else timeout):
                await done.wait()
        finally:
            if not done.is_set():
                helper_scope.cancel()
        if not box:
            self.timed_out += 1
            logger.warning(
                "tool=<%s>, timeout_s=<%s> | tool call timed out; the model gets an error "
                "result now, a late result from its worker thread will be dropped",
                name,
                timeout,
            )
            raise _TimedOut
        value, error = box[0]
        if error is not None:
            raise error  # raised once, here: the helper task only carried it over
        return value
