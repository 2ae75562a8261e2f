"""Small helpers shared across the package."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

import trio

__all__ = ["acquire_promptly", "open_nursery_unwrapped", "receive_promptly", "send_promptly"]

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


async def acquire_promptly(lock: trio.Lock) -> None:
    """Acquire ``lock``: at once when it is free, else wait in line (fair).

    Raises:
        trio.Cancelled: The enclosing scope is cancelled (checked before acquiring).
    """
    await trio.lowlevel.checkpoint_if_cancelled()
    if lock.locked():
        await lock.acquire()
    else:
        lock.acquire_nowait()


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
