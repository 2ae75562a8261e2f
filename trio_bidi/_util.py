"""Small helpers shared across the package."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

import trio

__all__ = [
    "PromptLock",
    "open_nursery_unwrapped",
    "receive_promptly",
    "send_promptly",
]

T = TypeVar("T")


@asynccontextmanager
async def open_nursery_unwrapped() -> AsyncIterator[trio.Nursery]:
    """Open a nursery whose one error propagates as itself rather than in a group.

    Library context managers (a connection, an agent) should let the caller's own
    ``KeyError`` or a provider's ``BidiConnectionError`` through unchanged. A group that
    holds several errors is re-raised as it is: nothing is swallowed.

    Yields:
        The nursery.
    """
    try:
        async with trio.open_nursery() as nursery:
            yield nursery
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            single = group.exceptions[0]
            raise single from single.__cause__
        raise


# The hot path (one audio frame after another, 50+ a second per session) pays for every
# pass through Trio's scheduler. These helpers are cancel points that enter the scheduler
# only when they have to wait; the socket reads and writes on the same path still yield.


class PromptLock:
    """A fair task lock that costs next to nothing when it is free.

    ``trio.Lock`` checks ownership and registers breakers on every acquire, which shows
    on a path taken for every audio frame. This lock is a flag plus a parking lot that is
    used only under contention; release hands it straight to the first waiter (FIFO).
    Unlike ``trio.Lock`` it does not check that the releasing task is the owner.
    """

    __slots__ = ("_held", "_waiters")

    def __init__(self) -> None:
        self._held = False
        self._waiters = trio.lowlevel.ParkingLot()

    def locked(self) -> bool:
        """Whether a task holds the lock."""
        return self._held

    async def acquire(self) -> None:
        """Take the lock: at once when free (a cancel point only), else wait in line.

        Raises:
            trio.Cancelled: The enclosing scope is cancelled (the lock is not taken).
        """
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

    Raises:
        trio.ClosedResourceError: This end was closed.
        trio.BrokenResourceError: The receiving end was closed.
    """
    try:
        channel.send_nowait(value)
    except trio.WouldBlock:
        await channel.send(value)


async def receive_promptly(channel: trio.MemoryReceiveChannel[T]) -> T:
    """Receive from a memory channel, waiting only when it is empty.

    Raises:
        trio.Cancelled: The enclosing scope is cancelled (checked first).
        trio.EndOfChannel: Every sender closed and the buffer is empty.
        trio.ClosedResourceError: This end was closed.
    """
    await trio.lowlevel.checkpoint_if_cancelled()
    try:
        return channel.receive_nowait()
    except trio.WouldBlock:
        return await channel.receive()
