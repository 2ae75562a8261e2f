"""receive() reads the connection in the caller's task: checkpoints, order, handover.

Also the sending side of Trio's contract: an application that sends in a loop while the
agent reconnects lets the reconnection (and every other task) run.
"""

from __future__ import annotations

import base64
import itertools
import random
from typing import Any

import pytest
import trio
import trio.testing

from tests.agent._helpers import audio, of_type, receive_until, reply, tool_use, transcript
from trio_bidi import (
    BidiAgent,
    BidiAudioStreamEvent,
    BidiConnectionError,
    BidiConnectionRestartEvent,
    BidiConnectionStartEvent,
    BidiMessageAddedEvent,
    BidiResponseCompleteEvent,
    BidiTranscriptStreamEvent,
)
from trio_bidi.testing import ScriptedModel


def _audio_out(index: int) -> BidiAudioStreamEvent:
    return BidiAudioStreamEvent(
        base64.b64encode(index.to_bytes(4, "big")).decode(), "pcm", 24000, 1
    )


async def test_each_receive_is_a_cancel_point_and_yields_often(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = ScriptedModel()
    async with BidiAgent(model=model) as agent:
        first = await model.wait_connection()
        first.push(*(_audio_out(i) for i in range(40)))
        receiver = agent.receive()
        assert isinstance(await receiver.__anext__(), BidiConnectionStartEvent)
        await trio.sleep(1)  # every pushed event is waiting now
        with trio.CancelScope() as scope:
            scope.cancel()
            await receiver.__anext__()
        assert scope.cancelled_caught
        got: list[Any] = []
        with trio.testing.assert_checkpoints():  # a schedule point within 16 calls
            for _ in range(16):
                got.append(await receiver.__anext__())
    assert got == [_audio_out(i) for i in range(16)]  # the cancelled call took nothing


async def test_events_are_handled_in_the_receiving_task(autojump_clock: trio.abc.Clock) -> None:
    handled_in: list[Any] = []

    def on_message(event: BidiMessageAddedEvent) -> None:
        handled_in.append(trio.lowlevel.current_task())

    model = ScriptedModel()
    async with BidiAgent(model=model, hooks=[on_message]) as agent:
        first = await model.wait_connection()
        first.push(*reply("r1", "Hello."))
        await receive_until(agent, BidiResponseCompleteEvent)
    assert handled_in == [trio.lowlevel.current_task()]
    assert agent.messages == [{"role": "assistant", "content": [{"text": "Hello."}]}]


async def test_a_connection_nobody_reads_is_still_replaced_and_events_keep_their_order(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = ScriptedModel()
    async with BidiAgent(model=model) as agent:
        first = await model.wait_connection()
        first.push(*reply("r1", "Before the drop."))
        first.disconnect()
        second = await model.wait_connection(1)  # nobody called receive()
        second.push(*reply("r2", "After the drop."))
        events = await receive_until(agent, BidiResponseCompleteEvent, 2)
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "BidiConnectionStartEvent",
        "BidiResponseStartEvent",
        "BidiTranscriptStreamEvent",
        "BidiResponseCompleteEvent",
        "BidiConnectionRestartEvent",
        "BidiConnectionStartEvent",
        "BidiResponseStartEvent",
        "BidiTranscriptStreamEvent",
        "BidiResponseCompleteEvent",
    ]
    assert [m["content"][0]["text"] for m in agent.messages] == [  # type: ignore[typeddict-item]
        "Before the drop.",
        "After the drop.",
    ]


async def test_a_waiting_receiver_moves_to_the_new_connection(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = ScriptedModel()
    async with BidiAgent(model=model) as agent:
        first = await model.wait_connection()
        events: list[Any] = []

        async def receive_two_starts() -> None:
            events.extend(await receive_until(agent, BidiConnectionStartEvent, 2))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_two_starts)
            await trio.sleep(1)  # the receiver waits on the first connection
            first.expire()
            second = await model.wait_connection(1)
            second.push(transcript("fresh"))
        assert isinstance(events[-2], BidiConnectionRestartEvent)
        assert events[-1].connection_id == second.connection_id
        more = await receive_until(agent, BidiTranscriptStreamEvent)
    assert of_type(more, BidiTranscriptStreamEvent)[0].text == "fresh"


async def test_unpaced_sending_while_reconnecting_lets_other_tasks_run() -> None:
    """Real clock: a loop of sends never blocks, so only checkpoints let others run."""
    model = ScriptedModel()
    ticks: list[float] = []
    sent = 0
    async with BidiAgent(
        model=model, restart_backoff_s=0.05, deadline_grace_s=0.05, gap_audio_buffer_s=0.2
    ) as agent:
        first = await model.wait_connection()
        model.connect_failures.append(BidiConnectionError("still down"))

        async def heartbeat() -> None:
            while True:
                await trio.sleep(0.01)
                ticks.append(trio.current_time())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(heartbeat)
            first.disconnect()
            with trio.move_on_after(1.0) as timer:
                while True:
                    await agent.send(audio(20))
                    sent += 1
            nursery.cancel_scope.cancel()
        stats = agent.statistics()
        delivered = sum(len(c.sent) for c in model.connections)
    assert timer.cancelled_caught  # the unpaced loop ended at its deadline
    # The heartbeat kept ticking (no starvation; thresholds leave room for a loaded machine).
    assert len(ticks) >= 5
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.5
    assert stats.restarts == 1  # the reconnection happened meanwhile
    assert stats.dropped_audio_events > 0
    # Every frame is accounted for: sent to a connection, waiting, or counted as dropped.
    assert delivered + stats.buffered_input_events + stats.dropped_audio_events == sent


async def test_a_receive_cancelled_while_a_hook_runs_keeps_the_event(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def slow_hook(event: BidiMessageAddedEvent) -> None:
        await trio.sleep(1)

    model = ScriptedModel()
    async with BidiAgent(model=model, hooks=[slow_hook]) as agent:
        first = await model.wait_connection()
        first.push(transcript("Kept."))
        receiver = agent.receive()
        assert isinstance(await receiver.__anext__(), BidiConnectionStartEvent)
        with trio.move_on_after(0.5) as timer:
            await receiver.__anext__()  # the hook is still running at the deadline
        assert timer.cancelled_caught
        event = await receiver.__anext__()
    assert isinstance(event, BidiTranscriptStreamEvent)
    assert event.text == "Kept."
    assert agent.messages == [{"role": "assistant", "content": [{"text": "Kept."}]}]


async def test_tool_results_reach_the_model_while_nobody_reads(
    autojump_clock: trio.abc.Clock,
) -> None:
    from trio_bidi import ToolResultEvent, tool

    @tool
    async def slow() -> str:
        """Take a while."""
        await trio.sleep(2)
        return "done"

    model = ScriptedModel()
    async with BidiAgent(model=model, tools=[slow], max_buffered_events=8) as agent:
        first = await model.wait_connection()
        first.push(tool_use("t1", "slow"), *(_audio_out(i) for i in range(50)))
        # Nobody reads: the agent reads in our place until its outbox is full.
        await first.wait_sent(lambda sent: any(isinstance(e, ToolResultEvent) for e in sent))
        assert trio.current_time() < 3
        events = await receive_until(agent, ToolResultEvent)
    assert [type(e).__name__ for e in events[:2]] == [
        "BidiConnectionStartEvent",
        "ToolUseStreamEvent",
    ]
    assert len(of_type(events, BidiAudioStreamEvent)) == 6  # the rest of the outbox


@pytest.mark.parametrize("seed", range(5))
async def test_events_arrive_once_and_in_order_whoever_reads_them(
    autojump_clock: trio.abc.Clock, seed: int
) -> None:
    """A reader that pauses (sometimes past the stand-in delay) still gets every event."""
    rng = random.Random(seed)
    model = ScriptedModel()
    async with BidiAgent(model=model, max_buffered_events=8) as agent:
        first = await model.wait_connection()

        async def produce() -> None:
            for start in range(0, 400, 20):
                first.push(*(_audio_out(i) for i in range(start, start + 20)))
                await trio.sleep(rng.choice([0.0, 0.1, 0.7]))

        got: list[Any] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce)
            receiver = agent.receive()
            while len(got) < 401:
                got.append(await receiver.__anext__())
                if rng.random() < 0.05:
                    await trio.sleep(rng.choice([0.2, 0.6, 1.5]))
    assert isinstance(got[0], BidiConnectionStartEvent)
    assert got[1:] == [_audio_out(i) for i in range(400)]
