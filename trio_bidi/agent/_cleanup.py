"""Cleanups that run shielded from cancellation, each with a deadline.

A cleanup must run even when the agent is being cancelled (so it is shielded), but a
cleanup that hangs (a hook waiting on a dead service, an output whose ``stop()`` blocks)
must not hold the application forever: past its deadline it is abandoned and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import trio

__all__ = ["bounded_cleanup"]

logger = logging.getLogger(__name__)


@contextmanager
def bounded_cleanup(timeout_s: float, what: str) -> Iterator[trio.CancelScope]:
    """Shield the block from outside cancellation, but cancel it after ``timeout_s``.

    Args:
        timeout_s: The cleanup's deadline, from now.
        what: Names the cleanup in the log line written when the deadline is hit.
    """
    with trio.CancelScope(shield=True) as scope:
        scope.deadline = trio.current_time() + timeout_s
        yield scope
    if scope.cancelled_caught:
        logger.warning(
            "cleanup=<%s>, timeout_s=<%s> | cleanup did not finish in time; abandoned",
            what,
            timeout_s,
        )
