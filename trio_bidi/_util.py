"""Small helpers shared across the package."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

__all__ = ["open_nursery_unwrapped"]


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
