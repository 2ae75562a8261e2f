"""Connection supervision on the scripted model: restarts, the gap buffer, giving up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from tests.agent._helpers import audio, of_type, receive_until, reply, tool_use, transcript
from trio_bidi import (
    BidiAgent,
    BidiAudioInputEvent,
    BidiConnectionError,
    BidiConnectionRestartEvent,
    BidiConnectionStartEvent,
    BidiErrorEvent,
    BidiModelTimeoutError,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiStateError,
    BidiTextInputEvent,
    BidiTranscriptStreamEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
    tool,
)
from trio_bidi.testing import ScriptedModel


@tool
async def lookup(city: str) -> str:
    """Look a city up.

    Args:
        city: The city.
    """
    return f"{city}: sunny"


async def test_restart_on_provider_timeout_replays_prompt_tools_history_and_restart_config(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = ScriptedModel()
    async with BidiAgent(model=model, tools=[lookup], system_prompt="Be kind.") as agent:
        first = await model.wait_connection()
        await agent.send("hi")
        first.push(*reply("r1", "Hello!"))
        await receive_until(agent, BidiResponseCompleteEvent)
        first.expire(BidiModelTimeoutError("go away", handle="resume-123"))
        events = await receive_until(agent, BidiConnectionStartEvent)
        second = await model.wait_connection(1)
        # The application's receive loop just goes on with the new connection.
        second.push(*reply("r2", "Still here."))
        events += await receive_until(agent, BidiResponseCompleteEvent)
    restart = of_type(events, BidiConnectionRestartEvent)
    assert len(restart) == 1
    assert restart[0].timeout_error.restart_config == {"handle": "resume-123"}
    assert second.given_restart_config == {"handle": "resume-123"}
    assert second.system_prompt == "Be kind."
    assert second.tools == [lookup.spec]
    assert second.messages == [
        {"role": "user", "content": [{"text": "hi"}]},
        {"role": "assistant", "content": [{"text": "Hello!"}]},
    ]
    assert agent.messages[-1] == {"role": "assistant", "content": [{"text": "Still here."}]}
    stats = agent.statistics()
    assert (stats.restarts, stats.connections_opened) == (1, 2)


async def test_restart_on_unexpected_disconnect(autojump_clock: trio.abc.Clock) -> None:
    model = ScriptedModel()
    async with BidiAgent(model=model) as agent:
        first = await model.wait_connection()
        first.disconnect(BidiConnectionError("reset by peer"))
        events = await receive_until(agent, BidiConnectionStartEvent, 2)
        await model.wait_connection(1)
    restart = of_type(events, BidiConnectionRestartEvent)[0]
    assert "reset by peer" in str(restart.timeout_error)
    assert isinstance(restart.timeout_error.__cause__, BidiConnectionError)
    assert len(model.connections) == 2


async def test_lost_connection_resumes_with_what_the_connection_offered(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = ScriptedModel()
    async with BidiAgent(model=model) as agent:
        first = await model.wait_connection()
        first.resume_config = {"handle": "offered-1"}
        first.disconnect(BidiConnectionError("reset by peer"))
        await receive_until(agent, BidiConnectionStartEvent, 2)
        second = await model.wait_connection(1)
        # The provider's own restart data (in its timeout error) wins over the offer.
        second.resume_config = {"handle": "offered-2"}
        second.expire(BidiModelTimeoutError("go away", handle="from-error"))
        await receive_until(agent, BidiConnectionStartEvent)
        third = await model.wait_connection(2)
    assert first.given_restart_config == {}
    assert second.given_restart_config == {"handle": "offered-1"}
    assert third.given_restart_config == {"handle": "from-error"}


async def test_restart_at_the_connection_deadline(autojump_clock: trio.abc.Clock) -> None:
    model = ScriptedModel(time_limit_s=60)
    async with BidiAgent(model=model, restart_margin_s=None) as agent:
        await model.wait_connection()
        start = trio.current_time()
        events = await receive_until(agent, BidiConnectionStartEvent, 3)
        elapsed = trio.current_time() - start
    assert len(of_type(events, BidiConnectionRestartEvent)) == 2
    assert elapsed == pytest.approx(120.0)
    assert len(model.connections) == 3


async def test_proactive_restart_waits_for_the_turn_boundary(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = ScriptedModel(time_limit_s=100)
    async with BidiAgent(model=model, restart_margin_s=30) as agent:
        first = await model.wait_connection()
        await trio.sleep(60)
        first.push(BidiResponseStartEvent("r1"), transcript("A long", final=False))
        await receive_until(agent, BidiResponseStartEvent)
        await trio.sleep(15)  # t=75: inside the margin, but the model is answering
        assert len(model.connections) == 1
        first.push(transcript("A long answer."), BidiResponseCompleteEvent("r1", "complete"))
        events = await receive_until(agent, BidiConnectionStartEvent)
        restarted_at = trio.current_time()
    assert of_type(events, BidiConnectionRestartEvent)
    assert restarted_at == pytest.approx(75.0)  # at the boundary, well before t=100
    assert model.connections[1].messages[-1] == {
        "role": "assistant",
        "content": [{"text": "A long answer."}],
    }


async def test_proactive_restart_when_idle_happens_at_the_margin(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = ScriptedModel(time_limit_s=100)
    async with BidiAgent(model=model, restart_margin_s=30) as agent:
        await model.wait_connection()
        events = await receive_until(agent, BidiConnectionStartEvent, 2)
        assert trio.current_time() == pytest.approx(70.0)
    assert len(of_type(events, BidiConnectionRestartEvent)) == 1


async def test_restart_during_a_running_tool_delivers_the_result_to_the_new_connection(
    autojump_clock: trio.abc.Clock,
) -> None:
    @tool
    async def slow_lookup(city: str) -> str:
        """Slow lookup.

        Args:
            city: The city.
        """
        await trio.sleep(10)
        return f"{city}: rain"

    model = ScriptedModel()
    async with BidiAgent(model=model, tools=[slow_lookup]) as agent:
        first = await model.wait_connection()
        first.push(tool_use("t1", "slow_lookup", city="Oslo"))
        await receive_until(agent, ToolUseStreamEvent)
        await trio.sleep(2)
        first.expire()
        await receive_until(agent, BidiConnectionStartEvent)
        second = await model.wait_connection(1)
        events = await receive_until(agent, ToolResultEvent)
        await second.wait_sent_count(1)
    pending_use = {"toolUseId": "t1", "name": "slow_lookup", "input": {"city": "Oslo"}}
    # The new connection learns of the call in flight, then gets its result.
    assert second.messages == [{"role": "assistant", "content": [{"toolUse": pending_use}]}]
    result = events[-1].tool_result
    assert result["content"] == [{"text": "Oslo: rain"}]
    assert [e for e in second.sent if isinstance(e, ToolResultEvent)] == [events[-1]]
    assert [e for e in first.sent if isinstance(e, ToolResultEvent)] == []
    assert agent.messages == [
        {"role": "assistant", "content": [{"toolUse": pending_use}]},
        {"role": "user", "content": [{"toolResult": result}]},
    ]


async def test_result_finishing_in_the_gap_is_replayed_with_history(
    autojump_clock: trio.abc.Clock,
) -> None:
    @tool
    async def quick() -> str:
        """Quick."""
        await trio.sleep(0.2)
        return "done"

    model = ScriptedModel()
    async with BidiAgent(model=model, tools=[quick], restart_backoff_s=1) as agent:
        first = await model.wait_connection()
        model.connect_failures.append(BidiConnectionError("still down"))
        first.push(tool_use("q1", "quick"))
        first.push(*reply("r0", "Hello."))  # a healthy connection, then it drops
        first.disconnect()
        # The result arrives while no connection is open (the retry waits 1 s).
        events = await receive_until(agent, BidiConnectionStartEvent, 2)
        second = await model.wait_connection(2)  # index 1 failed to open
    assert of_type(events, ToolResultEvent)
    assert second.messages == agent.messages
    assert [m["role"] for m in second.messages] == ["assistant", "assistant", "user"]
    assert "toolResult" in second.messages[-1]["content"][0]
    assert not [e for e in second.sent if isinstance(e, ToolResultEvent)]
    assert agent.statistics().failed_connection_attempts == 1


async def test_input_during_the_gap_is_delivered_in_order_and_nothing_is_lost(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = ScriptedModel()
    async with BidiAgent(model=model, gap_audio_buffer_s=5, restart_backoff_s=1) as agent:
        first = await model.wait_connection()
        await agent.send(audio(20, fill=255))
        model.connect_failures.append(BidiConnectionError("still down"))
        first.push(*reply("r0", "Hello."))  # a healthy connection, then it drops
        first.disconnect()
        await receive_until(agent, BidiConnectionRestartEvent)
        assert not agent.statistics().connected
        frames = [audio(20, fill=i) for i in range(100)]  # 2 s of audio
        for frame in frames[:50]:
            await agent.send(frame)
        await agent.send("typed during the gap")
        for frame in frames[50:]:
            await agent.send(frame)
        stats = agent.statistics()
        assert stats.buffered_input_events == 101
        assert stats.buffered_audio_ms == pytest.approx(2000.0)
        second = await model.wait_connection(2)  # index 1 failed to open
        await second.wait_sent_count(101)
        stats = agent.statistics()
    assert second.sent == [*frames[:50], BidiTextInputEvent("typed during the gap"), *frames[50:]]
    assert first.sent == [audio(20, fill=255)]
    assert (stats.dropped_audio_events, stats.dropped_audio_ms) == (0, 0.0)
    assert stats.buffered_input_events == 0
    # Text joins the history once, when a connection took it; it was not replayed.
    hello = {"role": "assistant", "content": [{"text": "Hello."}]}
    assert second.messages == [hello]
    assert agent.messages == [
        hello,
        {"role": "user", "content": [{"text": "typed during the gap"}]},
    ]


async def test_gap_audio_overflow_drops_the_oldest_and_counts(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = ScriptedModel()
    async with BidiAgent(model=model, gap_audio_buffer_s=0.5, restart_backoff_s=1) as agent:
        first = await model.wait_connection()
        model.connect_failures.append(BidiConnectionError("still down"))
        first.push(*reply("r0", "Hello."))  # a healthy connection, then it drops
        first.disconnect()
        await receive_until(agent, BidiConnectionRestartEvent)
        frames = [audio(20, fill=i) for i in range(40)]  # 800 ms into a 500 ms buffer
        for frame in frames:
            await agent.send(frame)
        second = await model.wait_connection(2)  # index 1 failed to open
        await second.wait_sent_count(25)
        stats = agent.statistics()
    assert second.sent == frames[15:]
    assert stats.dropped_audio_events == 15
    assert stats.dropped_audio_ms == pytest.approx(300.0)


async def test_restart_failure_gives_up_in_bounded_time_with_a_clear_error(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = ScriptedModel()
    async with BidiAgent(
        model=model, max_restart_attempts=3, restart_backoff_s=0.5, restart_backoff_max_s=4
    ) as agent:
        first = await model.wait_connection()
        model.connect_failures.extend(BidiConnectionError(f"down {i}") for i in range(10))
        start = trio.current_time()
        first.push(*reply("r0", "Hello."))  # a healthy connection, then it drops
        first.disconnect()
        events: list[Any] = []

        async def collect() -> None:
            async for event in agent.receive():
                events.append(event)

        with pytest.raises(BidiConnectionError, match="after 3 attempts; last error: down 2"):
            await collect()
        elapsed = trio.current_time() - start
        with pytest.raises(BidiConnectionError, match="after 3 attempts"):
            await agent.send("anyone?")
    assert isinstance(events[-1], BidiErrorEvent)
    assert events[-1].details == {"attempts": 3}
    assert elapsed == pytest.approx(0.5 + 1.0)  # two backoff waits between three attempts
    assert agent.statistics().failed_connection_attempts == 3
    assert len(model.connect_failures) == 7


async def test_restart_recovers_after_failed_attempts(autojump_clock: trio.abc.Clock) -> None:
    model = ScriptedModel()
    async with BidiAgent(model=model, restart_backoff_s=0.5) as agent:
        first = await model.wait_connection()
        model.connect_failures.extend([BidiConnectionError("a"), BidiConnectionError("b")])
        first.push(*reply("r0", "Hello."))  # a healthy connection, then it drops
        first.disconnect()
        events = await receive_until(agent, BidiConnectionStartEvent, 2)
        assert trio.current_time() == pytest.approx(1.5)
        await agent.send("back")
        second = await model.wait_connection(3)  # 1 and 2 failed
    assert len(of_type(events, BidiConnectionRestartEvent)) == 1
    assert second.sent == [BidiTextInputEvent("back")]
    stats = agent.statistics()
    assert (stats.restarts, stats.failed_connection_attempts) == (1, 2)


async def test_connection_that_dies_at_once_counts_as_a_failed_attempt(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A provider that accepts and drops every connection must not loop forever."""
    model = ScriptedModel()

    async def drop_every_new_connection() -> None:
        seen = 1
        while True:
            connection = await model.wait_connection(seen)
            connection.disconnect()
            seen += 1

    async with BidiAgent(model=model, max_restart_attempts=2) as agent:
        await model.wait_connection()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drop_every_new_connection)
            model.connections[0].push(*reply("r0", "Hello."))
            model.connections[0].disconnect()
            with pytest.raises(BidiConnectionError, match="after 2 attempts"):
                async for _ in agent.receive():
                    pass
            nursery.cancel_scope.cancel()
    assert len(model.connections) == 3
    with pytest.raises(BidiStateError):
        await agent.send("x")


