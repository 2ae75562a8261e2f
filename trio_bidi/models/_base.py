"""The model contract, and the connection machinery every provider shares.

A *model* (`BidiModel`) is configuration plus a ``connect`` method. ``connect`` is
an async context manager that opens one provider connection and yields a
`BidiConnection`::

    async with model.connect(system_prompt="Be brief.", tools=specs, messages=history) as conn:
        await conn.send(BidiTextInputEvent("hello"))
        async for event in conn.receive():
            ...

The contract every provider keeps (checked by
[`trio_bidi.testing.contract`][trio_bidi.testing.contract]):

- The first event ``receive()`` yields is a
  [`BidiConnectionStartEvent`][trio_bidi.events.BidiConnectionStartEvent].
- ``send`` takes input events and [`ToolResultEvent`][trio_bidi.events.ToolResultEvent].
  Sending before the connection is open or after it closed raises
  [`BidiStateError`][trio_bidi.errors.BidiStateError]; sending on a connection the peer
  broke raises [`BidiConnectionError`][trio_bidi.errors.BidiConnectionError].
- ``receive()`` ends normally after ``aclose()``. It raises
  [`BidiModelTimeoutError`][trio_bidi.errors.BidiModelTimeoutError] when the provider's
  time limit (the connection's ``deadline``, a cancel-scope deadline) is reached, and
  [`BidiConnectionError`][trio_bidi.errors.BidiConnectionError] when the peer closed or
  the transport broke.
- The time limit applies to ``send`` too: a send blocked on a peer that stopped reading
  raises [`BidiModelTimeoutError`][trio_bidi.errors.BidiModelTimeoutError] when it is reached.
- ``aclose()`` is idempotent. Leaving the ``async with`` on any path (normal, error,
  cancellation) closes the transport and leaves no task running.
- Trio's contract: every async method is a checkpoint, and a failure is reported by a
  new exception each time (chained to the stored one), never by re-raising one object.

`ConnectionBase` implements all of this once; a provider supplies the handshake, a
read loop that turns wire messages into events, a write path, and the transport's close.
"""

from __future__ import annotations

import abc
import copy
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol, TypeAlias, runtime_checkable

import trio

from .._util import PromptLock, open_nursery_unwrapped, receive_promptly, send_promptly
from ..errors import (
    BidiConnectionError,
    BidiError,
    BidiModelTimeoutError,
    BidiStateError,
)
from ..events import (
    BidiConnectionStartEvent,
    BidiInputEvent,
    BidiOutputEvent,
    ToolResultEvent,
)
from ..types import AudioConfig, Message, ToolSpec

__all__ = [
    "BidiConnection",
    "BidiModel",
    "ConnectionBase",
    "Emit",
    "SendableEvent",
    "fresh_error",
]

logger = logging.getLogger(__name__)

SendableEvent: TypeAlias = BidiInputEvent | ToolResultEvent
"""What a connection's ``send`` accepts."""

Emit: TypeAlias = Callable[[BidiOutputEvent], Awaitable[None]]
"""How a provider's read loop hands an event to the consumer (applies backpressure)."""


@runtime_checkable
class BidiConnection(Protocol):
    """One open connection to a provider; see the module docstring for the contract."""

    @property
    def connection_id(self) -> str:
        """Identifies this connection (also in its start event)."""
        ...

    @property
    def deadline(self) -> float:
        """When the provider's time limit ends the connection, on Trio's clock (inf: never)."""
        ...

    async def send(self, event: SendableEvent) -> None:
        """Send an input event or a tool result to the model."""
        ...

    def receive(self) -> AsyncIterator[BidiOutputEvent]:
        """Iterate over the model's output events."""
        ...

    async def report_playback(self, played_ms: int) -> None:
        """Tell the model how much of its current audio the user actually heard.

        Called after an interruption. Providers that keep the unheard part in their
        context (OpenAI) truncate it; others ignore the report.
        """
        ...

    def restart_config(self) -> dict[str, Any]:
        """What a new connection needs to continue this one: ``model.connect(**it)``.

        For a restart the caller decides on (before the time limit, after a lost
        connection). Empty when the provider has nothing to resume with, so the caller
        replays the history instead; Gemini returns its newest session handle.
        """
        ...

    async def aclose(self) -> None:
        """Close the connection; idempotent."""
        ...


