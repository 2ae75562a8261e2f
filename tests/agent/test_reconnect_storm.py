"""Short-lived connections: rapid reconnects back off, and the agent gives up on a storm."""

from __future__ import annotations

import functools
import itertools

import pytest
import trio

from tests.agent._helpers import of_type, transcript
from trio_bidi import (
    BidiAgent,
    BidiConnectionError,
    BidiConnectionRestartEvent,
    BidiErrorEvent,
    BidiTranscriptStreamEvent,
)
from trio_bidi.testing import ScriptedModel


async def _drop_each_connection_after_one_event(
    model: ScriptedModel, opened_at: list[float], *, after_s: float = 0.0
) -> None:
    index = 0
    while True:
        connection = await model.wait_connection(index)
        opened_at.append(trio.current_time())
        connection.push(transcript(f"hello {index}"))
        await trio.sleep(after_s)
        connection.disconnect()
        index += 1


async def _collect(agent: BidiAgent, events: list[object]) -> None:
    async for event in agent.receive():
        events.append(event)


async def test_a_storm_of_short_lived_connections_backs_off_then_gives_up(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = ScriptedModel()
    opened_at: list[float] = []
    events: list[object] = []
    async with trio.open_nursery() as nursery:
        async with BidiAgent(model=model) as agent:  # defaults: 8 in a row, 5 s
            nursery.start_soon(_drop_each_connection_after_one_event, model, opened_at)
            with pytest.raises(BidiConnectionError, match="8 times in a row"):
                await _collect(agent, events)
            stats = agent.statistics()
        nursery.cancel_scope.cancel()
    assert len(opened_at) == 8
    assert stats.short_lived_connections == 8
    assert stats.connections_opened == 8
    # The first drop reconnects at once; then 0.5, 1, 2, 4, 8, 8 s (restart_backoff_*).
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(opened_at)]
    assert gaps == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert len(of_type(events, BidiTranscriptStreamEvent)) == 8
    assert len(of_type(events, BidiConnectionRestartEvent)) == 7
    assert of_type(events, BidiErrorEvent)[-1].details == {"short_lived_connections": 8}


async def test_a_connection_that_lived_long_enough_resets_the_count(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = ScriptedModel()
    opened_at: list[float] = []
    async with trio.open_nursery() as nursery:
        async with BidiAgent(model=model, short_connection_s=5, max_short_connections=2) as agent:
            nursery.start_soon(
                functools.partial(
                    _drop_each_connection_after_one_event, model, opened_at, after_s=6.0
                )
            )
            restarts = 0
            async for event in agent.receive():
                if isinstance(event, BidiConnectionRestartEvent):
                    restarts += 1
                    if restarts == 5:
                        break
            stats = agent.statistics()
        nursery.cancel_scope.cancel()
    assert stats.short_lived_connections == 0
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(opened_at)]
    assert gaps[:4] == [6.0, 6.0, 6.0, 6.0]  # reconnected at once each time
