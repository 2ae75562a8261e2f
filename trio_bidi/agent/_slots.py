"""Tool concurrency slots handed out in the order the model made its calls."""

from __future__ import annotations

from collections import deque

import trio

__all__ = ["OrderedSlots"]


class OrderedSlots:
    """A counting semaphore whose waiters are served in the order they reserved.

    A reservation is taken synchronously, when the agent dispatches the call, so the
    order does not depend on when each tool task first runs (Trio schedules a batch of
    new tasks in either order).

    Args:
        total: How many calls may run at once (at least 1).
    """

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError(f"total must be at least 1, not {total}")
        self._free = total
        self._waiting: deque[trio.Event] = deque()

    def reserve(self) -> trio.Event:
        """Take a place in line; the returned event is set when the slot is yours."""
        turn = trio.Event()
        if self._free and not self._waiting:
            self._free -= 1
            turn.set()
        else:
            self._waiting.append(turn)
        return turn

    def release(self, turn: trio.Event) -> None:
        """Give back a slot (held), or leave the line (still waiting)."""
        if not turn.is_set():
            self._waiting.remove(turn)
            return
        if self._waiting:
            self._waiting.popleft().set()
        else:
            self._free += 1
