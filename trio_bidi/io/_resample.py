"""Sample-rate and channel conversion for 16-bit PCM, in numpy.

`StreamResampler` converts a stream that arrives in chunks of any size: feeding
the chunks one by one gives exactly the samples that one call on the whole signal gives.
It is a polyphase windowed-sinc (Kaiser) filter for the rational ratio of the two rates
(16 kHz -> 24 kHz is 3/2, 44.1 kHz -> 24 kHz is 80/147), so a speech band tone comes
through with more than 60 dB of signal-to-noise and no aliasing.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["StreamResampler", "convert_channels", "pcm16_from_bytes", "pcm16_to_bytes"]

Int16Array = npt.NDArray[np.int16]
"""A ``(frames, channels)`` array of 16-bit samples."""


def pcm16_from_bytes(data: bytes, channels: int) -> Int16Array:
    """Return 16-bit little-endian PCM bytes as a ``(frames, channels)`` array.

    Raises:
        ValueError: ``data`` is not a whole number of frames.
    """
    frame_bytes = 2 * channels
    if len(data) % frame_bytes:
        raise ValueError(
            f"PCM data of {len(data)} bytes is not a whole number of {channels}-channel "
            f"16-bit frames ({frame_bytes} bytes each)"
        )
    samples: Int16Array = np.frombuffer(data, dtype="<i2").astype(np.int16)
    return samples.reshape(-1, channels)


def pcm16_to_bytes(samples: Int16Array) -> bytes:
    """Return a ``(frames, channels)`` int16 array as little-endian PCM bytes."""
    return np.ascontiguousarray(samples, dtype="<i2").tobytes()


def convert_channels(samples: Int16Array, channels: int) -> Int16Array:
    """Convert ``(frames, n)`` audio to ``channels`` channels.

    Mono becomes several channels by copying; several channels become mono by averaging;
    other changes keep the first channels and repeat the last one.
    """
    have = samples.shape[1]
    if have == channels:
        return samples
    if channels == 1:
        mixed: Int16Array = (samples.astype(np.int32).sum(axis=1) // have).astype(np.int16)
        return mixed.reshape(-1, 1)
    if have == 1:
        return np.repeat(samples, channels, axis=1)
    if have > channels:
        return np.ascontiguousarray(samples[:, :channels])
    extra = np.repeat(samples[:, -1:], channels - have, axis=1)
    return np.concatenate([samples, extra], axis=1)


def _kaiser(x: npt.NDArray[np.float64], beta: float) -> npt.NDArray[np.float64]:
    """The Kaiser window at positions ``x`` in [-1, 1] (zero outside)."""
    inside = np.abs(x) <= 1.0
    arg = np.sqrt(np.clip(1.0 - x * x, 0.0, None))
    return np.where(inside, np.i0(beta * arg) / np.i0(beta), 0.0)


class StreamResampler:
    """Resample a chunked stream of 16-bit PCM from one rate to another.

    Output sample ``k`` is the input signal at time ``k * in_rate / out_rate`` (in input
    samples), so ``n`` input frames give ``ceil(n * out_rate / in_rate)`` output frames
    once `flush` is called; before that, the last few outputs wait for the input
    that follows them (``delay`` input frames).

    Args:
        in_rate: Input sample rate in Hz.
        out_rate: Output sample rate in Hz.
        channels: Channels of the audio (the same in and out).
        zero_crossings: Filter half-length in zero crossings of the sinc: quality vs cost.
        rolloff: Passband edge as a fraction of the lower Nyquist frequency.
    """

    def __init__(
        self,
        in_rate: int,
        out_rate: int,
        channels: int = 1,
        *,
        zero_crossings: int = 16,
        rolloff: float = 0.94,
    ) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
        if channels < 1:
            raise ValueError(f"channels must be at least 1, got {channels}")
        divisor = math.gcd(in_rate, out_rate)
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.channels = channels
        self._up = out_rate // divisor  # L: output samples per ...
        self._down = in_rate // divisor  # M: ... input samples
        self._identity = self._up == self._down
        cutoff = min(1.0, self._up / self._down) * rolloff
        self._half = math.ceil(zero_crossings / cutoff) if not self._identity else 0
        # _table[p] holds the taps for phase p/L, applied to inputs
        # floor(t) - half + 1 ... floor(t) + half.
        offsets = np.arange(-self._half + 1, self._half + 1, dtype=np.float64)
        phases = np.arange(self._up, dtype=np.float64)[:, None] / self._up
        tau = phases - offsets[None, :]
        table = cutoff * np.sinc(cutoff * tau) * _kaiser(tau / (self._half or 1), 9.0)
        sums = table.sum(axis=1, keepdims=True)
        self._table = (table / np.where(sums == 0, 1.0, sums)).astype(np.float32)
        self._history = np.zeros((self._half, channels), dtype=np.float32)
        self._consumed = 0  # input frames seen (including history)
        self._produced = 0  # output frames produced
        self._base = -self._half  # stream index of _history[0]

    @property
    def delay(self) -> int:
        """Input frames an output waits for (the filter's look-ahead)."""
        return self._half

    def reset(self) -> None:
        """Forget the stream: the next input starts a new one at time 0."""
        self._history = np.zeros((self._half, self.channels), dtype=np.float32)
        self._consumed = 0
        self._produced = 0
        self._base = -self._half

    def process(self, samples: Int16Array) -> Int16Array:
        """Resample the next chunk; returns the outputs that are complete so far."""
        if samples.ndim != 2 or samples.shape[1] != self.channels:
            raise ValueError(
                f"expected a (frames, {self.channels}) array, got shape {samples.shape}"
            )
        if self._identity:
            self._consumed += len(samples)
            self._produced += len(samples)
            return samples.astype(np.int16, copy=True)
        self._history = np.concatenate([self._history, samples.astype(np.float32)])
        self._consumed += len(samples)
        return self._emit(available=self._consumed)

    def flush(self) -> Int16Array:
        """Finish the stream (as if followed by silence); returns the remaining outputs."""
        if self._identity:
            return np.zeros((0, self.channels), dtype=np.int16)
        total = -(-self._consumed * self._up // self._down)  # ceil
        pad = np.zeros((self._half + 1, self.channels), dtype=np.float32)
        self._history = np.concatenate([self._history, pad])
        out = self._emit(available=self._consumed + self._half + 1, limit=total)
        self.reset()
        return out

    def _emit(self, available: int, limit: int | None = None) -> Int16Array:
        # Output k needs inputs up to floor(k*M/L) + half, all < available.
        last_input = available - 1 - self._half
        count_end = 0 if last_input < 0 else last_input * self._up // self._down + 1
        if limit is not None:
            count_end = min(count_end, limit)
        start = self._produced
        if count_end <= start:
            return np.zeros((0, self.channels), dtype=np.int16)
        k = np.arange(start, count_end, dtype=np.int64)
        position = k * self._down
        whole = position // self._up
        phase = position % self._up
        first = whole - self._half + 1 - self._base  # index into _history
        index = first[:, None] + np.arange(2 * self._half, dtype=np.int64)[None, :]
        gathered = self._history[index]  # (n, taps, channels)
        weights = self._table[phase]  # (n, taps)
        values = np.einsum("nt,ntc->nc", weights, gathered)
        self._produced = count_end
        # Keep the history the next output still needs.
        next_first = ((count_end * self._down) // self._up) - self._half + 1
        drop = max(0, next_first - self._base)
        drop = min(drop, len(self._history))
        if drop:
            self._history = self._history[drop:]
            self._base += drop
        result: Int16Array = np.clip(np.rint(values), -32768, 32767).astype(np.int16)
        return result
