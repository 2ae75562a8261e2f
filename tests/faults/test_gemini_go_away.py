"""Gemini Live ``goAway``: restart within ``timeLeft`` with the newest handle, not the stale one.

The service keeps a connection for ``timeLeft`` after ``goAway`` and sends a fresh
resumable ``sessionResumptionUpdate`` right after it. The trace below is replayed frame by
frame as the service sends it (audio shortened); the client must end the connection only
once it holds the fresh handle (or the turn in progress ended), and at the latest
``go_away_margin_s`` before ``timeLeft`` runs out.
"""

from __future__ import annotations

import json

import pytest
import trio

from tests.fixtures.gemini import assert_no_violations, gemini_model, validated_gemini_emulator
from tests.models._shared import collect_until, is_complete
from trio_bidi.errors import BidiModelTimeoutError
from trio_bidi.events import (
    BidiAudioStreamEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiTextInputEvent,
)
from trio_bidi.models import BidiConnection
from trio_bidi.testing import EmulatedGeminiSession, SpokenReply

_AUDIO = "AAAA" * 120
# A turn, its handle, then goAway and the fresh handle the service sends right after it.
_TRACE = [
    {
        "serverContent": {
            "modelTurn": {
                "parts": [{"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": _AUDIO}}]
            }
        }
    },
    {"serverContent": {"outputTranscription": {"text": "Sure, one moment."}}},
    {"serverContent": {"generationComplete": True}},
    {
        "serverContent": {"turnComplete": True},
        "usageMetadata": {"promptTokenCount": 40, "responseTokenCount": 12, "totalTokenCount": 52},
    },
    {"sessionResumptionUpdate": {"newHandle": "trace-handle-before", "resumable": True}},
    {"goAway": {"timeLeft": "50s"}},
    {"sessionResumptionUpdate": {"newHandle": "trace-handle-after", "resumable": True}},
]


async def _drain_until_timeout(connection: BidiConnection) -> list[BidiOutputEvent]:
    events: list[BidiOutputEvent] = []

    async def drain() -> None:
        async for event in connection.receive():
            events.append(event)

    with pytest.raises(BidiModelTimeoutError) as info:
        await drain()
    events.append(info.value)  # type: ignore[arg-type]
    return events


async def test_a_replayed_service_trace_restarts_with_the_handle_sent_after_go_away(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def replay(session: EmulatedGeminiSession, message: object) -> None:
        for frame in _TRACE:
            await session.send_raw(json.dumps(frame))

    async with validated_gemini_emulator() as emulator:
        emulator.on_client("clientContent", replay, replace_default=True)
        async with gemini_model(emulator).connect() as connection:
            await connection.send(BidiTextInputEvent("book it"))
            start = trio.current_time()
            events = await _drain_until_timeout(connection)
            elapsed = trio.current_time() - start
        assert_no_violations(emulator)
    error = events[-1]
    assert isinstance(error, BidiModelTimeoutError)
    assert error.restart_config == {"session_handle": "trace-handle-after"}
    assert "going away (50 s left)" in str(error)
    assert any(isinstance(e, BidiResponseCompleteEvent) for e in events)
    assert elapsed < 1.0  # right after the fresh handle, not at the end of timeLeft


async def test_go_away_during_a_turn_lets_the_turn_finish_first(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with validated_gemini_emulator() as emulator:
        emulator.queue(SpokenReply("a long answer", hold=True))
        async with gemini_model(emulator).connect() as connection:
            await connection.send(BidiTextInputEvent("talk"))
            session = await emulator.wait_for_session()
            await collect_until(connection, lambda e: isinstance(e, BidiAudioStreamEvent))
            assert session.response_active
            await session.go_away(time_left_s=30)  # a fresh handle follows at once
            await trio.sleep(5)
            assert connection.is_open  # the turn is still going: no restart yet
            await emulator.finish()
            events = await _drain_until_timeout(connection)
        assert_no_violations(emulator)
    completes = [e for e in events if isinstance(e, BidiResponseCompleteEvent)]
    assert [c.stop_reason for c in completes] == ["complete"]
    error = events[-1]
    assert isinstance(error, BidiModelTimeoutError)
    # The handle issued after the turn ended: the newest one.
    assert error.restart_config == {"session_handle": session.handles[-1]}
    assert len(session.handles) == 2


@pytest.mark.parametrize(("margin", "restart_at"), [(None, 19.0), (5.0, 15.0)])
async def test_without_a_fresh_handle_the_restart_comes_a_margin_before_time_left(
    autojump_clock: trio.abc.Clock, margin: float | None, restart_at: float
) -> None:
    client = {} if margin is None else {"go_away_margin_s": margin}
    async with validated_gemini_emulator() as emulator:
        async with gemini_model(emulator, **client).connect() as connection:
            await connection.send(BidiTextInputEvent("hello"))
            await collect_until(connection, is_complete)
            session = await emulator.wait_for_session()
            stale = session.handles[-1]
            start = trio.current_time()
            await session.go_away(time_left_s=20, issue_handle=False)
            events = await _drain_until_timeout(connection)
            elapsed = trio.current_time() - start
        assert_no_violations(emulator)
    error = events[-1]
    assert isinstance(error, BidiModelTimeoutError)
    assert error.restart_config == {"session_handle": stale}
    assert restart_at - 0.1 <= elapsed <= restart_at + 0.1


async def test_expire_ends_like_the_service_and_the_client_leaves_in_time(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with validated_gemini_emulator() as emulator:
        model = gemini_model(emulator)
        async with model.connect() as connection:
            await connection.send(BidiTextInputEvent("hello"))
            await collect_until(connection, is_complete)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(emulator.expire)
                events = await _drain_until_timeout(connection)
        session = emulator.sessions[0]
        error = events[-1]
        assert isinstance(error, BidiModelTimeoutError)
        assert error.restart_config == {"session_handle": session.handles[-1]}
        async with model.connect(**error.restart_config):
            second = await emulator.wait_session_count(2)
        assert second.resumed_from == session.handles[-1]
        assert_no_violations(emulator)
