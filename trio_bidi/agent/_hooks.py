"""Typed hook events and the registry that dispatches them.

A hook is a callback registered for one event class. The agent builds the event, hands it
to every callback registered for its class (in registration order, or in reverse order for
"after" events), and reads back the fields the callbacks may change::

    def log_tool(event: BidiBeforeToolCallEvent) -> None:
        print("calling", event.tool_use["name"])

    agent = BidiAgent(model=model, hooks=[log_tool])

Callbacks may be plain functions or ``async def`` functions. ``hooks=`` takes callbacks
(the event class is read from the first parameter's annotation) and hook providers
(objects with ``register_hooks(registry)``).
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeAlias, TypeVar

import attrs
import trio

from ..errors import BidiConfigurationError, BidiModelTimeoutError
from ..types import Message, ToolResult, ToolUse

if TYPE_CHECKING:
    from ._agent import BidiAgent
    from ._tools import AgentTool

__all__ = [
    "BidiAfterConnectionRestartEvent",
    "BidiAfterInvocationEvent",
    "BidiAfterToolCallEvent",
    "BidiAgentInitializedEvent",
    "BidiBeforeConnectionRestartEvent",
    "BidiBeforeInvocationEvent",
    "BidiBeforeToolCallEvent",
    "BidiHookEvent",
    "BidiInterruptionHookEvent",
    "BidiMessageAddedEvent",
    "HookCallback",
    "HookProvider",
    "HookRegistry",
]

logger = logging.getLogger(__name__)

E = TypeVar("E", bound="BidiHookEvent")

HookCallback: TypeAlias = Callable[[E], Awaitable[None] | None]
"""A hook callback: takes the event, returns None or an awaitable."""


@attrs.define(kw_only=True)
class BidiHookEvent:
    """Base of every hook event.

    Attributes:
        agent: The agent that fired the event.
    """

    should_reverse_callbacks: ClassVar[bool] = False
    agent: BidiAgent


@attrs.define(kw_only=True)
class BidiAgentInitializedEvent(BidiHookEvent):
    """The agent finished its constructor. Callbacks must be synchronous."""


@attrs.define(kw_only=True)
class BidiBeforeInvocationEvent(BidiHookEvent):
    """The agent is starting (``async with agent`` entered, before the first connection)."""


@attrs.define(kw_only=True)
class BidiAfterInvocationEvent(BidiHookEvent):
    """The agent stopped (on every exit path). Callbacks run in reverse order."""

    should_reverse_callbacks: ClassVar[bool] = True


@attrs.define(kw_only=True)
class BidiMessageAddedEvent(BidiHookEvent):
    """A message was appended to ``agent.messages``.

    Attributes:
        message: The message.
    """

    message: Message


@attrs.define(kw_only=True)
class BidiBeforeToolCallEvent(BidiHookEvent):
    """A tool is about to run.

    Callbacks may replace ``selected_tool`` or ``tool_use``, or set ``cancel_tool`` to
    True (or to a message) to skip the call; the model then gets an error result.

    Attributes:
        selected_tool: The tool that will run (None: no tool of that name).
        tool_use: The call: ``{"toolUseId", "name", "input"}``.
        invocation_state: The invocation state the tool receives.
        cancel_tool: False to run the tool; True or a message to cancel the call.
    """

    selected_tool: AgentTool | None
    tool_use: ToolUse
    invocation_state: dict[str, Any]
    cancel_tool: bool | str = False


@attrs.define(kw_only=True)
class BidiAfterToolCallEvent(BidiHookEvent):
    """A tool call finished (success, error, timeout or cancellation).

    Callbacks run in reverse order and may replace ``result``.

    Attributes:
        selected_tool: The tool that ran (None: no tool of that name).
        tool_use: The call.
        invocation_state: The invocation state the tool received.
        result: The result that goes to history and to the model.
        exception: What the tool raised, if it raised.
        cancel_message: Why the call was cancelled, if it was.
    """

    should_reverse_callbacks: ClassVar[bool] = True
    selected_tool: AgentTool | None
    tool_use: ToolUse
    invocation_state: dict[str, Any]
    result: ToolResult
    exception: Exception | None = None
    cancel_message: str | None = None


@attrs.define(kw_only=True)
class BidiInterruptionHookEvent(BidiHookEvent):
    """The model's output was interrupted (the user barged in, or an error).

    Strands names this hook event ``BidiInterruptionEvent``; here that name belongs to
    the output event
    ([`trio_bidi.events.BidiInterruptionEvent`][trio_bidi.events.BidiInterruptionEvent]), so the
    hook event is ``BidiInterruptionHookEvent``. It fires when the agent sees that output event.

    Attributes:
        reason: ``"user_speech"`` or ``"error"``.
        interrupted_response_id: The response that was cut, when one was running.
    """

    reason: Literal["user_speech", "error"]
    interrupted_response_id: str | None = None


@attrs.define(kw_only=True)
class BidiBeforeConnectionRestartEvent(BidiHookEvent):
    """The agent is about to open a new connection to replace a lost or expired one.

    Attributes:
        timeout_error: Why the old connection ended (its ``restart_config`` is used).
    """

    timeout_error: BidiModelTimeoutError


@attrs.define(kw_only=True)
class BidiAfterConnectionRestartEvent(BidiHookEvent):
    """A connection restart finished. Callbacks run in reverse order.

    Attributes:
        exception: None when the new connection is open; the last error when every
            attempt failed and the agent gave up.
    """

    should_reverse_callbacks: ClassVar[bool] = True
    exception: Exception | None = None


class HookProvider(Protocol):
    """An object that registers several callbacks at once."""

    def register_hooks(self, registry: HookRegistry) -> None:
        """Register callbacks with ``registry.add_callback``."""
        ...


def _event_type_of(callback: Callable[..., Any]) -> type[BidiHookEvent]:
    try:
        hints = typing.get_type_hints(callback)
    except Exception as exc:
        raise BidiConfigurationError(
            f"hook {callback!r}: cannot resolve the annotation of its event parameter ({exc})"
        ) from exc
    params = [p for p in inspect.signature(callback).parameters.values() if p.name != "self"]
    if params:
        annotation = hints.get(params[0].name)
        if isinstance(annotation, type) and issubclass(annotation, BidiHookEvent):
            return annotation
    raise BidiConfigurationError(
        f"hook {callback!r}: annotate its first parameter with a hook event class "
        "(for example `def on_tool(event: BidiBeforeToolCallEvent) -> None`), "
        "or pass a HookProvider"
    )


class HookRegistry:
    """Callbacks per hook event class."""

    def __init__(self) -> None:
        self._callbacks: dict[type[BidiHookEvent], list[Callable[[Any], Any]]] = {}

    def add_callback(self, event_type: type[E], callback: HookCallback[E]) -> None:
        """Register ``callback`` for events of ``event_type`` (and its subclasses).

        Args:
            event_type: A [`BidiHookEvent`][trio_bidi.BidiHookEvent] subclass.
            callback: A function or ``async def`` function taking the event.

        Raises:
            BidiConfigurationError: ``event_type`` is not a hook event class, or an async
                callback is registered for
                [`BidiAgentInitializedEvent`][trio_bidi.BidiAgentInitializedEvent] (which fires in
                the synchronous constructor).
        """
        if not (isinstance(event_type, type) and issubclass(event_type, BidiHookEvent)):
            raise BidiConfigurationError(f"{event_type!r} is not a hook event class")
        if issubclass(event_type, BidiAgentInitializedEvent) and inspect.iscoroutinefunction(
            callback
        ):
            raise BidiConfigurationError(
                "BidiAgentInitializedEvent fires in the constructor; its callbacks must be sync"
            )
        self._callbacks.setdefault(event_type, []).append(callback)

    def add_hook(self, hook: HookProvider | Callable[..., Any]) -> None:
        """Register a hook provider, or a callback whose first parameter names its event.

        Raises:
            BidiConfigurationError: The object is neither.
        """
        register = getattr(hook, "register_hooks", None)
        if callable(register):
            register(self)
            return
        if not callable(hook):
            raise BidiConfigurationError(f"hook {hook!r} is neither a HookProvider nor callable")
        self.add_callback(_event_type_of(hook), hook)

    def has_callbacks(self, event_type: type[BidiHookEvent]) -> bool:
        """Return True when some callback would receive events of ``event_type``."""
        return any(issubclass(event_type, t) for t in self._callbacks)

    def _callbacks_for(self, event: BidiHookEvent) -> list[Callable[[Any], Any]]:
        found = [cb for t, cbs in self._callbacks.items() if isinstance(event, t) for cb in cbs]
        if event.should_reverse_callbacks:
            found.reverse()
        return found

    async def invoke(self, event: E) -> E:
        """Run every callback for ``event`` (awaiting async ones) and return the event.

        A checkpoint, like every async function: it yields to the scheduler (and is a
        cancel point) even when no callback is async, or an async one never yields.
        """
        for callback in self._callbacks_for(event):
            outcome = callback(event)
            if inspect.isawaitable(outcome):
                await outcome
        await trio.lowlevel.checkpoint()
        return event

    def invoke_sync(self, event: E) -> E:
        """Run every callback for ``event``; they must be synchronous.

        Raises:
            BidiConfigurationError: A callback returned an awaitable.
        """
        for callback in self._callbacks_for(event):
            outcome = callback(event)
            if inspect.isawaitable(outcome):
                close = getattr(outcome, "close", None)
                if callable(close):
                    close()
                raise BidiConfigurationError(
                    f"hook {callback!r} for {type(event).__name__} must be synchronous"
                )
        return event
