"""Trio's contract on both providers' connections and emulators.

Fresh exceptions (a failure is reported by a new exception each time, chained to the
original), every async method a checkpoint, and emulators that let the caller's own
exception through as itself.
"""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

from tests.fixtures.gemini import assert_no_violations, gemini_model, validated_gemini_emulator
from tests.fixtures.openai import (
    assert_no_openai_violations,
    openai_model,
    validated_openai_emulator,
)
from trio_bidi.errors import BidiConnectionError
from trio_bidi.events import BidiAudioInputEvent, BidiConnectionStartEvent, BidiTextInputEvent
from trio_bidi.models._base import ConnectionBase
from trio_bidi.testing import GeminiLiveEmulator, OpenAIRealtimeEmulator

_SILENCE_16K = "AAAA" * 160  # 20 ms of 16 kHz PCM silence, base64
_SILENCE_24K = "AAAA" * 240  # 20 ms of 24 kHz PCM silence, base64


@asynccontextmanager
async def _openai() -> AsyncIterator[tuple[Any, ConnectionBase, BidiAudioInputEvent]]:
    async with validated_openai_emulator() as emulator:
        async with openai_model(emulator).connect() as connection:
            assert isinstance(connection, ConnectionBase)
            yield emulator, connection, BidiAudioInputEvent(_SILENCE_24K, "pcm", 24000, 1)
        assert_no_openai_violations(emulator)


@asynccontextmanager
async def _gemini() -> AsyncIterator[tuple[Any, ConnectionBase, BidiAudioInputEvent]]:
    async with validated_gemini_emulator() as emulator:
        async with gemini_model(emulator).connect() as connection:
            assert isinstance(connection, ConnectionBase)
            await emulator.wait_for_session()
            yield emulator, connection, BidiAudioInputEvent(_SILENCE_16K, "pcm", 16000, 1)
        assert_no_violations(emulator)


Opener = Callable[[], AbstractAsyncContextManager[tuple[Any, ConnectionBase, BidiAudioInputEvent]]]
PROVIDERS = pytest.mark.parametrize("open_provider", [_openai, _gemini], ids=["openai", "gemini"])


def _frames(exc: BaseException | None) -> int:
    """Traceback frames of an exception and everything it is chained to."""
    total = 0
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        total += len(traceback.extract_tb(exc.__traceback__))
        exc = exc.__cause__ or exc.__context__
    return total


@PROVIDERS
async def test_a_failed_connection_raises_a_fresh_error_each_time(open_provider: Opener) -> None:
    async with open_provider() as (emulator, connection, audio):
        events = connection.receive()
        assert isinstance(await events.__anext__(), BidiConnectionStartEvent)
        await emulator.drop()
        with pytest.raises(BidiConnectionError) as first:
            async for _ in events:
                pass
        original = first.value.__cause__
        assert original is not None
        raised: list[BidiConnectionError] = []
        for _ in range(1000):
            with pytest.raises(BidiConnectionError) as info:
                await connection.send(audio)
            raised.append(info.value)
        # Each is new, keeps the data, and is chained to the same original failure.
        assert len({id(e) for e in raised}) == 1000
        assert all(e.__cause__ is original for e in raised)
        assert {e.code for e in raised} == {first.value.code}
        assert _frames(raised[-1]) == _frames(raised[0])
        assert _frames(raised[-1]) < 40
        with pytest.raises(BidiConnectionError) as again:
            await events.__anext__()
        assert again.value is not first.value


@PROVIDERS
async def test_aclose_of_a_closed_connection_is_a_checkpoint(open_provider: Opener) -> None:
    async with open_provider() as (_, connection, _audio):
        await connection.aclose()
        with trio.testing.assert_checkpoints():
            await connection.aclose()


@PROVIDERS
async def test_send_is_a_cancel_point_that_sends_nothing_when_cancelled(
    open_provider: Opener,
) -> None:
    async with open_provider() as (emulator, connection, audio):
        before = len(emulator.client_messages)
        with trio.CancelScope() as scope:
            scope.cancel()
            await connection.send(BidiTextInputEvent("never sent"))
        assert scope.cancelled_caught
        await connection.send(audio)
        kind = (
            "input_audio_buffer.append"
            if isinstance(emulator, OpenAIRealtimeEmulator)
            else "realtimeInput.audio"
        )
        await emulator.wait_for_client_message(kind)
        sent = emulator.client_messages[before:]
        assert len(sent) == 1
        assert "never sent" not in repr(sent)


@PROVIDERS
async def test_a_run_of_sends_passes_through_the_scheduler(open_provider: Opener) -> None:
    async with open_provider() as (_, connection, audio):
        with trio.testing.assert_checkpoints():
            for _ in range(32):
                await connection.send(audio)


@PROVIDERS
async def test_receive_is_a_cancel_point_that_takes_nothing_when_cancelled(
    open_provider: Opener,
) -> None:
    async with open_provider() as (_, connection, _audio):
        events = connection.receive()
        with trio.CancelScope() as scope:
            scope.cancel()
            await events.__anext__()
        assert scope.cancelled_caught
        # The start event was not consumed by the cancelled step.
        assert isinstance(await events.__anext__(), BidiConnectionStartEvent)


async def test_receive_over_a_full_buffer_still_yields_to_other_tasks() -> None:
    async with _openai() as (emulator, connection, _audio):
        await connection.send(BidiTextInputEvent("fill the buffer"))
        await emulator.wait_for_client_message("response.create")
        await emulator.wait_response_done()
        await trio.sleep(0.05)  # let the reader fill the event buffer
        events = connection.receive()
        with trio.testing.assert_checkpoints():
            for _ in range(16):
                await events.__anext__()


@pytest.mark.parametrize("emulator_class", [OpenAIRealtimeEmulator, GeminiLiveEmulator])
async def test_emulators_let_the_callers_exception_through(emulator_class: type[Any]) -> None:
    with pytest.raises(ValueError, match="mine"):
        async with emulator_class():
            raise ValueError("mine")
    with pytest.raises(KeyboardInterrupt):
        async with emulator_class():
            raise KeyboardInterrupt


@PROVIDERS
async def test_report_playback_is_a_checkpoint_on_every_path(open_provider: Opener) -> None:
    async with open_provider() as (_, connection, _audio):
        with trio.testing.assert_checkpoints():
            await connection.report_playback(100)  # nothing to truncate yet
        await connection.aclose()
        with trio.testing.assert_checkpoints():
            await connection.report_playback(100)  # closed
