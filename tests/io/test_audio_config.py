"""BidiAudioIO's settings (its own and Strands' keys) and its bounded stop, without devices."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
import trio

from trio_bidi.errors import BidiConfigurationError
from trio_bidi.io import BidiAudioIO
from trio_bidi.io._audio import STOP_TIMEOUT_S

STRANDS_CONFIG: dict[str, Any] = {
    "input_device_index": 3,
    "output_device_index": 4,
    "input_frames_per_buffer": 256,
    "output_frames_per_buffer": 1024,
    "input_buffer_size": 10,
    "output_buffer_size": 40,
}


def test_strands_keys_are_accepted() -> None:
    audio = BidiAudioIO(**STRANDS_CONFIG)
    assert (audio.input_device, audio.output_device) == (3, 4)
    assert (audio.input_blocksize, audio.output_blocksize) == (256, 1024)
    # Strands' buffer sizes count blocks of frames_per_buffer frames.
    assert audio.buffer_frames("input", 16000) == 10 * 256
    assert audio.buffer_frames("output", 24000) == 40 * 1024


def test_strands_none_values_mean_the_defaults() -> None:
    audio = BidiAudioIO(
        input_device_index=None,
        input_buffer_size=None,
        output_buffer_size=None,
        input_frames_per_buffer=None,
    )
    assert audio.input_device is None
    assert audio.input_blocksize == audio.blocksize == 512
    assert audio.buffer_frames("input", 16000) == 16000  # 1000 ms
    assert audio.buffer_frames("output", 24000) == 24000 * 120


def test_own_keys_still_work() -> None:
    audio = BidiAudioIO(input_device="vmic", output_device=2, blocksize=480, input_buffer_ms=250)
    assert (audio.input_device, audio.output_device) == ("vmic", 2)
    assert (audio.input_blocksize, audio.output_blocksize) == (480, 480)
    assert audio.buffer_frames("input", 48000) == 12000
    # The same device in both spellings is fine.
    assert BidiAudioIO(input_device=3, input_device_index=3).input_device == 3


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"input_device": "mic", "input_device_index": 1}, "name different devices"),
        ({"output_device": 0, "output_device_index": 1}, "name different devices"),
        ({"input_buffer_ms": 100, "input_buffer_size": 2}, "not both"),
        ({"output_buffer_ms": 100, "output_buffer_size": 2}, "not both"),
        ({"input_frames_per_buffer": 0}, "input_frames_per_buffer must be a positive int"),
        ({"output_buffer_size": -1}, "output_buffer_size must be a positive int"),
        ({"input_device_index": -2}, "input_device_index must be a device index"),
        ({"output_device_index": "speaker"}, "output_device_index must be a device index"),
        ({"blocksize": True}, "blocksize must be a positive int"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(BidiConfigurationError, match=message):
        BidiAudioIO(**settings)


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(TypeError, match="input_devise"):
        BidiAudioIO(input_devise=1)  # type: ignore[call-arg]


class HangingStream:
    """Stands in for a ``sounddevice`` stream whose close blocks (a wedged driver)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls: list[str] = []

    def abort(self, ignore_errors: bool = True) -> None:
        self.calls.append("abort")
        self.release.wait(30)

    def close(self, ignore_errors: bool = True) -> None:
        self.calls.append("close")


async def test_stop_is_bounded_when_the_device_hangs(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    audio = BidiAudioIO()
    mic, speaker = audio.input(), audio.output()
    streams = [HangingStream(), HangingStream()]
    mic._stream, speaker._stream = streams
    try:
        start = trio.current_time()
        with (
            caplog.at_level(logging.WARNING, logger="trio_bidi.io._audio"),
            trio.CancelScope() as scope,
        ):
            scope.cancel()  # even a cancelled caller gets the devices closed (bounded)
            await mic.stop()
            await speaker.stop()
        elapsed = trio.current_time() - start
        assert elapsed == pytest.approx(2 * STOP_TIMEOUT_S)
        assert not mic.is_open
        assert not speaker.is_open
        warnings = [r for r in caplog.records if "did not close the device in time" in r.message]
        assert len(warnings) == 2
        assert not any("close" in stream.calls for stream in streams)  # still hanging
    finally:
        for stream in streams:
            stream.release.set()  # let the abandoned worker threads finish
    for _ in range(100):
        if all(stream.calls == ["abort", "close"] for stream in streams):
            break
        await trio.to_thread.run_sync(threading.Event().wait, 0.01)
    assert all(stream.calls == ["abort", "close"] for stream in streams)


async def test_stop_without_a_stream_is_a_checkpoint() -> None:
    mic = BidiAudioIO().input()
    with trio.testing.assert_checkpoints():
        await mic.stop()
