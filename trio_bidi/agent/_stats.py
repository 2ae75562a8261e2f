"""The frozen statistics snapshot returned by ``BidiAgent.statistics()``."""

from __future__ import annotations

import attrs

__all__ = ["AgentStatistics"]


@attrs.frozen(kw_only=True)
class AgentStatistics:
    """A snapshot of an agent's counters.

    Attributes:
        connections_opened: Connections opened so far (the first one included).
        restarts: Connection restarts that succeeded.
        failed_connection_attempts: ``model.connect`` calls that failed.
        connected: True while a connection is open and taking input.
        connection_age_s: Seconds since the current connection opened (None: none open).
        buffered_input_events: Input events waiting for the next connection.
        buffered_audio_ms: Milliseconds of audio among them.
        dropped_audio_events: Audio inputs dropped because the restart buffer was full.
        dropped_audio_ms: Milliseconds of audio dropped that way.
        tool_calls_running: Tool calls in progress.
        tool_calls_total: Tool calls started so far.
        tool_calls_cancelled: Tool calls cancelled (interruption, provider, hook, stop).
        tool_calls_timed_out: Tool calls that reached their time limit (the model got an
            error result; a worker thread still running was abandoned, its late result
            dropped).
        short_lived_connections: Connections the peer ended within ``short_connection_s``
            of opening (see [`AgentSettings`][trio_bidi.agent.AgentSettings]).
    """

    connections_opened: int
    restarts: int
    failed_connection_attempts: int
    connected: bool
    connection_age_s: float | None
    buffered_input_events: int
    buffered_audio_ms: float
    dropped_audio_events: int
    dropped_audio_ms: float
    tool_calls_running: int
    tool_calls_total: int
    tool_calls_cancelled: int
    tool_calls_timed_out: int = 0
    short_lived_connections: int = 0
