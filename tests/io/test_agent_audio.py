"""BidiAudioIO under a real BidiAgent and the OpenAI provider, on the virtual devices.

The playback position the speaker counts is what the model is told to keep of an
interrupted reply (``conversation.item.truncate``); a connection restart does not lose
audio already queued for the speaker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import ModuleType

import pytest
import trio

from tests.fixtures.openai import (
    assert_no_openai_violations,
    openai_model,
    validated_openai_emulator,
)
from trio_bidi import BidiAgent
from trio_bidi.events import (
    BidiAudioStreamEvent,
    BidiConnectionRestartEvent,
    BidiInterruptionEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    ToolResultEvent,
)
from trio_bidi.io import BidiAudioIO
from trio_bidi.testing import OpenAIRealtimeEmulator, SpokenReply

from .test_audio_device import capturing, loud

pytestmark = pytest.mark.audio_device


class Events:
    """An output that keeps the agent's events and lets the test wait for one."""

    def __init__(self) -> None:
        self.seen: list[BidiOutputEvent | ToolResultEvent] = []
        self._changed = trio.Event()

    async def __call__(self, event: BidiOutputEvent | ToolResultEvent) -> None:
        self.seen.append(event)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, kind: type, count: int = 1) -> None:
        while sum(isinstance(e, kind) for e in self.seen) < count:
            await self._changed.wait()


@pytest.fixture
async def emulator() -> AsyncIterator[OpenAIRealtimeEmulator]:
    # No server VAD: the microphone (silence from vmic) must not make turns of its own.
    async with validated_openai_emulator(vad_threshold=None) as running:
        yield running
    assert_no_openai_violations(running)


async def test_barge_in_truncates_the_reply_to_what_the_speaker_played(
    sd: ModuleType, emulator: OpenAIRealtimeEmulator
) -> None:
    audio = BidiAudioIO(input_device="vmic", output_device="vspeaker")
    events = Events()
    # 4 s of reply, sent as fast as the socket takes it, held open for the barge-in.
    emulator.queue(SpokenReply("A long reply.", audio_ms=4000, chunk_ms=100, hold=True))
    with capturing(sd, "vspeaker_monitor", 24000) as capture:
        async with BidiAgent(model=openai_model(emulator)) as agent, trio.open_nursery() as n:
            n.start_soon(agent.run, [audio.input()], [audio.output(), events])
            with trio.fail_after(15):
                await agent.send("Talk for a while.")
                await events.wait_for(BidiAudioStreamEvent)
                await trio.sleep(1.2)
                await emulator.barge_in()
                await events.wait_for(BidiInterruptionEvent)
                message = await emulator.wait_for_client_message("conversation.item.truncate")
                await trio.sleep(0.5)
            n.cancel_scope.cancel()
    [(item_id, end_ms)] = emulator.sessions[0].truncations
    assert message["item_id"] == item_id
    assert message["audio_end_ms"] == end_ms
    assert 1000 <= end_ms <= 2000  # about 1.2 s played when the user spoke
    # What came out of the speaker is what the model was told the user heard.
    heard_ms = int(loud(capture.samples, 24000).sum()) * 10
    assert abs(heard_ms - end_ms) < 150
    stats = audio.statistics()
    assert stats.output_cleared_ms > 1500  # the unplayed rest of the 4 s
    assert stats.callback_errors == 0


async def test_a_restart_does_not_lose_queued_audio(
    sd: ModuleType, emulator: OpenAIRealtimeEmulator
) -> None:
    audio = BidiAudioIO(input_device="vmic", output_device="vspeaker")
    events = Events()
    emulator.queue(SpokenReply("Two seconds of audio.", audio_ms=2000, chunk_ms=100))
    with capturing(sd, "vspeaker_monitor", 24000) as capture:
        async with BidiAgent(model=openai_model(emulator)) as agent, trio.open_nursery() as n:
            n.start_soon(agent.run, [audio.input()], [audio.output(), events])
            with trio.fail_after(15):
                await agent.send("Say something.")
                await events.wait_for(BidiResponseCompleteEvent)
                # All 2 s arrived at once; the connection breaks while it plays.
                await trio.sleep(0.3)
                await emulator.drop(emulator.sessions[0])
                await events.wait_for(BidiConnectionRestartEvent)
                await audio.output().wait_played()
                await trio.sleep(0.3)
            n.cancel_scope.cancel()
    assert len(emulator.sessions) == 2
    assert emulator.sessions[0].truncations == []
    # All of it came out of the speaker: nothing was cleared or dropped by the restart.
    heard_ms = int(loud(capture.samples, 24000).sum()) * 10
    assert abs(heard_ms - 2000) < 150
    stats = audio.statistics()
    assert stats.output_cleared_ms == 0
    assert stats.output_dropped_ms == 0
    assert stats.output_played_ms >= 2000
