"""BidiAgent basics on the scripted model: lifecycle, send/receive, history, state, run()."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from tests.agent._helpers import of_type, receive_until, reply, transcript
from trio_bidi import (
    AgentState,
    BidiAgent,
    BidiConfigurationError,
    BidiConnectionError,
    BidiConnectionStartEvent,
    BidiImageInputEvent,
    BidiOpenAIRealtimeModel,
    BidiResponseCompleteEvent,
    BidiStateError,
    BidiTextInputEvent,
    BidiTranscriptStreamEvent,
)
from trio_bidi.io import AgentHandle
from trio_bidi.testing import ScriptedModel


async def test_text_turn_reaches_model_and_history() -> None:
    model = ScriptedModel(
        responder=lambda e: reply("r1", "Hi there.") if isinstance(e, BidiTextInputEvent) else []
    )
    async with BidiAgent(model=model, system_prompt="Be brief.") as agent:
        await agent.send("hello")
        events = await receive_until(agent, BidiResponseCompleteEvent)
    connection = model.connections[0]
    assert connection.system_prompt == "Be brief."
    assert connection.sent == [BidiTextInputEvent("hello")]
    assert isinstance(events[0], BidiConnectionStartEvent)
    assert [e.text for e in of_type(events, BidiTranscriptStreamEvent)] == ["Hi there."]
    assert agent.messages == [
        {"role": "user", "content": [{"text": "hello"}]},
        {"role": "assistant", "content": [{"text": "Hi there."}]},
    ]
    assert len(model.connections) == 1


async def test_only_final_transcripts_enter_history() -> None:
    model = ScriptedModel()
    async with BidiAgent(model=model) as agent:
        connection = await model.wait_connection()
        connection.push(
            transcript("wh", "user", final=False),
            transcript("what time", "user", final=True),
            transcript("It is", final=False),
            transcript("It is noon.", final=True),
        )
        await receive_until(agent, BidiTranscriptStreamEvent, 4)
    assert agent.messages == [
        {"role": "user", "content": [{"text": "what time"}]},
        {"role": "assistant", "content": [{"text": "It is noon."}]},
    ]


async def test_initial_messages_are_replayed_and_copied() -> None:
    history: list[Any] = [{"role": "user", "content": [{"text": "earlier"}]}]
    model = ScriptedModel()
    agent = BidiAgent(model=model, messages=history)
    history.append({"role": "assistant", "content": [{"text": "not seen"}]})
    async with agent:
        connection = await model.wait_connection()
    assert connection.messages == [{"role": "user", "content": [{"text": "earlier"}]}]
    assert agent.messages == [{"role": "user", "content": [{"text": "earlier"}]}]


async def test_send_accepts_events_and_browser_dicts() -> None:
    model = ScriptedModel()
    async with BidiAgent(model=model) as agent:
        connection = await model.wait_connection()
        await agent.send(BidiImageInputEvent("aGVsbG8=", "image/png"))
        await agent.send({"type": "bidi_text_input", "text": "from a browser", "role": "user"})
        with pytest.raises(ValueError, match="unknown type 'bidi_nonsense'"):
            await agent.send({"type": "bidi_nonsense"})
        with pytest.raises(ValueError, match="output event"):
            await agent.send({"type": "bidi_interruption", "reason": "user_speech"})
        with pytest.raises(ValueError, match="'text'"):
            await agent.send({"type": "bidi_text_input", "role": "user"})
        with pytest.raises(TypeError, match="not int"):
            await agent.send(42)  # type: ignore[arg-type]
    assert connection.sent == [
        BidiImageInputEvent("aGVsbG8=", "image/png"),
        BidiTextInputEvent("from a browser"),
    ]


async def test_use_before_start_and_double_start_are_clear_errors() -> None:
    model = ScriptedModel()
    agent = BidiAgent(model=model)
    with pytest.raises(BidiStateError, match="not running"):
        await agent.send("hi")
    with pytest.raises(BidiStateError, match="not running"):
        agent.receive()
    async with agent:
        with pytest.raises(BidiStateError, match="already started"):
            async with agent:
                pass  # pragma: no cover
        assert agent.running
        assert isinstance(agent, AgentHandle)  # what inputs and outputs are given
    assert not agent.running
    with pytest.raises(BidiStateError, match="not running"):
        await agent.send("after")
    # A stopped agent can start again and continues its history.
    async with agent:
        await agent.send("again")
    assert len(model.connections) == 2
    assert agent.messages == [{"role": "user", "content": [{"text": "again"}]}]


async def test_first_connection_failure_raises_from_async_with() -> None:
    model = ScriptedModel(connect_failures=[BidiConnectionError("refused")])
    agent = BidiAgent(model=model)
    with pytest.raises(BidiConnectionError, match="refused"):
        async with agent:
            pass  # pragma: no cover
    assert not agent.running


async def test_body_error_propagates_unchanged_and_stops_everything() -> None:
    model = ScriptedModel()

    async def body() -> None:
        async with BidiAgent(model=model):
            await model.wait_connection()
            raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):
        await body()
    assert not model.connections[0].is_open


async def test_model_string_selects_openai_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    agent = BidiAgent(model="gpt-realtime-mini")
    assert isinstance(agent.model, BidiOpenAIRealtimeModel)
    assert agent.model.model_id == "gpt-realtime-mini"
    with pytest.raises(TypeError, match="model must be"):
        BidiAgent(model=3)  # type: ignore[arg-type]


def test_unknown_setting_is_named() -> None:
    with pytest.raises(BidiConfigurationError, match="tool_timeout_ss"):
        BidiAgent(model=ScriptedModel(), tool_timeout_ss=3)
    with pytest.raises(BidiConfigurationError, match="gap_audio_buffer_s must be >= 0"):
        BidiAgent(model=ScriptedModel(), gap_audio_buffer_s=-1)


def test_state_is_json_checked_and_copied() -> None:
    initial = {"count": 1, "items": [1, 2]}
    agent = BidiAgent(model=ScriptedModel(), state=initial)
    initial["items"].append(3)  # type: ignore[attr-defined]
    assert agent.state["items"] == [1, 2]
    agent.state["name"] = "x"
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        agent.state["bad"] = object()
    assert json.loads(json.dumps(agent.state.to_dict())) == {
        "count": 1,
        "items": [1, 2],
        "name": "x",
    }
    assert isinstance(
        BidiAgent(model=ScriptedModel(), state=AgentState({"a": 1})).state, AgentState
    )


class _ListInput:
    def __init__(self, items: list[Any]) -> None:
        self.items = list(items)
        self.started_with: Any = None
        self.stopped = False

    def start(self, agent: BidiAgent) -> None:
        self.started_with = agent

    async def __call__(self) -> Any:
        if not self.items:
            await trio.sleep_forever()
        await trio.sleep(0.1)
        return self.items.pop(0)

    async def stop(self) -> None:
        self.stopped = True


class _Recorder:
    def __init__(self, fail_stop: str | None = None) -> None:
        self.events: list[Any] = []
        self.fail_stop = fail_stop
        self.stopped = False

    async def __call__(self, event: Any) -> None:
        self.events.append(event)

    def stop(self) -> None:
        self.stopped = True
        if self.fail_stop:
            raise RuntimeError(self.fail_stop)


async def test_run_wires_inputs_and_outputs_and_ends_with_the_conversation(
    autojump_clock: trio.abc.Clock,
) -> None:
    from trio_bidi import stop_conversation

    def responder(event: Any) -> list[Any]:
        if isinstance(event, BidiTextInputEvent) and event.text == "bye":
            from tests.agent._helpers import tool_use

            return [tool_use("t1", "stop_conversation")]
        return []

    model = ScriptedModel(responder=responder)
    agent = BidiAgent(model=model, tools=[stop_conversation])
    source = _ListInput(["hello", {"type": "bidi_text_input", "text": "bye", "role": "user"}])
    sink = _Recorder()
    with trio.fail_after(10):
        await agent.run(inputs=[source], outputs=[sink], invocation_state={"user": "u1"})
    assert source.started_with is agent
    assert source.stopped
    assert sink.stopped
    assert [e.text for e in model.connections[0].sent if isinstance(e, BidiTextInputEvent)] == [
        "hello",
        "bye",
    ]
    assert sink.events[-1].type == "bidi_connection_close"
    assert sink.events[-1].reason == "user_request"
    assert agent.invocation_state == {"user": "u1"}
    assert not agent.running


async def test_run_aggregates_stop_errors(autojump_clock: trio.abc.Clock) -> None:
    model = ScriptedModel()
    agent = BidiAgent(model=model)
    first, second = _Recorder("first broke"), _Recorder("second broke")

    class _Failing:
        async def __call__(self) -> Any:
            await trio.sleep(1)
            raise OSError("microphone unplugged")

    with pytest.raises(BaseExceptionGroup) as info:
        await agent.run(inputs=[_Failing()], outputs=[first, second])
    # Both stops ran; their errors come together with the input's error.
    assert first.stopped
    assert second.stopped
    assert sorted(str(e) for e in info.value.exceptions) == [
        "first broke",
        "microphone unplugged",
        "second broke",
    ]
    # Only stops failing: their errors together.
    third, fourth = _Recorder("third broke"), _Recorder("fourth broke")
    stopper = _ListInput([])

    async def end_soon() -> None:
        await trio.sleep(1)
        loop = agent._loop
        assert loop is not None
        loop.request_stop("user_request")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(end_soon)
        with pytest.raises(ExceptionGroup) as group:
            await agent.run(inputs=[stopper], outputs=[third, fourth])
    assert sorted(str(e) for e in group.value.exceptions) == ["fourth broke", "third broke"]
    assert stopper.stopped


async def test_statistics_snapshot(autojump_clock: trio.abc.Clock) -> None:
    model = ScriptedModel()
    agent = BidiAgent(model=model)
    assert agent.statistics().connections_opened == 0
    async with agent:
        await model.wait_connection()
        stats = agent.statistics()
        assert stats.connected
        assert stats.connections_opened == 1
        assert stats.connection_age_s == 0.0
        await trio.sleep(12)
        assert agent.statistics().connection_age_s == 12.0
        with pytest.raises(AttributeError):
            stats.restarts = 3  # type: ignore[misc]
    assert not agent.statistics().connected


async def test_input_the_provider_rejects_raises_from_send() -> None:
    from trio_bidi import BidiAudioFormatError

    def responder(event: Any) -> list[Any]:
        if isinstance(event, BidiTextInputEvent) and event.text == "bad":
            raise BidiAudioFormatError("48 kHz audio on a 24 kHz session")
        return []

    model = ScriptedModel(responder=responder)
    async with BidiAgent(model=model) as agent:
        connection = await model.wait_connection()
        with pytest.raises(BidiAudioFormatError, match="48 kHz"):
            await agent.send("bad")
        await agent.send("good")
    assert len(connection.sent) == 2  # the scripted provider records, then rejects
    assert agent.messages == [{"role": "user", "content": [{"text": "good"}]}]