async def test_send_during_gap_waits_for_room_when_non_audio_limit_is_reached(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = ScriptedModel()
    async with BidiAgent(model=model, gap_max_events=2, restart_backoff_s=1) as agent:
        first = await model.wait_connection()
        model.connect_failures.append(BidiConnectionError("still down"))
        first.push(*reply("r0", "Hello."))  # a healthy connection, then it drops
        first.disconnect()
        await receive_until(agent, BidiConnectionRestartEvent)
        await agent.send("one")
        await agent.send("two")
        start = trio.current_time()
        await agent.send("three")  # waits until the new connection takes the first two
        waited = trio.current_time() - start
        second = await model.wait_connection(2)  # index 1 failed to open
        await second.wait_sent_count(3)
    assert waited == pytest.approx(1.0)
    assert [e.text for e in second.sent if isinstance(e, BidiTextInputEvent)] == [
        "one",
        "two",
        "three",
    ]
    assert not [e for e in second.sent if isinstance(e, BidiAudioInputEvent)]


async def test_docs_example_restart_keeps_history(autojump_clock: trio.abc.Clock) -> None:
    """The example in docs/agent.md."""
    model = ScriptedModel(time_limit_s=3600)
    async with BidiAgent(model=model, restart_margin_s=None) as agent:
        await agent.send("remember: blue")
        async for event in agent.receive():
            if event.type == "bidi_connection_restart":
                break
        second = await model.wait_connection(1)
    assert second.messages == [{"role": "user", "content": [{"text": "remember: blue"}]}]
    assert trio.current_time() == pytest.approx(3600.0)


async def test_buffered_input_the_new_connection_rejects_is_reported_not_blocking(
    autojump_clock: trio.abc.Clock,
) -> None:
    from trio_bidi import BidiAudioFormatError

    def responder(event: Any) -> list[Any]:
        if isinstance(event, BidiAudioInputEvent) and event.sample_rate == 48000:
            raise BidiAudioFormatError("this session takes 16 kHz audio")
        return []

    model = ScriptedModel(responder=responder)
    async with BidiAgent(model=model, restart_backoff_s=1) as agent:
        first = await model.wait_connection()
        model.connect_failures.append(BidiConnectionError("still down"))
        first.push(*reply("r0", "Hello."))
        first.disconnect()
        await receive_until(agent, BidiConnectionRestartEvent)
        await agent.send(audio(20, rate=48000))
        await agent.send("after the bad frame")
        events = await receive_until(agent, BidiErrorEvent)
        second = await model.wait_connection(2)
        await second.wait_sent_count(2)
        await receive_until(agent, BidiConnectionStartEvent)  # the restart completed
    assert isinstance(events[-1].error, BidiAudioFormatError)
    assert events[-1].details == {"rejected_input": "bidi_audio_input"}
    assert second.sent[-1] == BidiTextInputEvent("after the bad frame")
    assert agent.statistics().restarts == 1


async def test_proactive_restart_waits_for_a_due_reply(autojump_clock: trio.abc.Clock) -> None:
    """After the user's final words the model's answer is due: do not restart under it."""
    model = ScriptedModel(time_limit_s=100)
    async with BidiAgent(model=model, restart_margin_s=30) as agent:
        first = await model.wait_connection()
        await trio.sleep(69)
        first.push(transcript("what's the", "user", final=False))
        await receive_until(agent, BidiTranscriptStreamEvent)
        await trio.sleep(5)  # t=74: inside the margin, but the user is speaking
        first.push(transcript("what's the time?", "user"))
        await receive_until(agent, BidiTranscriptStreamEvent)
        await trio.sleep(1)  # t=75: the answer is due, still no restart
        assert len(model.connections) == 1
        first.push(*reply("r1", "Noon."))
        events = await receive_until(agent, BidiConnectionStartEvent)
        restarted_at = trio.current_time()
    assert of_type(events, BidiConnectionRestartEvent)
    assert restarted_at == pytest.approx(75.0)
    assert [m["role"] for m in model.connections[1].messages] == ["user", "assistant"]


async def test_proactive_restart_does_not_wait_forever_for_a_reply(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = ScriptedModel(time_limit_s=100)
    async with BidiAgent(model=model, restart_margin_s=30) as agent:
        await model.wait_connection()
        await trio.sleep(68)
        await agent.send("hello?")  # the model never answers
        events = await receive_until(agent, BidiConnectionStartEvent, 2)
        restarted_at = trio.current_time()
    assert of_type(events, BidiConnectionRestartEvent)
    # Due at t=70, the restart waits for the reply until t=73 (5 s after the input),
    # then goes ahead, well before the limit at t=100.
    assert restarted_at == pytest.approx(73.0)


class _SilentConnection:
    """A third-party provider's connection that never ends by itself, even past its deadline."""

    def __init__(self, index: int, deadline: float) -> None:
        self.connection_id = f"silent-{index}"
        self.deadline = deadline
        self._started = False

    async def send(self, event: Any) -> None:
        await trio.lowlevel.checkpoint()

    def receive(self) -> _SilentConnection:
        return self

    def __aiter__(self) -> _SilentConnection:
        return self

    async def __anext__(self) -> BidiConnectionStartEvent:
        if not self._started:
            self._started = True
            return BidiConnectionStartEvent(self.connection_id, "silent")
        await trio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def report_playback(self, played_ms: int) -> None:
        await trio.lowlevel.checkpoint()

    def restart_config(self) -> dict[str, Any]:
        return {}

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


class _SilentModel:
    model_id = "silent"

    def __init__(self) -> None:
        self.config = {"audio": {"input_rate": 16000, "output_rate": 24000, "channels": 1}}
        self.opened = 0

    @asynccontextmanager
    async def connect(self, **kwargs: Any) -> AsyncIterator[_SilentConnection]:
        self.opened += 1
        yield _SilentConnection(self.opened, trio.current_time() + 10)


async def test_agent_cuts_a_connection_that_overruns_its_deadline(
    autojump_clock: trio.abc.Clock,
) -> None:
    model = _SilentModel()
    async with BidiAgent(model=model, restart_margin_s=None, deadline_grace_s=5) as agent:
        events = await receive_until(agent, BidiConnectionStartEvent, 2)
        assert trio.current_time() == pytest.approx(15.0)  # deadline + grace
    restart = of_type(events, BidiConnectionRestartEvent)[0]
    assert "passed its deadline" in str(restart.timeout_error)
    assert model.opened == 2
