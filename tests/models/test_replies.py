"""The provider-neutral scripted replies: real speech resampled and cut into chunks."""

from __future__ import annotations

import numpy as np
import pytest

from trio_bidi.testing import SpokenReply
from trio_bidi.testing._replies import encode_chunks, speech_chunks, tone_chunk


def _sine(rate: int, seconds: float, hz: float = 440.0) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (8000 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


@pytest.mark.parametrize("source_rate", [16000, 24000, 48000])
def test_speech_is_resampled_to_the_output_rate_and_keeps_its_pitch(source_rate: int) -> None:
    reply = SpokenReply("x", pcm=_sine(source_rate, 0.5), pcm_rate=source_rate, chunk_ms=100)
    chunks = speech_chunks(reply, 24000)
    assert [len(c) for c in chunks] == [4800] * 5
    samples = np.frombuffer(b"".join(chunks), dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples))
    peak_hz = np.argmax(spectrum) * 24000 / len(samples)
    assert abs(peak_hz - 440) < 5


def test_without_pcm_the_reply_is_a_tone_of_audio_ms() -> None:
    chunks = speech_chunks(SpokenReply("x", audio_ms=250, chunk_ms=100), 24000)
    assert len(chunks) == 3
    assert chunks[0] == tone_chunk(100, 24000)
    assert len(encode_chunks(chunks)) == 3


def test_odd_bytes_and_empty_speech() -> None:
    assert speech_chunks(SpokenReply("x", pcm=b"\x01", pcm_rate=24000), 24000) == [b""]
    assert speech_chunks(SpokenReply("x", pcm=b"", pcm_rate=16000), 24000) == [b""]
