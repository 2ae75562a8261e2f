"""The agent's tunables: ``BidiAgent(model, ..., **settings)``."""

from __future__ import annotations

from typing import Any

import attrs

from ..errors import BidiConfigurationError

__all__ = ["AgentSettings"]


def _positive(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not value > 0:
        raise BidiConfigurationError(f"{attribute.name} must be > 0, got {value!r}")


def _non_negative(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not value >= 0:
        raise BidiConfigurationError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen(kw_only=True)
class AgentSettings:
    """The agent's tunables (``BidiAgent(..., **settings)``).

    Attributes:
        tool_concurrency: Most tool calls running at once (None: no limit).
        tool_timeout_s: Default time limit of a tool call (None: none; a tool's own
            ``timeout_s`` wins). At the limit the model gets an error result at once; a
            sync tool's worker thread cannot be stopped, so it is abandoned and whatever
            it returns later is dropped.
        restart_margin_s: Restart proactively, at the next turn boundary, once the
            connection's deadline is this close (None: only restart when it ends).
        deadline_grace_s: The agent ends a connection this long after the connection's
            own deadline, in case the provider misses it (and this long after a send
            found the connection broken, when no ``receive()`` reported its end).
        max_restart_attempts: Consecutive failed connection attempts before giving up.
            A connection that opens but ends with an error before it delivered any event
            or lived ``restart_backoff_max_s`` counts as a failed attempt.
        restart_backoff_s: Wait before the second attempt; doubles after each failure.
        restart_backoff_max_s: Longest wait between attempts.
        short_connection_s: A connection that the peer ends (not a time limit) within
            this many seconds of opening is short-lived, even if it delivered events:
            from the second in a row on, reconnecting waits like a failed attempt.
        max_short_connections: Consecutive short-lived connections before giving up
            (a peer that accepts and drops every connection).
        gap_audio_buffer_s: Audio kept for the next connection while reconnecting; the
            oldest is dropped (and counted) beyond this.
        gap_max_events: Non-audio input events kept while reconnecting; ``send`` waits
            for room beyond this.
        max_buffered_events: Events the agent itself emits (tool results, restarts,
            errors) buffered for ``receive()``; the model's events wait in the
            connection (backpressure).
        cleanup_timeout_s: Deadline of each cleanup that runs shielded from cancellation
            (after-invocation hooks, every input/output ``stop()``, closing a
            connection); a cleanup that takes longer is abandoned and logged.
    """

    tool_concurrency: int | None = attrs.field(default=None, validator=_positive)
    tool_timeout_s: float | None = attrs.field(default=None, validator=_positive)
    restart_margin_s: float | None = attrs.field(default=30.0, validator=_non_negative)
    deadline_grace_s: float = attrs.field(default=5.0, validator=_non_negative)
    max_restart_attempts: int = attrs.field(default=5, validator=_non_negative)
    restart_backoff_s: float = attrs.field(default=0.5, validator=_non_negative)
    restart_backoff_max_s: float = attrs.field(default=8.0, validator=_non_negative)
    short_connection_s: float = attrs.field(default=5.0, validator=_non_negative)
    max_short_connections: int = attrs.field(default=8, validator=_positive)
    gap_audio_buffer_s: float = attrs.field(default=5.0, validator=_non_negative)
    gap_max_events: int = attrs.field(default=256, validator=_positive)
    max_buffered_events: int = attrs.field(default=64, validator=_positive)
    cleanup_timeout_s: float = attrs.field(default=5.0, validator=_positive)

    @classmethod
    def from_kwargs(cls, settings: dict[str, Any]) -> AgentSettings:
        """Build settings from keyword arguments, naming any unknown one.

        Raises:
            BidiConfigurationError: An unknown setting or a bad value.
        """
        known = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise BidiConfigurationError(
                f"unknown BidiAgent setting(s) {unknown!r} (known: {', '.join(sorted(known))})"
            )
        return cls(**settings)

    def backoff(self, failures: int) -> float:
        """Seconds to wait before the attempt after ``failures`` consecutive failures."""
        return float(min(self.restart_backoff_s * 2 ** (failures - 1), self.restart_backoff_max_s))
