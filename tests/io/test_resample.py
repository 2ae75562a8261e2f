from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_bidi.io._resample import (
    StreamResampler,
    convert_channels,
    pcm16_from_bytes,
    pcm16_to_bytes,
)

RATES = [8000, 16000, 22050, 24000, 44100, 48000]


def tone(freq: float, rate: int, seconds: float, amplitude: float = 10000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16).reshape(-1, 1)


def run(resampler: StreamResampler, chunks: list[np.ndarray]) -> np.ndarray:
    parts = [resampler.process(c) for c in chunks]
    parts.append(resampler.flush())
    return np.concatenate(parts)


@settings(max_examples=60, deadline=None)
@given(
    in_rate=st.sampled_from(RATES),
    out_rate=st.sampled_from(RATES),
    channels=st.integers(1, 2),
    sizes=st.lists(st.integers(0, 700), max_size=12),
    seed=st.integers(0, 2**32 - 1),
)
def test_chunking_does_not_change_the_output(
    in_rate: int, out_rate: int, channels: int, sizes: list[int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    signal = rng.integers(-20000, 20000, size=(sum(sizes), channels)).astype(np.int16)
    chunks = np.split(signal, np.cumsum(sizes)[:-1]) if sizes else []
    whole = run(StreamResampler(in_rate, out_rate, channels), [signal])
    pieces = run(StreamResampler(in_rate, out_rate, channels), chunks)
    assert pieces.shape == whole.shape
    assert (pieces == whole).all()
    # Length: n input frames give ceil(n * out / in) output frames.
    assert len(whole) == math.ceil(len(signal) * out_rate / in_rate)
    assert whole.dtype == np.int16


@settings(max_examples=30, deadline=None)
@given(
    in_rate=st.sampled_from(RATES),
    out_rate=st.sampled_from(RATES),
    level=st.integers(-30000, 30000),
    extra=st.integers(0, 2000),
)
def test_a_constant_signal_stays_constant(
    in_rate: int, out_rate: int, level: int, extra: int
) -> None:
    resampler = StreamResampler(in_rate, out_rate)
    frames = 6 * resampler.delay + 10 + extra
    out = run(resampler, [np.full((frames, 1), level, dtype=np.int16)])
    edge = 2 * resampler.delay * out_rate // in_rate + 2
    middle = out[edge:-edge, 0].astype(int)
    assert middle.size > 0
    assert np.abs(middle - level).max() <= 2


@pytest.mark.parametrize(
    ("in_rate", "out_rate"), [(16000, 24000), (24000, 16000), (44100, 24000), (48000, 24000)]
)
def test_a_tone_comes_through_clean(in_rate: int, out_rate: int) -> None:
    out = run(StreamResampler(in_rate, out_rate), [tone(1000, in_rate, 0.5)])
    reference = tone(1000, out_rate, 0.5)[:, 0].astype(float)
    trimmed = slice(100, len(reference) - 100)
    error = out[trimmed, 0] - reference[trimmed]
    # Signal-to-noise above 60 dB (int16 rounding alone allows about 90 dB).
    assert (error**2).mean() < (reference[trimmed] ** 2).mean() * 1e-6


def test_downsampling_removes_what_the_new_rate_cannot_hold() -> None:
    out = run(StreamResampler(24000, 16000), [tone(10000, 24000, 0.5)])
    # A 10 kHz tone is above 8 kHz: it must not fold back into the band as 6 kHz.
    assert np.abs(out[200:-200]).max() < 100


def test_same_rate_is_the_identity() -> None:
    signal = tone(440, 24000, 0.1)
    resampler = StreamResampler(24000, 24000)
    assert (resampler.process(signal) == signal).all()
    assert resampler.flush().shape == (0, 1)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="positive"):
        StreamResampler(0, 16000)
    with pytest.raises(ValueError, match="channels"):
        StreamResampler(16000, 24000, channels=0)
    with pytest.raises(ValueError, match=r"\(frames, 2\)"):
        StreamResampler(16000, 24000, channels=2).process(np.zeros((4, 1), dtype=np.int16))


@given(
    frames=st.lists(st.tuples(st.integers(-32768, 32767), st.integers(-32768, 32767)), max_size=50)
)
def test_channel_conversion(frames: list[tuple[int, int]]) -> None:
    stereo = np.array(frames, dtype=np.int16).reshape(-1, 2)
    mono = convert_channels(stereo, 1)
    assert mono.shape == (len(frames), 1)
    expected = [(a + b) // 2 for a, b in frames]
    assert mono[:, 0].tolist() == expected
    back = convert_channels(mono, 2)
    assert (back[:, 0] == mono[:, 0]).all()
    assert (back[:, 1] == mono[:, 0]).all()
    assert convert_channels(stereo, 2) is stereo
    four = convert_channels(stereo, 4)
    assert (four[:, 3] == stereo[:, 1]).all()
    assert (convert_channels(four, 2) == stereo).all()


@given(data=st.binary(max_size=64), channels=st.integers(1, 2))
def test_pcm_bytes_round_trip(data: bytes, channels: int) -> None:
    if len(data) % (2 * channels):
        with pytest.raises(ValueError, match="whole number"):
            pcm16_from_bytes(data, channels)
    else:
        samples = pcm16_from_bytes(data, channels)
        assert samples.shape == (len(data) // (2 * channels), channels)
        assert pcm16_to_bytes(samples) == data
