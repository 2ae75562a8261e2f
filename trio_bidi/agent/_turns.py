"""Turn tracking: is the conversation at a turn boundary, where a restart loses nothing?

Sans-IO: `TurnTracker` is fed the model's events and the time, and answers when the
next boundary is. The agent restarts a connection that nears its time limit only there.
"""

from __future__ import annotations

import math

from ..events import (
    BidiInterruptionEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiTranscriptStreamEvent,
)

__all__ = ["REPLY_WAIT_S", "TurnTracker"]

REPLY_WAIT_S = 5.0
"""How long a reply that is due may take to start before a restart goes ahead anyway."""


class TurnTracker:
    """Follows one connection's turns: who speaks, and whether a reply is due.

    Args:
        reply_wait_s: See `REPLY_WAIT_S`.
    """

    __slots__ = ("_reply_wait_s", "awaiting_since", "response_id", "user_speaking")

    def __init__(self, reply_wait_s: float = REPLY_WAIT_S) -> None:
        self._reply_wait_s = reply_wait_s
        self.response_id: str | None = None
        """The model's response in progress (None: the model is not answering)."""
        self.user_speaking = False
        """True from the user's first words (or an interruption) to their final transcript."""
        self.awaiting_since: float | None = None
        """When a reply became due (None: none is due)."""

    def reset(self) -> None:
        """Forget everything (a new connection starts with no turn in progress)."""
        self.response_id = None
        self.user_speaking = False
        self.awaiting_since = None

    def expect_reply(self, now: float) -> None:
        """A reply is due from ``now`` on (text input, a tool result, the user's final words)."""
        self.awaiting_since = now

    def observe(self, event: BidiOutputEvent, now: float) -> None:
        """Update the state from one of the model's events."""
        if isinstance(event, BidiResponseStartEvent):
            self.response_id = event.response_id
            self.user_speaking = False
            self.awaiting_since = None
        elif isinstance(event, BidiResponseCompleteEvent):
            self.response_id = None
        elif isinstance(event, BidiTranscriptStreamEvent):
            if event.role == "user":
                self.user_speaking = not event.is_final
                if event.is_final:
                    self.awaiting_since = now
        elif isinstance(event, BidiInterruptionEvent):
            if event.reason == "user_speech":
                self.user_speaking = True
            self.response_id = None

    def boundary_at(self) -> float:
        """When the conversation is (or will be) at a turn boundary: -inf now, inf unknown.

        Not while the model answers or the user speaks, and not while a reply is due
        unless it has not started within ``reply_wait_s``: restarting then would lose
        the reply.
        """
        if self.response_id is not None or self.user_speaking:
            return math.inf
        if self.awaiting_since is None:
            return -math.inf
        return self.awaiting_since + self._reply_wait_s
