"""The agent's connection supervision, and ``receive()`` reading the connection in place.

Reading top to bottom: `AgentLoop.run` runs the connect loop
(`_connect_loop`: backoff, giving up, restart events), which opens one
connection at a time (`_one_connection`), flushes the input that waited
for it (`_flush`), then watches it (`_watch`) until it
ends: its time limit, a proactive restart at a turn boundary near that limit, a stop, or
the peer dropping it. The next connection gets the history so far; input arriving
meanwhile waits in a bounded `InputBuffer`.

The model's events are *not* pumped by a task of the agent: ``receive()`` reads the
connection's events in the caller's task (`AgentLoop.next_output`), handles each one
inline (history, hooks, interruptions, starting tool calls) and returns it, so each event
takes one task switch (the connection's reader to the application) and a slow consumer
slows the reading (backpressure). Events the agent makes itself (tool results, restarts,
errors, the close) wait in a small outbox that ``receive()`` empties first. A receiver
blocked on the connection is woken when the outbox gets an event or the connection
changes, and moves on to the new connection.

When nobody calls ``receive()`` the conversation goes on: tool calls run and deliver their
results, the time limit still restarts the connection, and once nobody has read for
``_IDLE_READ_S`` (or at once, when a send found the connection broken) the watcher reads
in the application's place into the outbox (bounded: backpressure holds), so a dropped
connection is noticed and replaced. A receiver that comes back takes over, in order.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from .._util import PromptLock
from ..errors import (
    BidiConnectionError,
    BidiError,
    BidiModelTimeoutError,
    BidiStateError,
)
from ..events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiConnectionCloseEvent,
    BidiConnectionRestartEvent,
    BidiConnectionStartEvent,
    BidiErrorEvent,
    BidiInterruptionEvent,
    BidiOutputEvent,
    BidiTextInputEvent,
    BidiToolCancellationEvent,
    BidiTranscriptStreamEvent,
    CloseReason,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from ..models._base import BidiConnection, BidiModel, SendableEvent
from . import _hooks as hooks
from ._history import add_messages, copy_json
from ._input import InputBuffer
from ._live import (
    ConnectFailed,
    GaveUp,
    LiveConnection,
    Lost,
    Outcome,
    Stopped,
    as_timeout,
)
from ._outbox import AgentOutput, Outbox
from ._settings import AgentSettings
from ._stats import AgentStatistics
from ._tool_loader import ReportError
from ._tool_runner import ToolRunner
from ._tools import ToolRegistry
from ._turns import TurnTracker

if TYPE_CHECKING:
    from ._agent import BidiAgent

__all__ = ["AgentLoop", "AgentOutput", "AgentSettings", "InputBuffer"]

logger = logging.getLogger(__name__)

_SCHEDULE_EVERY = 16
"""``receive()`` is a cancel point on every call and a schedule point on every this many."""

_IDLE_READ_S = 0.5
"""When nobody read the connection for this long, the watcher reads it in their place."""


class AgentLoop:
    """Runs the agent's connections and serves ``receive()``; see the module docstring.

    Args:
        agent: The agent (history, hooks, tools, invocation state).
        model: The model to connect to.
        settings: The agent's settings.
    """

    def __init__(self, agent: BidiAgent, model: BidiModel, settings: AgentSettings) -> None:
        self._agent = agent
        self._model = model
        self._settings = settings
        # Output the agent makes itself, waiting for receive().
        self._outbox = Outbox(settings.max_buffered_events)
        # Tasks that may emit an error event at any time (the tool-file watcher): while
        # there are any, a receiver blocked on the connection must be wakeable.
        self._reporters = 0
        self.tools = ToolRunner(
            agent,
            settings,
            emit=self._outbox.put_result,
            deliver=self._deliver_result,
            request_stop=self.request_stop,
        )
        self._turns = TurnTracker()
        # Input.
        self._buffer = InputBuffer(settings.gap_audio_buffer_s * 1000.0, settings.gap_max_events)
        self._send_lock = PromptLock()
        self._taking_input: BidiConnection | None = None  # open, flushed, taking input
        self._taking_input_changed = trio.Event()
        # Connections.
        self._generation = 0
        self._open_conn: BidiConnection | None = None  # open (maybe still flushing)
        self._opened_at: float | None = None
        self._live: LiveConnection | None = None  # open, flushed, read by receive()
        self._resume_with: dict[str, Any] = {}  # the last connection's restart_config()
        self._last_connection_id = ""
        self._stop_reason: CloseReason | None = None
        self._gave_up: GaveUp | None = None
        self._finished = False
        self._receive_calls = 0
        # Counters.
        self._connections_opened = 0
        self._restarts = 0
        self._failed_attempts = 0
        self._short_lived = 0

    # ------------------------------------------------------------------ public

    @property
    def ended(self) -> bool:
        """True once the loop finished (stopped, gave up, or cancelled)."""
        return self._finished

    def terminal_error(self) -> BidiError | None:
        """A new error saying why the agent gave up (None: it did not), chained to the cause.

        A fresh exception each call: raising one stored object again and again would grow
        its traceback with every raise.
        """
        return None if self._gave_up is None else self._gave_up.error()

    @property
    def current_connection(self) -> BidiConnection | None:
        """The open connection, if any."""
        return self._open_conn

    def statistics(self) -> AgentStatistics:
        """Return a snapshot of the counters."""
        opened_at = self._opened_at
        return AgentStatistics(
            connections_opened=self._connections_opened,
            restarts=self._restarts,
            failed_connection_attempts=self._failed_attempts,
            connected=self._taking_input is not None,
            connection_age_s=None if opened_at is None else trio.current_time() - opened_at,
            buffered_input_events=len(self._buffer),
            buffered_audio_ms=self._buffer.audio_ms,
            dropped_audio_events=self._buffer.dropped_audio_events,
            dropped_audio_ms=self._buffer.dropped_audio_ms,
            tool_calls_running=self.tools.running,
            tool_calls_total=self.tools.total,
            tool_calls_cancelled=self.tools.cancelled,
            tool_calls_timed_out=self.tools.timed_out,
            short_lived_connections=self._short_lived,
        )

    async def report_error(self, error: BaseException, details: dict[str, Any]) -> None:
        """Give the application an error event (for example a broken tool file)."""
        await self._outbox.put(BidiErrorEvent(error, details))

    def start_reporter(
        self,
        nursery: trio.Nursery,
        run: Callable[[ToolRegistry, ReportError], Awaitable[None]],
        registry: ToolRegistry,
    ) -> None:
        """Start ``run(registry, report_error)``, a task that may report errors at any time.

        Receivers blocked on the connection stay wakeable while it exists, so its error
        events reach the application at once.
        """
        self._reporters += 1
        nursery.start_soon(run, registry, self.report_error)

    def request_stop(self, reason: CloseReason) -> None:
        """End the conversation after the current event (a tool asked to stop)."""
        if self._stop_reason is None:
            self._stop_reason = reason
        if self._live is not None:
            self._live.wake_watcher()
        self._set_taking_input(None)

    # ------------------------------------------------------------------ supervision

    async def run(
        self,
        nursery: trio.Nursery,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run connections until stopped; ``task_status.started()`` once the first is open.

        Args:
            nursery: Where tool calls run (the agent's nursery).
            task_status: Told when the first connection is open.

        Raises:
            BidiConnectionError: The first connection could not be opened at all.
        """
        self.tools.attach(nursery)
        try:
            await self._connect_loop(task_status)
        finally:
            self._finished = True
            self._set_taking_input(None)
            self._buffer.wake()
            self._outbox.close()

    async def _connect_loop(self, task_status: trio.TaskStatus[None]) -> None:
        settings = self._settings
        reason: BidiModelTimeoutError | None = None  # why we are reconnecting
        failures = 0  # consecutive failed attempts
        short_lived = 0  # consecutive connections the peer dropped soon after opening
        last_error: BidiError | None = None
        started = False
        while self._stop_reason is None:
            if failures and failures >= settings.max_restart_attempts:
                await self._give_up(
                    f"could not connect to model {self._model.model_id!r} after {failures} "
                    f"attempts; last error: {last_error}",
                    last_error,
                    {"attempts": failures},
                    started,
                )
                return
            if short_lived >= settings.max_short_connections:
                await self._give_up(
                    f"the connection to model {self._model.model_id!r} ended within "
                    f"{settings.short_connection_s:g} s of opening {short_lived} times in a "
                    f"row; last error: {last_error}",
                    last_error,
                    {"short_lived_connections": short_lived},
                    started,
                )
                return
            if failures:
                await trio.sleep(settings.backoff(failures))
            elif short_lived > 1:
                await trio.sleep(settings.backoff(short_lived - 1))

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
            if isinstance(outcome, ConnectFailed):
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
            if isinstance(outcome, Stopped):
                await self._finish_stop(outcome)
                return
            # The connection was open and is gone: restart.
            if outcome.healthy:
                failures = short_lived = 0
            elif not outcome.delivered and outcome.lived_s < settings.restart_backoff_max_s:
                failures += 1  # accepted, then dropped before anything: a failed attempt
            elif outcome.lived_s < settings.short_connection_s:
                failures = 0
                short_lived += 1
                self._short_lived += 1
            else:
                failures = short_lived = 0
            last_error = outcome.error
            reason = outcome.error
            if short_lived >= settings.max_short_connections:
                continue  # no restart: the loop gives up
            logger.info("error=<%s> | restarting the model connection", outcome.error)
            await self._outbox.put(BidiConnectionRestartEvent(outcome.error))
            await self._agent.hooks.invoke(
                hooks.BidiBeforeConnectionRestartEvent(agent=self._agent, timeout_error=reason)
            )
        await self._finish_stop(Stopped(self._last_connection_id, self._stop_reason))

    async def _give_up(
        self, message: str, last_error: BidiError | None, details: dict[str, Any], started: bool
    ) -> None:
        gave_up = GaveUp(message, last_error)
        logger.error(
            "details=<%s>, error=<%s> | giving up on the model connection", details, last_error
        )
        if not started:
            raise gave_up.error()
        self._gave_up = gave_up
        error = gave_up.error()
        await self._outbox.put(BidiErrorEvent(error, details))
        await self._agent.hooks.invoke(
            hooks.BidiAfterConnectionRestartEvent(agent=self._agent, exception=error)
        )

    async def _finish_stop(self, stopped: Stopped) -> None:
        self.tools.cancel_all("the conversation ended")
        await self._outbox.put(BidiConnectionCloseEvent(stopped.connection_id, stopped.reason))

    async def _one_connection(
        self, restart_config: dict[str, Any], on_open: Callable[[], Any]
    ) -> Outcome:
        self._generation += 1
        generation = self._generation
        messages = copy_json(self._agent.messages) + self.tools.pending_uses(generation)
        opened_at = trio.current_time()
        opened = False
        connection_id = ""
        live: LiveConnection | None = None
        try:
            async with self._model.connect(
                system_prompt=self._agent.system_prompt,
                tools=self._agent.tool_registry.specs,
                messages=messages,
                **restart_config,
            ) as conn:
                opened = True
                connection_id = self._last_connection_id = conn.connection_id
                self._open_conn = conn
                self._opened_at = opened_at = trio.current_time()
                self._connections_opened += 1
                self._turns.reset()
                logger.debug(
                    "connection_id=<%s>, replayed_messages=<%d> | connection open",
                    connection_id,
                    len(messages),
                )
                try:
                    await self._flush(conn)
                except BidiError as exc:
                    return Lost(
                        as_timeout(exc, connection_id),
                        delivered=False,
                        lived_s=trio.current_time() - opened_at,
                        healthy=False,
                    )
                await on_open()
                live = LiveConnection(conn, conn.receive().__aiter__(), generation, opened_at)
                self._live = live
                self._outbox.wake()
                try:
                    return await self._watch(live)
                finally:
                    self._live = None
                    self._set_taking_input(None)
                    self._outbox.wake()
        except BidiError as exc:
            if not opened:
                return ConnectFailed(exc)
            return Lost(
                as_timeout(exc, connection_id),
                delivered=live is not None and live.delivered,
                lived_s=trio.current_time() - opened_at,
                healthy=False,
            )
        finally:
            if self._open_conn is not None:
                self._resume_with = self._open_conn.restart_config()
            self._open_conn = None
            self._opened_at = None
            self._set_taking_input(None)

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
                    await self._outbox.put(BidiErrorEvent(exc, {"rejected_input": event.type}))
                    continue
                self._buffer.pop()
                await self._record_input(event)
            self._set_taking_input(conn)

    async def _watch(self, live: LiveConnection) -> Lost | Stopped:
        """Wait until ``live`` ends; return how.

        Receivers report its end; the watcher itself ends it ``deadline_grace_s`` after
        its deadline (or after a send found it broken), and restarts it at a turn
        boundary once its deadline is ``restart_margin_s`` away.
        """
        conn = live.conn
        connection_id = conn.connection_id
        margin = self._settings.restart_margin_s
        grace = self._settings.deadline_grace_s
        expired_seen_at: float | None = None
        while True:
            if live.lost is not None:
                return live.lost
            if self._stop_reason is not None:
                return Stopped(connection_id, self._stop_reason)
            now = trio.current_time()
            deadline = conn.deadline
            if deadline <= now:
                # The connection ended itself (``expire_now`` sets -inf): give it the
                # grace period from now to report why (its restart_config).
                if expired_seen_at is None:
                    expired_seen_at = now
                cut_at = expired_seen_at + grace
            else:
                cut_at = deadline + grace
            broken_at = math.inf if live.send_failed_at is None else live.send_failed_at + grace
            wake_at = math.inf
            if live.proactive_due:
                wake_at = self._turns.boundary_at()  # a reply that is due but late
                if wake_at <= now:
                    logger.info(
                        "connection_id=<%s> | restarting at a turn boundary before the time limit",
                        connection_id,
                    )
                    return self._healthy_end(
                        live, f"connection {connection_id} restarted before its time limit"
                    )
            elif margin is not None and deadline - margin > live.opened_at:
                wake_at = deadline - margin
            if live.send_failed_at is not None and not live.drained and live.readers == 0:
                # A send found it broken and nobody reads: read what it still holds
                # (then its end) now, rather than cut it with unread events.
                live.drained = True
                with trio.move_on_at(min(cut_at, wake_at, broken_at)):
                    await self._stand_in(live)
                continue
            reads_before = live.reads
            idle_check_at = now + _IDLE_READ_S
            with trio.move_on_at(min(cut_at, wake_at, broken_at, idle_check_at)):
                await live.changed.wait()
            live.changed = trio.Event()
            now = trio.current_time()
            if live.readers == 0 and live.reads == reads_before and now >= idle_check_at:
                with trio.move_on_at(min(cut_at, wake_at, broken_at)):
                    await self._stand_in(live)  # nobody read for a while
                continue
            if live.lost is None and self._stop_reason is None:
                if now >= cut_at:
                    return self._healthy_end(
                        live, f"connection {connection_id} passed its deadline"
                    )
                if now >= broken_at:
                    # Nobody read the connection's end: the send's word is enough.
                    live.end(
                        BidiModelTimeoutError(f"connection {connection_id} broke while sending"),
                        healthy=False,
                    )
                    return live.lost  # type: ignore[return-value]
            if now >= wake_at:
                live.proactive_due = True

    @staticmethod
    def _healthy_end(live: LiveConnection, message: str) -> Lost:
        return Lost(
            BidiModelTimeoutError(message),
            live.delivered,
            trio.current_time() - live.opened_at,
            healthy=True,
        )

    # ------------------------------------------------------------------ events (receive)

    async def next_output(self) -> AgentOutput | None:
        """The next event for the application (None: the conversation is over).

        Runs in the caller's task: reads the outbox first, then the live connection,
        handling each of the model's events before returning it.
        """
        self._receive_calls += 1
        if self._receive_calls % _SCHEDULE_EVERY:
            await trio.lowlevel.checkpoint_if_cancelled()
        else:
            await trio.lowlevel.checkpoint()
        while True:
            event = self._outbox.take()
            if event is not None:
                return event
            live = self._live
            if live is None or live.lost is not None:
                if self._finished:
                    return None
                await self._outbox.wait()
                continue
            if live.stand_in is not None:
                # The watcher reads in our place: take over once its read is over (an
                # event it already has goes to the outbox first, keeping the order).
                live.stand_in.cancel()
                await live.stand_in_done.wait()
                continue
            got = await self._read(live)
            if got is not None:
                try:
                    await self._handle(live, got)
                except trio.Cancelled:
                    # The caller was cancelled while a hook ran: the event stays first in
                    # line (handled), so the next receive() returns it.
                    self._outbox.put_front(got)
                    raise
                return got

    async def _read(self, live: LiveConnection) -> BidiOutputEvent | None:
        """One event of ``live`` (None: woken for the outbox, or it ended).

        A cancel scope costs about as much as the rest of the hop, so the read is made
        wakeable only when needed: while a tool call may emit its result, or when the
        connection is not a [`ConnectionBase`][trio_bidi.models.ConnectionBase] (whose
        ``receive()`` ends when it closes; everything else the agent emits follows the
        connection's end).
        """
        connection_id = live.conn.connection_id
        scope: trio.CancelScope | None = None
        live.readers += 1
        live.reads += 1
        try:
            if live.ends_reads_on_close and not self.tools.busy and not self._reporters:
                return await live.events.__anext__()
            scope = trio.CancelScope()
            self._outbox.add_reader(scope)
            with scope:
                return await live.events.__anext__()
        except StopAsyncIteration:
            live.end(
                BidiModelTimeoutError(f"connection {connection_id} ended unexpectedly"),
                healthy=False,
            )
        except BidiModelTimeoutError as exc:
            # The provider's time limit is the normal end of a healthy connection.
            live.end(exc, healthy=True)
        except BidiError as exc:
            live.end(as_timeout(exc, connection_id), healthy=False)
        finally:
            live.readers -= 1
            if scope is not None:
                self._outbox.remove_reader(scope)
        return None

    async def _stand_in(self, live: LiveConnection) -> None:
        """Read ``live`` into the outbox while no receiver does, until one comes back.

        So a connection nobody reads still ends (and restarts) when it breaks, and its
        events keep their order. Stops when the outbox is full (backpressure) or a
        receiver takes over (it cancels the read and waits for this to finish).
        """
        live.stand_in_done = trio.Event()
        try:
            while not self._outbox.full:
                if live.lost is not None or self._stop_reason is not None:
                    return
                got: BidiOutputEvent | None = None
                live.stand_in = scope = trio.CancelScope()
                with scope:
                    got = await self._read(live)
                if got is None:
                    return
                self._outbox.put_nowait(got)
                await self._handle(live, got)
                if scope.cancel_called:
                    return
        finally:
            live.stand_in = None
            live.stand_in_done.set()

    async def _handle(self, live: LiveConnection, event: BidiOutputEvent) -> None:
        if type(event) is BidiAudioStreamEvent:  # the hot path: nothing to track
            live.delivered = True
            return
        if not isinstance(event, BidiConnectionStartEvent):
            live.delivered = True
        interrupted = self._turns.response_id
        self._turns.observe(event, trio.current_time())
        if live.proactive_due:
            live.wake_watcher()  # maybe a turn boundary: the watcher checks
        if isinstance(event, BidiTranscriptStreamEvent):
            if event.is_final:
                text = event.current_transcript or event.text
                if text:
                    await add_messages(
                        self._agent, {"role": event.role, "content": [{"text": text}]}
                    )
        elif isinstance(event, BidiInterruptionEvent):
            await self._agent.hooks.invoke(
                hooks.BidiInterruptionHookEvent(
                    agent=self._agent, reason=event.reason, interrupted_response_id=interrupted
                )
            )
            self.tools.interrupt()
        elif isinstance(event, ToolUseStreamEvent):
            error = self.tools.start(event, live.generation)
            if error is not None:
                self._outbox.put_nowait(error)
            else:
                # Let the tool's task start (and reach its thread) now rather than after
                # this task has read the rest of the server's message batch: the model
                # waits for the result. A schedule point, never a cancellation.
                await trio.lowlevel.cancel_shielded_checkpoint()
        elif isinstance(event, BidiToolCancellationEvent):
            self.tools.withdraw(list(event.tool_use_ids))

    # ------------------------------------------------------------------ input

    async def send_input(self, event: SendableEvent) -> None:
        """Send an event to the current connection, or buffer it for the next one.

        Raises:
            BidiStateError: The conversation ended.
            BidiConnectionError: The agent gave up reconnecting.
        """
        self._check_running()
        while self._taking_input is None and not self._buffer.has_room(event):
            await self._buffer.wait_room()
            self._check_running()
        await self._send_lock.acquire()
        try:
            self._check_running()
            conn = self._taking_input
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
                    self._send_failed(conn)
                else:
                    if type(event) is not BidiAudioInputEvent:  # audio is not history
                        await self._record_input(event)
                    return
            self._buffer.put(event)
            # Buffering does not wait for anything: yield here, so an application that
            # sends in a loop while the agent reconnects lets the reconnection run.
            await trio.lowlevel.checkpoint()
        finally:
            self._send_lock.release()

    def _check_running(self) -> None:
        if self._gave_up is not None:
            raise self._gave_up.error()
        if self._finished or self._stop_reason is not None:
            raise BidiStateError("the conversation has ended; the agent takes no more input")

    async def _record_input(self, event: SendableEvent) -> None:
        # Text goes to the history once a connection took it: text still waiting in the
        # restart buffer is flushed to the next connection, not replayed with the history.
        if isinstance(event, BidiTextInputEvent):
            self._turns.expect_reply(trio.current_time())
            await add_messages(self._agent, {"role": event.role, "content": [{"text": event.text}]})

    def _set_taking_input(self, conn: BidiConnection | None) -> None:
        self._taking_input = conn
        self._taking_input_changed.set()
        self._taking_input_changed = trio.Event()

    def _send_failed(self, conn: BidiConnection) -> None:
        # A broken connection takes no more input; the watcher replaces it once a
        # receiver read its last events, or after the grace period if nobody reads.
        if self._taking_input is conn:
            self._set_taking_input(None)
        live = self._live
        if live is not None and live.conn is conn and live.send_failed_at is None:
            live.send_failed_at = trio.current_time()
            live.wake_watcher()

    async def _deliver_result(self, event: ToolResultEvent, generation: int) -> None:
        """Send a tool result to the connection that knows the call, when it is open."""
        while not self._finished and self._generation == generation and self._stop_reason is None:
            conn = self._taking_input
            if conn is None:
                await self._taking_input_changed.wait()
                continue
            async with self._send_lock:
                if self._taking_input is not conn or self._generation != generation:
                    continue
                try:
                    await conn.send(event)
                    self._turns.expect_reply(trio.current_time())  # the model answers it
                except (BidiConnectionError, BidiModelTimeoutError, BidiStateError) as exc:
                    logger.debug(
                        "tool_use_id=<%s>, error=<%s> | result not delivered; it is in the "
                        "history replayed to the next connection",
                        event.tool_result["toolUseId"],
                        exc,
                    )
                    self._send_failed(conn)
                except BidiError as exc:
                    # The provider cannot take this result (content it rejects): tell the
                    # application instead of ending the conversation.
                    logger.warning(
                        "tool_use_id=<%s>, error=<%s> | the model connection rejected a tool "
                        "result",
                        event.tool_result["toolUseId"],
                        exc,
                    )
                    await self._outbox.put(
                        BidiErrorEvent(exc, {"toolUseId": event.tool_result["toolUseId"]})
                    )
                return
        logger.debug(
            "tool_use_id=<%s> | result recorded in history for the next connection",
            event.tool_result["toolUseId"],
        )