@runtime_checkable
class BidiModel(Protocol):
    """A provider's model: configuration plus ``connect``."""

    @property
    def model_id(self) -> str:
        """The provider's model name."""
        ...

    @property
    def config(self) -> Mapping[str, Any]:
        """The resolved configuration; ``config["audio"]`` is an `AudioConfig`."""
        ...

    def connect(
        self,
        system_prompt: str | None = None,
        tools: Sequence[ToolSpec] | None = None,
        messages: Sequence[Message] | None = None,
        **restart_config: Any,
    ) -> AbstractAsyncContextManager[BidiConnection]:
        """Open a connection, replaying ``messages`` as history.

        Args:
            system_prompt: Instructions for the model.
            tools: Tools the model may call.
            messages: Conversation history to continue from.
            **restart_config: What a `BidiModelTimeoutError` carried (restarts).
        """
        ...


def audio_config_of(model: BidiModel) -> AudioConfig:
    """Return ``model.config["audio"]``, checked for the keys the IO layer needs.

    Raises:
        BidiStateError: The model's configuration has no usable audio entry.
    """
    audio = model.config.get("audio")
    if not isinstance(audio, Mapping) or not {"input_rate", "output_rate", "channels"} <= set(
        audio
    ):
        raise BidiStateError(
            f"model {model.model_id!r} has no audio configuration "
            "(config['audio'] needs input_rate, output_rate and channels)"
        )
    return audio  # type: ignore[return-value]


_NEW, _OPEN, _CLOSED = "new", "open", "closed"


def fresh_error(failure: BidiError) -> BidiError:
    """Return a new exception with the kind and data of ``failure``, to raise ``from failure``.

    A connection keeps how it failed as data and raises a new exception each time it
    reports the failure, chained to the original (``raise fresh_error(f) from f``). Raising
    the stored object again would add to its traceback at every call.

    Args:
        failure: The connection's failure (its class, message and attributes such as
            ``code``, ``reason`` or ``restart_config`` are kept).

    Returns:
        A new exception without traceback, cause or context.
    """
    try:
        fresh = copy.copy(failure)
    except Exception:  # a subclass whose constructor copy cannot call
        return BidiConnectionError(str(failure))
    fresh.__traceback__ = None
    fresh.__cause__ = None
    fresh.__context__ = None
    return fresh


