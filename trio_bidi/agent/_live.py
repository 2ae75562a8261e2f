"""What the supervision knows about one connection: while it is open, and how it ended.

`LiveConnection` is the open connection ``receive()`` reads, with what the
watcher and the receivers tell each other about it. The outcomes (`ConnectFailed`,
`Lost`, `Stopped`) are how one connection ended; `GaveUp` is why the
agent stopped reconnecting, kept as data so each raise is a fresh exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import trio

from ..errors import BidiConnectionError, BidiError, BidiModelTimeoutError
from ..events import BidiOutputEvent, CloseReason
from ..models._base import BidiConnection, ConnectionBase

__all__ = [
    "ConnectFailed",
    "GaveUp",
    "LiveConnection",
    "Lost",
    "Outcome",
    "Stopped",
    "as_timeout",
]


@attrs.frozen
class ConnectFailed:
    """``model.connect`` failed."""

    error: BidiError


@attrs.frozen
class Lost:
    """An open connection ended (anything but a stop).

    Attributes:
        error: Why (the restart event carries it; its restart_config resumes).
        delivered: The application got an event of it beyond the start event.
        lived_s: How long it was open.
        healthy: It ended the normal way (a time limit, a restart before one).
    """

    error: BidiModelTimeoutError
    delivered: bool
    lived_s: float
    healthy: bool


@attrs.frozen
class Stopped:
    """The conversation was asked to end."""

    connection_id: str
    reason: CloseReason


Outcome = ConnectFailed | Lost | Stopped


@attrs.frozen
class GaveUp:
    """Why the agent stopped reconnecting, kept as data (see `error`)."""

    message: str
    cause: BaseException | None

    def error(self) -> BidiConnectionError:
        """Return a new error for this failure, chained to its cause."""
        error = BidiConnectionError(self.message)
        error.__cause__ = self.cause
        return error


def as_timeout(error: BaseException, connection_id: str) -> BidiModelTimeoutError:
    """``error`` as the timeout error a restart event carries (chained to it)."""
    if isinstance(error, BidiModelTimeoutError):
        return error
    timeout = BidiModelTimeoutError(f"connection {connection_id} was lost: {error}")
    timeout.__cause__ = error
    return timeout


@attrs.define(eq=False)
class LiveConnection:
    """The open, flushed connection whose events ``receive()`` reads.

    Attributes:
        conn: The connection.
        events: Its event iterator (shared by every receiver).
        generation: Counts connections; tool calls remember which one knows them.
        opened_at: When it opened (Trio's clock).
        delivered: An event other than the start event reached the application.
        proactive_due: Its time limit is near: restart at the next turn boundary.
        lost: How it ended, once a receiver found out.
        send_failed_at: When a send found it broken (None: none did).
        changed: Wakes the watcher (end found, turn change while a restart is due,
            stop, send failure).
        readers: Receivers reading it right now.
        reads: Reads started so far (the watcher sees whether anyone read lately).
        stand_in: Cancels the watcher's reading while it stands in for a receiver.
        stand_in_done: Set when the watcher's stand-in read is over.
        drained: The watcher read it after a send found it broken.
        ends_reads_on_close: Closing it ends a read in progress (ConnectionBase).
    """

    conn: BidiConnection
    events: AsyncIterator[BidiOutputEvent]
    generation: int
    opened_at: float
    delivered: bool = False
    proactive_due: bool = False
    lost: Lost | None = None
    send_failed_at: float | None = None
    changed: trio.Event = attrs.Factory(trio.Event)
    readers: int = 0
    reads: int = 0
    stand_in: trio.CancelScope | None = None
    drained: bool = False
    stand_in_done: trio.Event = attrs.Factory(trio.Event)
    ends_reads_on_close: bool = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.ends_reads_on_close = isinstance(self.conn, ConnectionBase)

    def end(self, error: BidiModelTimeoutError, *, healthy: bool) -> None:
        """Record how the connection ended (the first report wins) and wake the watcher."""
        if self.lost is None:
            self.lost = Lost(error, self.delivered, trio.current_time() - self.opened_at, healthy)
        self.wake_watcher()

    def wake_watcher(self) -> None:
        """Make the watcher look again (ending a stand-in read of its own)."""
        self.changed.set()
        if self.stand_in is not None:
            self.stand_in.cancel()
