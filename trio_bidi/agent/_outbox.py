"""The outbox: events the agent makes itself, waiting for ``receive()``.

The model's events go from the connection straight to the receiving task; what the agent
emits on its own (tool results, restarts, errors, the close) and what the watcher read in
a receiver's place waits here, and ``receive()`` empties it first. A receiver blocked on
the connection registers a cancel scope so a new outbox event can wake it.
"""

from __future__ import annotations

import logging
from collections import deque

import trio

from ..events import BidiOutputEvent, ToolResultEvent

__all__ = ["AgentOutput", "Outbox"]

logger = logging.getLogger(__name__)

AgentOutput = BidiOutputEvent | ToolResultEvent
"""What ``BidiAgent.receive()`` yields."""


class Outbox:
    """A bounded queue of output events with wake-ups for the receivers.

    Args:
        max_events: Events held at most; `put` waits for room beyond this.
    """

    def __init__(self, max_events: int) -> None:
        self._events: deque[AgentOutput] = deque()
        self._max_events = max_events
        self._room = trio.Event()
        self._arrived = trio.Event()
        self._reading_scopes: set[trio.CancelScope] = set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._events)

    @property
    def full(self) -> bool:
        """True when `put` would wait."""
        return len(self._events) >= self._max_events

    def take(self) -> AgentOutput | None:
        """Remove and return the oldest event (None: empty)."""
        if not self._events:
            return None
        event = self._events.popleft()
        self._room.set()
        self._room = trio.Event()
        return event

    def put_nowait(self, event: AgentOutput) -> None:
        """Append an event without waiting (from a receiver's own task) and wake receivers."""
        self._events.append(event)
        self.wake()

    def put_result(self, event: AgentOutput) -> None:
        """Append a tool call's result event without waiting, even beyond the bound.

        A tool call hands its result to the application before it sends it to the model,
        whose turn must not wait for a reader; so the outbox holds at most one event per
        tool call beyond ``max_events``. Dropped (and logged) once the outbox is closed.
        """
        if self._closed:
            logger.debug("event=<%s> | agent stopped, event not delivered", event.type)
            return
        self.put_nowait(event)

    def put_front(self, event: AgentOutput) -> None:
        """Put an event back first in line (its receiver was cancelled before returning it)."""
        self._events.appendleft(event)
        self.wake()

    async def put(self, event: AgentOutput) -> None:
        """Append an event, waiting while the outbox is full; dropped once it is closed."""
        while self.full and not self._closed:
            await self._room.wait()
        if self._closed:
            logger.debug("event=<%s> | agent stopped, event not delivered", event.type)
        else:
            self.put_nowait(event)
        await trio.lowlevel.checkpoint()

    def close(self) -> None:
        """Take no more events (the agent stopped); wake every waiter."""
        self._closed = True
        self._room.set()
        self.wake()

    async def wait(self) -> None:
        """Wait until an event arrives or `wake` is called."""
        await self._arrived.wait()

    def wake(self) -> None:
        """Wake every receiver: those in `wait` and those reading a connection."""
        self._arrived.set()
        self._arrived = trio.Event()
        for scope in self._reading_scopes:
            scope.cancel()

    def add_reader(self, scope: trio.CancelScope) -> None:
        """Cancel ``scope`` at the next `wake` (a receiver blocked on a connection)."""
        self._reading_scopes.add(scope)

    def remove_reader(self, scope: trio.CancelScope) -> None:
        """Forget a scope given to `add_reader`."""
        self._reading_scopes.discard(scope)