class ConnectionBase(abc.ABC):
    """Lifecycle, event channel, deadline and write lock, shared by every provider.

    A subclass implements `_open` (transport + handshake), how it reads (see below),
    `_write` (send one input event) and `_close_transport`. `session` runs it::

        @asynccontextmanager
        async def connect(self, ...):
            async with MyConnection(...).session() as connection:
                yield connection

    Reading comes in one of two forms:

    - `_read_events` (a loop: read wire messages, ``await emit(event)``): one reader
      task owns the send side of a bounded memory channel and ``receive()`` reads the
      other side, so a slow consumer slows the reader (and the socket) instead of
      growing memory.
    - `_read_step` (read one wire message, return its events): ``receive()`` reads the
      transport itself, in the consumer's task, whenever nothing is buffered; each event
      reaches the consumer without a task switch. The reader task only stands in while
      nobody has called ``receive()`` for ``_STAND_IN_AFTER_S`` (so pings are answered
      and the end of a connection nobody reads is noticed), filling the channel.

    The reader task runs inside a cancel scope whose deadline is the connection's
    ``deadline``; when it expires the transport is closed (which ends a read in
    progress in any task) and ``receive()`` raises the error made by `_timeout_error`.

    Args:
        connection_id: Identifies the connection.
        model_id: The provider's model name (for the start event).
        time_limit_s: The provider's connection time limit, from the moment the
            connection opens (None or inf: no limit).
        max_buffered_events: Events buffered between the reader and the consumer.
    """

    def __init__(
        self,
        connection_id: str,
        model_id: str,
        *,
        time_limit_s: float | None = None,
        max_buffered_events: int = 256,
    ) -> None:
        self._connection_id = connection_id
        self._model_id = model_id
        self._time_limit_s = math.inf if time_limit_s is None else time_limit_s
        self._event_tx, self._event_rx = trio.open_memory_channel[BidiOutputEvent](
            max_buffered_events
        )
        self._state = _NEW
        self._write_lock = PromptLock()
        self._deadline_scope = trio.CancelScope()
        self._reader_scope = trio.CancelScope()
        self._failure: BidiError | None = None
        self._reader_done = trio.Event()
        self._nursery: trio.Nursery | None = None
        # Reading in steps: events of a step beyond the first, whether a task is in
        # `_read_step` now, and how many times a consumer asked for an event.
        self._reads_in_steps = type(self)._read_step is not ConnectionBase._read_step
        if not self._reads_in_steps and type(self)._read_events is ConnectionBase._read_events:
            raise TypeError(f"{type(self).__name__} must implement _read_step or _read_events")
        self._ready: deque[BidiOutputEvent] = deque()
        self._stepping = False
        self._asked = 0

    # ------------------------------------------------------------------ for subclasses

    @abc.abstractmethod
    async def _open(self) -> None:
        """Open the transport and complete the provider's handshake."""

    async def _read_events(self, emit: Emit) -> None:
        """Read the provider's messages until the transport ends, emitting events.

        Return when the peer closed cleanly; raise a `BidiError` (usually
        `BidiConnectionError`) when it broke. Implement this or `_read_step`; the
        default reads step by step.
        """
        while True:
            events = await self._read_step()
            if events is None:
                return
            for event in events:
                await emit(event)

    async def _read_step(self) -> Sequence[BidiOutputEvent] | None:
        """Read one wire message and return its events (possibly none).

        Implementing it lets ``receive()`` read in the consumer's task. Its only wait is
        the transport's read, which must be safe to cancel (a cancelled step consumes
        nothing); everything after the read is synchronous, so the events of a message
        are never lost to a cancellation. Work that has to wait (a reply to the server)
        goes to the connection's nursery (`_start_soon`).

        Returns:
            The message's events, or None when the transport ended cleanly (closed by
            us).

        Raises:
            BidiError: The peer broke the connection (usually `BidiConnectionError`).
        """
        raise TypeError(f"{type(self).__name__} reads with _read_events, not in steps")

    def _start_soon(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` in the connection's nursery; a `BidiError` it raises ends the connection."""
        nursery = self._nursery
        if nursery is None or self._state != _OPEN:
            return

        async def guarded() -> None:
            try:
                await work()
            except BidiError as exc:
                if self._failure is None:
                    self._failure = exc
                self._reader_scope.cancel()  # the reader task closes the channel
                await self._close_transport()

        nursery.start_soon(guarded)

    @abc.abstractmethod
    async def _write(self, event: SendableEvent) -> None:
        """Encode and send one event (called under the write lock, only while open)."""

    @abc.abstractmethod
    async def _close_transport(self) -> None:
        """Close the transport; must not raise and must be safe to call twice."""

    async def _start_background(self, nursery: trio.Nursery) -> None:  # noqa: B027 - optional
        """Start tasks the open connection needs beside its reader (default: none).

        They run in the connection's nursery and must end when the transport closes.
        """

    def _timeout_error(self) -> BidiModelTimeoutError:
        """Build the error ``receive()`` raises at the deadline (override to add restart data)."""
        return BidiModelTimeoutError(
            f"connection {self._connection_id} reached its time limit ({self._time_limit_s:g} s)"
        )

    def _start_event(self) -> BidiConnectionStartEvent:
        return BidiConnectionStartEvent(self._connection_id, self._model_id)

    # ------------------------------------------------------------------ public surface

    @property
    def connection_id(self) -> str:
        """Identifies this connection."""
        return self._connection_id

    @property
    def deadline(self) -> float:
        """When the time limit ends the connection, on Trio's clock (inf: never)."""
        return self._deadline_scope.deadline

    @deadline.setter
    def deadline(self, value: float) -> None:
        self._deadline_scope.deadline = value

    @property
    def is_open(self) -> bool:
        """True between a successful open and close or failure."""
        return self._state == _OPEN and self._failure is None

    def expire_now(self, error: BidiModelTimeoutError | None = None) -> None:
        """End the connection as if its time limit were reached now.

        Providers call it when the server warns it will cut the connection (Gemini's
        ``goAway``); ``receive()`` then raises ``error`` (default: `_timeout_error`).
        """
        if error is not None and self._failure is None:
            self._failure = error
        self._deadline_scope.deadline = -math.inf

    async def send(self, event: SendableEvent) -> None:
        """Send an input event or a tool result.

        Raises:
            BidiStateError: The connection is not open (not yet, or closed by you).
            BidiConnectionError: The peer closed the connection or the transport broke.
            BidiModelTimeoutError: The connection reached its time limit.
        """
        if self._state != _OPEN:
            raise BidiStateError(
                f"connection {self._connection_id} is {self._state}; cannot send "
                f"{type(event).__name__}"
            )
        failure = self._failure
        if failure is not None:
            raise fresh_error(failure) from failure
        await self._write_lock.acquire()
        try:
            await self._write(event)
            if self._failure is not None and isinstance(self._failure, BidiModelTimeoutError):
                # The time limit closed the transport under this (blocked) send.
                raise fresh_error(self._failure) from self._failure
        except BidiConnectionError as exc:
            # The transport was closed under a blocked send because the connection had
            # already ended (its time limit, say): report that, not the close it caused.
            failure = self._failure
            if failure is not None and failure is not exc:
                raise fresh_error(failure) from exc
            raise
        finally:
            self._write_lock.release()

    async def report_playback(self, played_ms: int) -> None:
        """Ignore a playback report (a checkpoint); providers that truncate override this."""
        await trio.lowlevel.checkpoint()

    def restart_config(self) -> dict[str, Any]:
        """Return nothing to resume with; providers with session resumption override this."""
        return {}

    def receive(self) -> AsyncIterator[BidiOutputEvent]:
        """Iterate over output events (the first is the connection's start event).

        Raises:
            BidiStateError: The connection was never opened.
        """
        if self._state == _NEW:
            raise BidiStateError(f"connection {self._connection_id} is not open yet")
        return _SteppingIterator(self) if self._reads_in_steps else _EventIterator(self)

    async def aclose(self) -> None:
        """Close the connection: stop the reader and close the transport. Idempotent.

        A checkpoint on every call, also when the connection is already closed.
        """
        if self._state == _CLOSED:
            await trio.lowlevel.checkpoint()
            return
        self._state = _CLOSED
        self._reader_scope.cancel()
        with trio.CancelScope(shield=True):
            await self._close_transport()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[ConnectionBase]:
        """Open the connection, run its reader, and close it when the block ends."""
        if self._state != _NEW:
            raise BidiStateError(f"connection {self._connection_id} was already opened")
        try:
            async with open_nursery_unwrapped() as nursery:
                try:
                    await self._open()
                    self._state = _OPEN
                    self._deadline_scope.deadline = trio.current_time() + self._time_limit_s
                    self._event_tx.send_nowait(self._start_event())
                    self._nursery = nursery
                    await self._start_background(nursery)
                    nursery.start_soon(self._reader)
                    yield self
                finally:
                    await self.aclose()
        finally:
            self._state = _CLOSED

    # ------------------------------------------------------------------ internals

    async def _emit(self, event: BidiOutputEvent) -> None:
        # Waits (backpressure) only when the consumer fell a whole buffer behind.
        await send_promptly(self._event_tx, event)

    async def _reader(self) -> None:
        try:
            with self._reader_scope:
                with self._deadline_scope:
                    if self._reads_in_steps:
                        await self._stand_in()
                    else:
                        await self._read_events(self._emit)
                if self._deadline_scope.cancelled_caught:
                    if self._failure is None:
                        self._failure = self._timeout_error()
                    # A send blocked on a peer that stopped reading must not outlive the
                    # time limit: closing the transport wakes it (it then reports the
                    # timeout). The close is bounded by the transport's own close timeout.
                    await self._close_transport()
                elif self._failure is None and self._state == _OPEN:
                    self._failure = BidiConnectionError(
                        f"connection {self._connection_id} was closed by the provider"
                    )
        except BidiError as exc:
            if self._failure is None:
                self._failure = exc
        finally:
            self._event_tx.close()
            self._reader_done.set()
        if self._failure is not None:
            logger.debug(
                "connection_id=<%s>, error=<%s> | connection ended",
                self._connection_id,
                self._failure,
            )

    async def _stand_in(self) -> None:
        """Read into the channel while no consumer reads (connections read in steps).

        Sleeps while consumers keep asking (they read the transport themselves) and
        reads only once nobody asked for ``_STAND_IN_AFTER_S``; a consumer that comes
        while this task reads waits on the channel, so this task steps back only after
        a read that brought events.
        """
        tx = self._event_tx
        seen = -1
        while True:
            while self._asked != seen or self._stepping or self._ready:
                seen = self._asked
                await trio.sleep(_STAND_IN_AFTER_S)
            events: Sequence[BidiOutputEvent] | None = ()
            while not events:
                self._stepping = True
                try:
                    events = await self._read_step()
                finally:
                    self._stepping = False
                if events is None:
                    return
            for event in events:
                await send_promptly(tx, event)

    def _may_step(self) -> bool:
        """May the consumer read the transport itself now?"""
        return (
            not self._stepping
            and self._state == _OPEN
            and self._failure is None
            and self._deadline_scope.deadline > trio.current_time()
        )

    async def _step_for_consumer(self) -> BidiOutputEvent | None:
        """Read in the consumer's task until a message brings events.

        Returns:
            The first event (the rest wait in ``_ready``), or None when the consumer is
            to wait on the channel instead: another task reads, the deadline passed, or
            the connection ended (the reader task then closes the channel).
        """
        while self._may_step():
            self._stepping = True
            try:
                events = await self._read_step()
            except BidiError as exc:
                if self._failure is None:
                    self._failure = exc
                events = None
            finally:
                self._stepping = False
            if events is None:
                if self._failure is None and self._state == _OPEN:
                    self._failure = BidiConnectionError(
                        f"connection {self._connection_id} was closed by the provider"
                    )
                self._reader_scope.cancel()  # the reader task closes the channel
                return None
            if events:
                self._ready.extend(events[1:])
                return events[0]
        return None


#: How long nobody must have asked for an event before the reader task reads instead.
_STAND_IN_AFTER_S = 0.25

#: A receive that did not have to wait is a schedule point at least once in this many.
_RECEIVES_PER_SCHEDULE_POINT = 16


class _EventIterator:
    """Async iterator over a connection's events; raises the connection's failure at the end.

    Every step is a cancel point (a cancelled step takes no event), and a schedule point
    when it waits or at least once every ``_RECEIVES_PER_SCHEDULE_POINT`` steps, so a
    consumer loop over a full buffer cannot starve other tasks.
    """

    __slots__ = ("_connection", "_rx", "_steps")

    def __init__(self, connection: ConnectionBase) -> None:
        self._connection = connection
        self._rx = connection._event_rx
        self._steps = 0

    def __aiter__(self) -> _EventIterator:
        return self

    async def __anext__(self) -> BidiOutputEvent:
        self._steps += 1
        if self._steps >= _RECEIVES_PER_SCHEDULE_POINT:
            self._steps = 0
            await trio.lowlevel.checkpoint()
        return await self._from_channel()

    async def _from_channel(self) -> BidiOutputEvent:
        """The next event of the channel; at its end, the connection's failure or the end."""
        try:
            return await receive_promptly(self._rx)
        except (trio.EndOfChannel, trio.ClosedResourceError):
            pass
        failure = self._connection._failure
        if failure is not None and (
            self._connection._state != _CLOSED or isinstance(failure, BidiModelTimeoutError)
        ):
            raise fresh_error(failure) from failure
        raise StopAsyncIteration


class _SteppingIterator(_EventIterator):
    """Event iterator of a connection that reads in steps: reads in the consumer's task.

    Order: events of the consumer's last step (``_ready``), then the channel (what the
    reader task read while nobody asked), then a new step. Checkpoints as `_EventIterator`.
    """

    __slots__ = ()

    async def __anext__(self) -> BidiOutputEvent:
        connection = self._connection
        connection._asked += 1
        self._steps += 1
        if self._steps >= _RECEIVES_PER_SCHEDULE_POINT:
            self._steps = 0
            await trio.lowlevel.checkpoint()
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
        ready = connection._ready
        if ready:
            return ready.popleft()
        try:
            return self._rx.receive_nowait()
        except trio.WouldBlock:
            event = await connection._step_for_consumer()
            if event is not None:
                return event
        except (trio.EndOfChannel, trio.ClosedResourceError):
            pass
        return await self._from_channel()
