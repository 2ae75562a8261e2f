"""The agent's supervision loop: one connection at a time, restarts, the input gate, tools.

:class:`AgentLoop` runs as one task in the agent's nursery. It opens a connection, flushes
the input that waited for it, then pumps the connection's events to the application
(handling tool calls, history and interruptions on the way) inside a cancel scope whose
deadline is the connection's. When the connection ends (time limit, provider timeout,
disconnect, or a proactive restart at a turn boundary near the time limit) it emits a
:class:`~trio_bidi.events.BidiConnectionRestartEvent` and opens the next connection with
the history so far; input arriving meanwhile waits in a bounded :class:`InputBuffer`.
Failed attempts back off exponentially; after ``max_restart_attempts`` the loop emits a
:class:`~trio_bidi.events.BidiErrorEvent` and ends, and ``receive()`` raises.

Tool calls run as tasks in the agent's nursery, outside any one connection, so they
survive restarts. A call that is still running when a new connection opens is replayed to
it as a pending tool use, and its result goes to that connection when it finishes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import math
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._util import PromptLock, send_promptly
from ..errors import (
    BidiConfigurationError,
    BidiConnectionError,
    BidiError,
    BidiModelTimeoutError,
    BidiProtocolError,
    BidiStateError,
)
from ..events import (
    BidiAudioInputEvent,
    BidiConnectionCloseEvent,
    BidiConnectionRestartEvent,
    BidiConnectionStartEvent,
    BidiErrorEvent,
    BidiInterruptionEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiTextInputEvent,
    BidiToolCancellationEvent,
    BidiTranscriptStreamEvent,
    CloseReason,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from ..models._base import BidiConnection, BidiModel, SendableEvent
from ..types import Message, ToolResult, ToolUse
from . import _hooks as hooks
from ._history import copy_json
from ._slots import OrderedSlots
from ._stats import AgentStatistics
from ._tools import AgentTool, ToolArgumentError, ToolContext, error_result, to_tool_result

if TYPE_CHECKING:
    from ._agent import BidiAgent

__all__ = ["AgentLoop", "AgentSettings", "InputBuffer"]

logger = logging.getLogger(__name__)

AgentOutput = BidiOutputEvent | ToolResultEvent
"""What ``BidiAgent.receive()`` yields."""

_REPLY_WAIT_S = 5.0
"""How long a proactive restart waits for a reply that is due before restarting anyway."""


def _positive(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not value > 0:
        raise BidiConfigurationError(f"{attribute.name} must be > 0, got {value!r}")


def _non_negative(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not value >= 0:
        raise BidiConfigurationError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen(kw_only=True)
class AgentSettings:
    """The agent's tunables (``BidiAgent(..., **settings)``).

    Attributes:
        tool_concurrency: Most tool calls running at once (None: no limit).
        tool_timeout_s: Default time limit of a tool call (None: none; a tool's own
            ``timeout_s`` wins).
        restart_margin_s: Restart proactively, at the next turn boundary, once the
            connection's deadline is this close (None: only restart when it ends).
        deadline_grace_s: The agent's cancel scope around a connection ends this long
            after the connection's own deadline, in case the provider misses it.
        max_restart_attempts: Consecutive failed connection attempts before giving up.
            A connection that opens but ends with an error before it delivered any event
            or lived ``restart_backoff_max_s`` counts as a failed attempt.
        restart_backoff_s: Wait before the second attempt; doubles after each failure.
        restart_backoff_max_s: Longest wait between attempts.
        gap_audio_buffer_s: Audio kept for the next connection while reconnecting; the
            oldest is dropped (and counted) beyond this.
        gap_max_events: Non-audio input events kept while reconnecting; ``send`` waits
            for room beyond this.
        max_buffered_events: Output events buffered for ``receive()`` (backpressure).
    """

    tool_concurrency: int | None = attrs.field(default=None, validator=_positive)
    tool_timeout_s: float | None = attrs.field(default=None, validator=_positive)
    restart_margin_s: float | None = attrs.field(default=30.0, validator=_non_negative)
    deadline_grace_s: float = attrs.field(default=5.0, validator=_non_negative)
    max_restart_attempts: int = attrs.field(default=5, validator=_non_negative)
    restart_backoff_s: float = attrs.field(default=0.5, validator=_non_negative)
    restart_backoff_max_s: float = attrs.field(default=8.0, validator=_non_negative)
    gap_audio_buffer_s: float = attrs.field(default=5.0, validator=_non_negative)
    gap_max_events: int = attrs.field(default=256, validator=_positive)
    max_buffered_events: int = attrs.field(default=64, validator=_positive)

    @classmethod
    def from_kwargs(cls, settings: dict[str, Any]) -> AgentSettings:
        """Build settings from keyword arguments, naming any unknown one.

        Raises:
            BidiConfigurationError: An unknown setting or a bad value.
        """
        known = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise BidiConfigurationError(
                f"unknown BidiAgent setting(s) {unknown!r} (known: {', '.join(sorted(known))})"
            )
        return cls(**settings)

    def backoff(self, failures: int) -> float:
        """Seconds to wait before the attempt after ``failures`` consecutive failures."""
        return float(min(self.restart_backoff_s * 2 ** (failures - 1), self.restart_backoff_max_s))


def audio_ms(event: BidiAudioInputEvent) -> float:
    """Duration of an audio input event in ms (16-bit samples; 0 for undecodable audio)."""
    text = event.audio
    padding = len(text) - len(text.rstrip("="))
    size = len(text) * 3 // 4 - padding
    if event.format not in ("pcm", "wav"):
        try:
            size = len(base64.b64decode(text, validate=False))
        except (binascii.Error, ValueError):
            return 0.0
    return size / (2 * event.channels * event.sample_rate) * 1000.0


class InputBuffer:
    """Input waiting for the next connection, in order.

    Audio is bounded in milliseconds: putting audio beyond the bound drops the oldest
    audio (counted in ``dropped_audio_events`` / ``dropped_audio_ms``). Other events are
    bounded in number; :meth:`wait_room` waits until one more fits.

    Args:
        max_audio_ms: Audio kept at most.
        max_events: Non-audio events kept at most.
    """

    def __init__(self, max_audio_ms: float, max_events: int) -> None:
        self._items: deque[tuple[SendableEvent, float]] = deque()
        self._max_audio_ms = max_audio_ms
        self._max_events = max_events
        self._non_audio = 0
        self.audio_ms = 0.0
        self.dropped_audio_events = 0
        self.dropped_audio_ms = 0.0
        self._room = trio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def has_room(self, event: SendableEvent) -> bool:
        """True when ``event`` can be put without waiting."""
        return isinstance(event, BidiAudioInputEvent) or self._non_audio < self._max_events

    async def wait_room(self) -> None:
        """Wait until an item leaves the buffer (or :meth:`wake` is called)."""
        await self._room.wait()

    def wake(self) -> None:
        """Wake every :meth:`wait_room` waiter (the agent stopped)."""
        self._room.set()
        self._room = trio.Event()

    def put(self, event: SendableEvent) -> None:
        """Append an event (audio may push out the oldest audio)."""
        if not isinstance(event, BidiAudioInputEvent):
            self._items.append((event, 0.0))
            self._non_audio += 1
            return
        duration = audio_ms(event)
        if duration > self._max_audio_ms:
            self._count_drop(duration)
            return
        while self.audio_ms + duration > self._max_audio_ms:
            self._drop_oldest_audio()
        self._items.append((event, duration))
        self.audio_ms += duration

    def _count_drop(self, duration: float) -> None:
        self.dropped_audio_events += 1
        self.dropped_audio_ms += duration
        logger.debug(
            "dropped_audio_events=<%d> | restart buffer full, dropped the oldest audio",
            self.dropped_audio_events,
        )

    def _drop_oldest_audio(self) -> None:
        for index, (item, duration) in enumerate(self._items):
            if isinstance(item, BidiAudioInputEvent):
                del self._items[index]
                self.audio_ms -= duration
                self._count_drop(duration)
                return
        self.audio_ms = 0.0  # pragma: no cover - accounting guard

    def peek(self) -> SendableEvent:
        """Return the oldest event."""
        return self._items[0][0]

    def pop(self) -> None:
        """Remove the oldest event."""
        event, duration = self._items.popleft()
        if isinstance(event, BidiAudioInputEvent):
            self.audio_ms -= duration
        else:
            self._non_audio -= 1
        self._room.set()
        self._room = trio.Event()


@attrs.define(eq=False)
class _ToolCall:
    tool_use: ToolUse
    known_to: int
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    cancellable: bool = False
    cancel_reason: str | None = None
    send_result: bool = True
    turn: trio.Event | None = None  # its place in line for a tool slot (with a limit)


@attrs.frozen
class _ConnectFailed:
    error: BidiError


@attrs.frozen
class _Lost:
    error: BidiModelTimeoutError
    productive: bool


@attrs.frozen
class _Stopped:
    connection_id: str
    reason: CloseReason


_Outcome = _ConnectFailed | _Lost | _Stopped


@attrs.frozen
class _GaveUp:
    """Why the agent stopped reconnecting, kept as data (see :meth:`error`)."""

    message: str
    cause: BaseException | None

    def error(self) -> BidiConnectionError:
        """Return a new error for this failure, chained to its cause."""
        error = BidiConnectionError(self.message)
        error.__cause__ = self.cause
        return error


def _as_timeout(error: BaseException, connection_id: str) -> BidiModelTimeoutError:
    if isinstance(error, BidiModelTimeoutError):
        return error
    timeout = BidiModelTimeoutError(f"connection {connection_id} was lost: {error}")
    timeout.__cause__ = error
    return timeout


class AgentLoop:
    """Runs the agent's connections; see the module docstring.

    Args:
        agent: The agent (history, hooks, tools, invocation state).
        model: The model to connect to.
        settings: The agent's settings.
    """

    def __init__(self, agent: BidiAgent, model: BidiModel, settings: AgentSettings) -> None:
        self._agent = agent
        self._model = model
        self._settings = settings
        self._out_tx, self.out_rx = trio.open_memory_channel[AgentOutput](
            settings.max_buffered_events
        )
        self._buffer = InputBuffer(settings.gap_audio_buffer_s * 1000.0, settings.gap_max_events)
        self._send_lock = PromptLock()
        self._conn: BidiConnection | None = None  # open, flushed, taking input
        self._current: BidiConnection | None = None  # open (maybe still flushing)
        self._resume_with: dict[str, Any] = {}  # the last connection's restart_config()
        self._last_connection_id = ""
        self._conn_changed = trio.Event()
        self._conn_scope: trio.CancelScope | None = None
        self._opened_at: float | None = None
        self._generation = 0
        self._calls: dict[str, _ToolCall] = {}
        self._seen_tool_ids: set[str] = set()
        self._slots: OrderedSlots | None = (
            OrderedSlots(settings.tool_concurrency) if settings.tool_concurrency else None
        )
        self._tool_nursery: trio.Nursery | None = None
        self._stop_reason: CloseReason | None = None
        self._ended = False
        self._gave_up: _GaveUp | None = None
        self._response_id: str | None = None
        self._user_speaking = False
        self._awaiting_since: float | None = None
        self._connections_opened = 0
        self._restarts = 0
        self._failed_attempts = 0
        self._tool_calls_total = 0
        self._tool_calls_cancelled = 0

    # ------------------------------------------------------------------ public

    @property
    def ended(self) -> bool:
        """True once the loop finished (stopped, gave up, or cancelled)."""
        return self._ended

    def terminal_error(self) -> BidiError | None:
        """A new error saying why the agent gave up (None: it did not), chained to the cause.

        A fresh exception each call: raising one stored object again and again would grow
        its traceback with every raise.
        """
        return None if self._gave_up is None else self._gave_up.error()

    @property
    def current_connection(self) -> BidiConnection | None:
        """The open connection, if any."""
        return self._current

    def statistics(self) -> AgentStatistics:
        """Return a snapshot of the counters."""
        opened_at = self._opened_at
        return AgentStatistics(
            connections_opened=self._connections_opened,
            restarts=self._restarts,
            failed_connection_attempts=self._failed_attempts,
            connected=self._conn is not None,
            connection_age_s=None if opened_at is None else trio.current_time() - opened_at,
            buffered_input_events=len(self._buffer),
            buffered_audio_ms=self._buffer.audio_ms,
            dropped_audio_events=self._buffer.dropped_audio_events,
            dropped_audio_ms=self._buffer.dropped_audio_ms,
            tool_calls_running=len(self._calls),
            tool_calls_total=self._tool_calls_total,
            tool_calls_cancelled=self._tool_calls_cancelled,
        )

    def request_stop(self, reason: CloseReason) -> None:
        """End the conversation after the current event (a tool asked to stop)."""
        if self._stop_reason is None:
            self._stop_reason = reason
        if self._conn_scope is not None:
            self._conn_scope.cancel()
        self._set_conn(None)

    async def send_input(self, event: SendableEvent) -> None:
        """Send an event to the current connection, or buffer it for the next one.

        Raises:
            BidiStateError: The conversation ended.
            BidiError: The terminal error, when the agent gave up reconnecting.
        """
        self._check_running()
        while self._conn is None and not self._buffer.has_room(event):
            await self._buffer.wait_room()
            self._check_running()
        await self._send_lock.acquire()
        try:
            self._check_running()
            conn = self._conn
            if conn is not None:
                try:
                    await conn.send(event)
                except (BidiConnectionError, BidiModelTimeoutError, BidiStateError) as exc:
                    logger.debug(
                        "connection_id=<%s>, error=<%s> | send failed, buffering for the next "
                        "connection",
                        conn.connection_id,
                        exc,
                    )
                    if self._conn is conn:
                        self._set_conn(None)
                else:
                    await self._record_input(event)
                    return
            self._buffer.put(event)
            # Buffering does not wait for anything: yield here, so an application that
            # sends in a loop while the agent reconnects lets the reconnection run.
            await trio.lowlevel.checkpoint()
        finally:
            self._send_lock.release()

    async def _record_input(self, event: SendableEvent) -> None:
        # Text goes to the history once a connection took it: text still waiting in the
        # restart buffer is flushed to the next connection, not replayed with the history.
        if isinstance(event, BidiTextInputEvent):
            self._expect_reply()
            await self.add_messages({"role": event.role, "content": [{"text": event.text}]})

    async def add_messages(self, *messages: Message) -> None:
        """Append messages to the history together, then fire the message-added hooks."""
        self._agent.messages.extend(messages)
        for message in messages:
            await self._agent.hooks.invoke(
                hooks.BidiMessageAddedEvent(agent=self._agent, message=message)
            )

    async def run(
        self,
        tool_nursery: trio.Nursery,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run connections until stopped; ``task_status.started()`` once the first is open.

        Raises:
            BidiConnectionError: The first connection could not be opened at all.
        """
        self._tool_nursery = tool_nursery
        try:
            await self._connect_loop(task_status)
        finally:
            self._ended = True
            self._set_conn(None)
            self._buffer.wake()
            self._out_tx.close()

    # ------------------------------------------------------------------ connections

    def _check_running(self) -> None:
        if self._gave_up is not None:
            raise self._gave_up.error()
        if self._ended or self._stop_reason is not None:
            raise BidiStateError("the conversation has ended; the agent takes no more input")

    def _set_conn(self, conn: BidiConnection | None) -> None:
        self._conn = conn
        self._conn_changed.set()
        self._conn_changed = trio.Event()

    async def _emit(self, event: AgentOutput) -> None:
        try:
            await send_promptly(self._out_tx, event)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            logger.debug("event=<%s> | agent stopped, event not delivered", event.type)

    async def _connect_loop(self, task_status: trio.TaskStatus[None]) -> None:
        reason: BidiModelTimeoutError | None = None  # why we are reconnecting
        failures = 0
        last_error: BidiError | None = None
        started = False
        while self._stop_reason is None:
            if failures:
                if failures >= self._settings.max_restart_attempts:
                    await self._give_up(last_error, failures, started)
                    return
                await trio.sleep(self._settings.backoff(failures))

            async def on_open(restarting: bool = reason is not None) -> None:
                nonlocal started
                if not started:
                    started = True
                    task_status.started()
                if restarting:
                    self._restarts += 1
                    await self._agent.hooks.invoke(
                        hooks.BidiAfterConnectionRestartEvent(agent=self._agent)
                    )

            # The provider's own word (in the error) wins over what the connection offered.
            restart_config = (
                {**self._resume_with, **reason.restart_config} if reason is not None else {}
            )
            outcome = await self._one_connection(restart_config, on_open)
            if isinstance(outcome, _ConnectFailed):
                if not started:
                    # The first connection fails fast: a wrong key or URL should not take
                    # a round of backoff to surface.
                    raise outcome.error
                failures += 1
                self._failed_attempts += 1
                last_error = outcome.error
                logger.warning(
                    "attempt=<%d>, error=<%s> | connecting to the model failed",
                    failures,
                    outcome.error,
                )
                continue
            if isinstance(outcome, _Stopped):
                await self._finish_stop(outcome)
                return
            # The connection was open and is gone: restart.
            failures = 0 if outcome.productive else failures + 1
            last_error = outcome.error
            reason = outcome.error
            logger.info("error=<%s> | restarting the model connection", outcome.error)
            await self._emit(BidiConnectionRestartEvent(outcome.error))
            await self._agent.hooks.invoke(
                hooks.BidiBeforeConnectionRestartEvent(agent=self._agent, timeout_error=reason)
            )
        await self._finish_stop(_Stopped(self._last_connection_id, self._stop_reason))

    async def _give_up(self, last_error: BidiError | None, attempts: int, started: bool) -> None:
        gave_up = _GaveUp(
            f"could not connect to model {self._model.model_id!r} after {attempts} attempts; "
            f"last error: {last_error}",
            last_error,
        )
        logger.error(
            "attempts=<%d>, error=<%s> | giving up on the model connection", attempts, last_error
        )
        if not started:
            raise gave_up.error()
        self._gave_up = gave_up
        error = gave_up.error()
        await self._emit(BidiErrorEvent(error, {"attempts": attempts}))
        await self._agent.hooks.invoke(
            hooks.BidiAfterConnectionRestartEvent(agent=self._agent, exception=error)
        )

    async def _finish_stop(self, stopped: _Stopped) -> None:
        for call in list(self._calls.values()):
            self._cancel_call(call, "the conversation ended", send_result=False)
        await self._emit(BidiConnectionCloseEvent(stopped.connection_id, stopped.reason))

    def _replay_messages(self, generation: int) -> list[Message]:
        messages: list[Message] = copy_json(self._agent.messages)
        for call in self._calls.values():
            call.known_to = generation
            messages.append({"role": "assistant", "content": [{"toolUse": call.tool_use}]})
        return messages

    async def _one_connection(
        self, restart_config: dict[str, Any], on_open: Callable[[], Any]
    ) -> _Outcome:
        self._generation += 1
        generation = self._generation
        messages = self._replay_messages(generation)
        opened = False
        productive = False
        connection_id = ""
        try:
            async with self._model.connect(
                system_prompt=self._agent.system_prompt,
                tools=self._agent.tool_registry.specs,
                messages=messages,
                **restart_config,
            ) as conn:
                opened = True
                connection_id = self._last_connection_id = conn.connection_id
                self._current = conn
                self._opened_at = trio.current_time()
                self._connections_opened += 1
                self._response_id = None
                self._user_speaking = False
                self._awaiting_since = None
                logger.debug(
                    "connection_id=<%s>, replayed_messages=<%d> | connection open",
                    connection_id,
                    len(messages),
                )
                try:
                    await self._flush(conn)
                except BidiError as exc:
                    return _Lost(_as_timeout(exc, connection_id), productive=False)
                await on_open()
                pump_outcome: _Lost | None = None
                with trio.CancelScope() as scope:
                    self._conn_scope = scope
                    if self._stop_reason is not None:
                        scope.cancel()
                    try:
                        pump_outcome = await self._pump(conn, scope)
                    finally:
                        self._conn_scope = None
                        self._set_conn(None)
                if pump_outcome is not None:
                    return pump_outcome
                if self._stop_reason is not None:
                    return _Stopped(connection_id, self._stop_reason)
                return _Lost(
                    BidiModelTimeoutError(f"connection {connection_id} passed its deadline"),
                    productive=True,
                )
        except BidiError as exc:
            if not opened:
                return _ConnectFailed(exc)
            return _Lost(_as_timeout(exc, connection_id), productive)
        finally:
            if self._current is not None:
                self._resume_with = self._current.restart_config()
            self._current = None
            self._opened_at = None
            self._set_conn(None)

    async def _flush(self, conn: BidiConnection) -> None:
        async with self._send_lock:
            while len(self._buffer):
                event = self._buffer.peek()
                try:
                    await conn.send(event)
                except (BidiConnectionError, BidiModelTimeoutError, BidiStateError):
                    raise  # the connection is gone: the event stays for the next one
                except BidiError as exc:
                    # The provider rejects this input itself (a wrong audio format...):
                    # report it rather than let it block every connection after this one.
                    self._buffer.pop()
                    logger.warning(
                        "event=<%s>, error=<%s> | buffered input rejected by the new connection",
                        event.type,
                        exc,
                    )
                    await self._emit(BidiErrorEvent(exc, {"rejected_input": event.type}))
                    continue
                self._buffer.pop()
                await self._record_input(event)
            self._set_conn(conn)

    def _lived_long(self, opened_at: float) -> bool:
        # A connection that carried no event but stayed up a while was not a failed
        # attempt; one that dies at once (a provider accepting and dropping) is.
        return trio.current_time() - opened_at >= self._settings.restart_backoff_max_s

    def _turn_boundary_at(self) -> float:
        """When the conversation is (or will be) at a turn boundary: -inf now, inf unknown.

        Not while the model answers or the user speaks, and not while a reply is due
        (after the user's final transcript, a text input or a tool result) unless it
        has not started within ``_REPLY_WAIT_S``: restarting then would lose the reply.
        """
        if self._response_id is not None or self._user_speaking:
            return math.inf
        if self._awaiting_since is None:
            return -math.inf
        return self._awaiting_since + _REPLY_WAIT_S

    def _expect_reply(self) -> None:
        self._awaiting_since = trio.current_time()

    async def _pump(self, conn: BidiConnection, scope: trio.CancelScope) -> _Lost | None:
        connection_id = conn.connection_id
        events = conn.receive().__aiter__()
        margin = self._settings.restart_margin_s
        grace = self._settings.deadline_grace_s
        opened_at = trio.current_time()
        proactive_due = False
        productive = False
        expired_seen_at: float | None = None
        while True:
            deadline = conn.deadline
            now = trio.current_time()
            if deadline <= now:
                # The connection ended itself (``expire_now`` sets -inf): give it the
                # grace period from now to report why (its restart_config) before the
                # agent's own scope cuts it.
                if expired_seen_at is None:
                    expired_seen_at = now
                cut_at = expired_seen_at + grace
            else:
                cut_at = deadline + grace
            if scope.deadline != cut_at:  # setting it costs even when it does not change
                scope.deadline = cut_at
            boundary_at = self._turn_boundary_at() if proactive_due else math.inf
            if boundary_at <= now:
                logger.info(
                    "connection_id=<%s> | restarting at a turn boundary before the time limit",
                    connection_id,
                )
                return _Lost(
                    BidiModelTimeoutError(
                        f"connection {connection_id} restarted before its time limit"
                    ),
                    productive=True,
                )
            wake_at = boundary_at  # a reply that is due but late
            if margin is not None and not proactive_due and deadline - margin > opened_at:
                wake_at = deadline - margin
            # A cancel scope per event costs; open one only when there is a wake-up to set.
            got: BidiOutputEvent | _Lost | None = None
            if wake_at == math.inf:
                got = await self._next_event(events, connection_id, opened_at, productive)
            else:
                with trio.move_on_at(wake_at):
                    got = await self._next_event(events, connection_id, opened_at, productive)
            if got is None:  # woken: the deadline is near, or a due reply is late
                proactive_due = True
                continue
            if isinstance(got, _Lost):
                return got
            event = got
            if not isinstance(event, BidiConnectionStartEvent):
                productive = True
            await self._handle(event)

    async def _next_event(
        self,
        events: AsyncIterator[BidiOutputEvent],
        connection_id: str,
        opened_at: float,
        productive: bool,
    ) -> BidiOutputEvent | _Lost:
        try:
            return await events.__anext__()
        except StopAsyncIteration:
            return _Lost(
                BidiModelTimeoutError(f"connection {connection_id} ended unexpectedly"),
                productive or self._lived_long(opened_at),
            )
        except BidiModelTimeoutError as exc:
            # The provider's time limit is the normal end of a healthy connection.
            return _Lost(exc, productive=True)
        except BidiError as exc:
            return _Lost(_as_timeout(exc, connection_id), productive or self._lived_long(opened_at))

    # ------------------------------------------------------------------ events

    async def _handle(self, event: BidiOutputEvent) -> None:
        await self._emit(event)
        if isinstance(event, BidiResponseStartEvent):
            self._response_id = event.response_id
            self._user_speaking = False
            self._awaiting_since = None
        elif isinstance(event, BidiResponseCompleteEvent):
            self._response_id = None
        elif isinstance(event, BidiTranscriptStreamEvent):
            if event.role == "user":
                self._user_speaking = not event.is_final
                if event.is_final:
                    self._expect_reply()
            if event.is_final:
                text = event.current_transcript or event.text
                if text:
                    await self.add_messages({"role": event.role, "content": [{"text": text}]})
        elif isinstance(event, BidiInterruptionEvent):
            interrupted = self._response_id
            if event.reason == "user_speech":
                self._user_speaking = True
            self._response_id = None
            await self._agent.hooks.invoke(
                hooks.BidiInterruptionHookEvent(
                    agent=self._agent, reason=event.reason, interrupted_response_id=interrupted
                )
            )
            for call in list(self._calls.values()):
                if call.cancellable:
                    self._cancel_call(call, "the user interrupted", send_result=True)
        elif isinstance(event, ToolUseStreamEvent):
            await self._start_tool(event)
        elif isinstance(event, BidiToolCancellationEvent):
            for tool_use_id in event.tool_use_ids:
                withdrawn = self._calls.get(tool_use_id)
                if withdrawn is not None:
                    self._cancel_call(withdrawn, "the model withdrew the call", send_result=False)

    def _cancel_call(self, call: _ToolCall, reason: str, *, send_result: bool) -> None:
        if call.cancel_reason is None:
            call.cancel_reason = reason
            call.send_result = send_result
        call.scope.cancel()

    async def _start_tool(self, event: ToolUseStreamEvent) -> None:
        current = event.current_tool_use
        tool_use_id = current.get("toolUseId")
        name = current.get("name")
        if not isinstance(tool_use_id, str) or not isinstance(name, str):
            logger.warning("tool_use=<%s> | tool use without id or name", current)
            await self._emit(
                BidiErrorEvent(
                    BidiProtocolError(
                        "the model asked for a tool call without a toolUseId or name",
                        raw=current,
                    ),
                    {"current_tool_use": current},
                )
            )
            return
        if tool_use_id in self._seen_tool_ids:
            logger.debug("tool_use_id=<%s> | repeated tool use event, already handled", tool_use_id)
            return
        self._seen_tool_ids.add(tool_use_id)
        tool_input = current.get("input", {})
        if isinstance(tool_input, str):
            # Arguments as a JSON string: keep the parsed form (the history holds it);
            # unparsable text stays a string and becomes an error result in _execute.
            with contextlib.suppress(json.JSONDecodeError):
                tool_input = json.loads(tool_input) if tool_input.strip() else {}
        tool_use = ToolUse(toolUseId=tool_use_id, name=name, input=tool_input)
        selected = self._agent.tool_registry.get(name)
        call = _ToolCall(
            tool_use,
            known_to=self._generation,
            cancellable=bool(selected is not None and selected.cancellable),
            turn=self._slots.reserve() if self._slots is not None else None,
        )
        self._calls[tool_use_id] = call
        self._tool_calls_total += 1
        assert self._tool_nursery is not None
        self._tool_nursery.start_soon(self._run_tool, call, name=f"tool {name} {tool_use_id}")

    async def _call_tool(self, call: _ToolCall) -> tuple[ToolResult, dict[str, Any]]:
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
            self._tool_calls_cancelled += 1
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

    def _release_slot(self, call: _ToolCall) -> None:
        # Idempotent: a call gives its slot (or its place in line) back exactly once.
        if call.turn is not None and self._slots is not None:
            self._slots.release(call.turn)
        call.turn = None

    async def _run_tool(self, call: _ToolCall) -> None:
        tool_use_id = call.tool_use["toolUseId"]
        recorded = False
        try:
            try:
                result, request_state = await self._call_tool(call)
            finally:
                self._release_slot(call)  # calls that ended before their turn came
            generation = call.known_to
            # Leave the running set and enter the history in one step (no checkpoint in
            # between), so a restart replays the call exactly once.
            del self._calls[tool_use_id]
            recorded = True
            await self.add_messages(
                {"role": "assistant", "content": [{"toolUse": call.tool_use}]},
                {"role": "user", "content": [{"toolResult": result}]},
            )
            result_event = ToolResultEvent(result)
            await self._emit(result_event)
            if call.send_result:
                await self._deliver(result_event, generation)
            if request_state.get("stop_event_loop"):
                logger.info("tool=<%s> | a tool ended the conversation", call.tool_use["name"])
                self.request_stop("user_request")
        finally:
            if not recorded:
                # The agent itself is being cancelled (it stopped): keep the call in the
                # history as cancelled rather than losing it. Hooks cannot run here.
                self._tool_calls_cancelled += 1
                self._agent.messages.extend(
                    [
                        {"role": "assistant", "content": [{"toolUse": call.tool_use}]},
                        {
                            "role": "user",
                            "content": [
                                {
                                    "toolResult": error_result(
                                        tool_use_id, "tool call cancelled: the agent stopped"
                                    )
                                }
                            ],
                        },
                    ]
                )
            self._calls.pop(tool_use_id, None)

    async def call_tool_directly(self, name: str, tool_input: Any, *, record: bool) -> ToolResult:
        """Run a tool outside the conversation (``agent.tool.<name>(...)``).

        The call goes through the tool hooks like a model's call; its use and result are
        appended to the history when ``record`` is true (the next connection sees them).
        """
        tool_use = ToolUse(
            toolUseId=f"tooluse_{uuid.uuid4().hex[:20]}", name=name, input=tool_input
        )
        call = _ToolCall(tool_use, known_to=self._generation)
        self._tool_calls_total += 1
        result, _request_state = await self._call_tool(call)
        if record:
            await self.add_messages(
                {"role": "assistant", "content": [{"toolUse": call.tool_use}]},
                {"role": "user", "content": [{"toolResult": result}]},
            )
        return result

    async def _execute(
        self, call: _ToolCall, selected: AgentTool, request_state: dict[str, Any]
    ) -> tuple[ToolResult, Exception | None]:
        tool_use = call.tool_use
        tool_use_id = tool_use["toolUseId"]
        name = tool_use["name"]
        tool_input = tool_use.get("input")
        if isinstance(tool_input, str):
            try:
                tool_input = json.loads(tool_input) if tool_input.strip() else {}
            except json.JSONDecodeError as exc:
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
                    with trio.move_on_after(math.inf if timeout is None else timeout) as timer:
                        value = await selected.invoke(tool_use, context)
                        result = to_tool_result(tool_use_id, value)
                finally:
                    self._release_slot(call)
                if timer.cancelled_caught:
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

    async def _deliver(self, event: ToolResultEvent, generation: int) -> None:
        """Send a tool result to the connection that knows the call, when it is open."""
        while not self._ended and self._generation == generation and self._stop_reason is None:
            conn = self._conn
            if conn is None:
                await self._conn_changed.wait()
                continue
            async with self._send_lock:
                if self._conn is not conn or self._generation != generation:
                    continue
                try:
                    await conn.send(event)
                    self._expect_reply()  # the model answers the result
                except (BidiConnectionError, BidiModelTimeoutError, BidiStateError) as exc:
                    logger.debug(
                        "tool_use_id=<%s>, error=<%s> | result not delivered; it is in the "
                        "history replayed to the next connection",
                        event.tool_result["toolUseId"],
                        exc,
                    )
                    if self._conn is conn:
                        self._set_conn(None)
                except BidiError as exc:
                    # The provider cannot take this result (content it rejects): tell the
                    # application instead of ending the conversation.
                    logger.warning(
                        "tool_use_id=<%s>, error=<%s> | the model connection rejected a tool "
                        "result",
                        event.tool_result["toolUseId"],
                        exc,
                    )
                    await self._emit(
                        BidiErrorEvent(exc, {"toolUseId": event.tool_result["toolUseId"]})
                    )
                return
        logger.debug(
            "tool_use_id=<%s> | result recorded in history for the next connection",
            event.tool_result["toolUseId"],
        )
