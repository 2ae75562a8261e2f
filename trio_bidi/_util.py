"""Small helpers shared across the package."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NoReturn, TypeVar

import trio

__all__ = [
    "CALLS_PER_SCHEDULE_POINT",
    "PromptLock",
    "open_nursery_unwrapped",
    "raise_keeping_context",
    "receive_promptly",
    "send_promptly",
]

T = TypeVar("T")


def raise_keeping_context(exc: BaseException) -> NoReturn:
    """Raise ``exc`` again, keeping the ``__context__`` and ``__cause__`` it already had.

    A plain ``raise exc`` inside an ``except`` block would make the exception being
    handled (here: the group that carried ``exc``) its new ``__context__``.

    Args:
        exc: The exception to raise.

    Raises:
        BaseException: ``exc`` itself.
    """
    __tracebackhide__ = True
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context


def _unwrap(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Raise what a nursery's group stands for (see `open_nursery_unwrapped`)."""
    errors = group.exceptions
    interrupts = [e for e in errors if isinstance(e, (KeyboardInterrupt, SystemExit))]
    if interrupts and len(errors) > 1:
        # Ctrl-C (or an exit) must stay what it is; the other errors ride along as cause.
        first = interrupts[0]
        raise type(first)(*first.args) from group
    not_cancelled = [e for e in errors if not isinstance(e, trio.Cancelled)]
    if len(errors) == 1:
        raise_keeping_context(errors[0])
    if len(not_cancelled) == 1:
        # An enclosing scope's Cancelled beside one real error: the error wins, as in
        # Trio's own unwrapping (it leaves the cancelled scope all the same).
        raise_keeping_context(not_cancelled[0])
    if not not_cancelled:
        raise_keeping_context(errors[0])
    raise group


@asynccontextmanager
async def open_nursery_unwrapped() -> AsyncIterator[trio.Nursery]:
    """Open a nursery whose one error propagates as itself rather than in a group.

    Library context managers (a connection, an agent) should let the caller's own
    ``KeyError`` or a provider's ``BidiConnectionError`` through unchanged. The rules are
    Trio's own: one error is raised as itself, with the ``__context__``, ``__cause__`` and
    traceback it had; an enclosing scope's ``Cancelled`` next to one error gives way to
    that error; several errors stay in their group (nothing is swallowed); a
    ``KeyboardInterrupt`` or ``SystemExit`` among several errors is raised as a new one of
    its kind whose ``__cause__`` is the group, so Ctrl-C still ends the program as Ctrl-C.

    Yields:
        The nursery.
    """
    try:
        async with trio.open_nursery() as nursery:
            yield nursery
    except BaseExceptionGroup as group:
        _unwrap(group)


# The hot path (one audio frame after another, 50+ a second per session) pays for every
# pass through Trio's scheduler. The helpers below keep Trio's contract at a fraction of
# the cost of a full checkpoint: every call is a cancel point (it raises Cancelled,
# before doing anything, when its scope is cancelled), and every call that does not have
# to wait still passes through the scheduler once every CALLS_PER_SCHEDULE_POINT calls,
# so a loop over them cannot starve other tasks or hold off a deadline. The channel
# helpers share one counter: any run of that many calls from one task contains a
# schedule point (other tasks only add to it when this one has already yielded). Each
# PromptLock counts its own acquires.

#: A call that did not wait is a schedule point at least once in this many calls.
CALLS_PER_SCHEDULE_POINT = 16

_calls_since_schedule_point = 0


class PromptLock:
    """A fair task lock that costs next to nothing when it is free.

    ``trio.Lock`` checks ownership and registers breakers on every acquire, which shows
    on a path taken for every audio frame. This lock is a flag plus a parking lot that is
    used only under contention; release hands it straight to the first waiter (FIFO).
    Unlike ``trio.Lock`` it does not check that the releasing task is the owner.
    """

    __slots__ = ("_calls", "_held", "_waiters")

    def __init__(self) -> None:
        self._held = False
        self._waiters = trio.lowlevel.ParkingLot()
        # Its own count (not the module's): the locks and the WebSocket on one send
        # path then yield on the same call, so a writer task still gets whole batches.
        self._calls = 0

    def locked(self) -> bool:
        """Whether a task holds the lock."""
        return self._held

    async def acquire(self) -> None:
        """Take the lock: at once when free, else wait in line.

        Always a cancel point; a schedule point when it waits and otherwise at least
        once every `CALLS_PER_SCHEDULE_POINT` acquires of this lock.

        Raises:
            trio.Cancelled: The enclosing scope is cancelled (the lock is not taken).
        """
        self._calls += 1
        if self._calls >= CALLS_PER_SCHEDULE_POINT:
            self._calls = 0
            await trio.lowlevel.checkpoint()
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
        if not self._held:
            self._held = True
            return
        await self._waiters.park()  # release() handed the lock over, still held

    def release(self) -> None:
        """Give the lock to the first waiter, or free it.

        Raises:
            RuntimeError: The lock is not held.
        """
        if not self._held:
            raise RuntimeError("release of a PromptLock that is not held")
        if self._waiters:
            self._waiters.unpark()
        else:
            self._held = False

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()


async def send_promptly(channel: trio.MemorySendChannel[T], value: T) -> None:
    """Send on a memory channel, waiting only when its buffer is full.

    Always a cancel point (nothing is sent when it raises ``Cancelled``); a schedule
    point when it waits and otherwise at least once every
    `CALLS_PER_SCHEDULE_POINT` calls.

    Raises:
        trio.Cancelled: The enclosing scope is cancelled (the value is not sent).
        trio.ClosedResourceError: This end was closed.
        trio.BrokenResourceError: The receiving end was closed.
    """
    global _calls_since_schedule_point
    _calls_since_schedule_point += 1
    if _calls_since_schedule_point >= CALLS_PER_SCHEDULE_POINT:
        _calls_since_schedule_point = 0
        await trio.lowlevel.checkpoint()
    else:
        await trio.lowlevel.checkpoint_if_cancelled()
    try:
        channel.send_nowait(value)
    except trio.WouldBlock:
        await channel.send(value)


async def receive_promptly(channel: trio.MemoryReceiveChannel[T]) -> T:
    """Receive from a memory channel, waiting only when it is empty.

    Always a cancel point (nothing is taken when it raises ``Cancelled``); a schedule
    point when it waits and otherwise at least once every
    `CALLS_PER_SCHEDULE_POINT` calls.

    Raises:
        trio.Cancelled: The enclosing scope is cancelled (checked first).
        trio.EndOfChannel: Every sender closed and the buffer is empty.
        trio.ClosedResourceError: This end was closed.
    """
    global _calls_since_schedule_point
    _calls_since_schedule_point += 1
    if _calls_since_schedule_point >= CALLS_PER_SCHEDULE_POINT:
        _calls_since_schedule_point = 0
        await trio.lowlevel.checkpoint()
    else:
        await trio.lowlevel.checkpoint_if_cancelled()
    try:
        return channel.receive_nowait()
    except trio.WouldBlock:
        return await channel.receive()
