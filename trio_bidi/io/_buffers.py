"""A bounded, thread-safe ring buffer of audio frames that counts what it drops.

The PortAudio callback thread and the Trio thread share one `FrameRing`. Every
operation holds a plain lock only for a copy of at most the buffer's size, never waits
for the other side, and never allocates in `FrameRing.read_into` (the output
callback's path).
"""

from __future__ import annotations

import threading
from typing import Literal

import attrs
import numpy as np
import numpy.typing as npt

__all__ = ["FrameRing", "RingStatistics"]

Overflow = Literal["drop_oldest", "drop_newest"]


@attrs.frozen
class RingStatistics:
    """Counters of a `FrameRing`, all in frames.

    Attributes:
        buffered: Frames waiting to be read.
        capacity: The most frames it holds.
        written: Frames passed to ``write``; always
            ``written == read + dropped + cleared + buffered``.
        read: Frames handed out by ``read``/``read_into`` (padding not counted).
        dropped: Frames lost to overflow.
        cleared: Frames thrown away by ``clear``.
    """

    buffered: int
    capacity: int
    written: int
    read: int
    dropped: int
    cleared: int


class FrameRing:
    """A ring buffer of ``(frames, channels)`` int16 audio.

    Args:
        capacity: The most frames it holds (at least 1).
        channels: Samples per frame.
        overflow: What a write into a full buffer loses: the oldest frames (a microphone:
            fresh audio matters most) or the newest (a speaker: never skip inside what
            is already playing).
    """

    def __init__(self, capacity: int, channels: int, overflow: Overflow = "drop_oldest") -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1 frame, got {capacity}")
        if channels < 1:
            raise ValueError(f"channels must be at least 1, got {channels}")
        if overflow not in ("drop_oldest", "drop_newest"):
            raise ValueError(f"overflow must be 'drop_oldest' or 'drop_newest', got {overflow!r}")
        self.capacity = capacity
        self.channels = channels
        self.overflow: Overflow = overflow
        self._data = np.zeros((capacity, channels), dtype=np.int16)
        self._lock = threading.Lock()
        self._start = 0  # index of the oldest frame
        self._size = 0
        self._written = 0
        self._read = 0
        self._dropped = 0
        self._cleared = 0

    def __len__(self) -> int:
        return self._size

    def write(self, frames: npt.NDArray[np.int16]) -> int:
        """Append frames; returns how many frames overflow dropped (0 normally)."""
        if frames.ndim != 2 or frames.shape[1] != self.channels:
            raise ValueError(
                f"expected a (frames, {self.channels}) array, got shape {frames.shape}"
            )
        count = len(frames)
        with self._lock:
            self._written += count
            free = self.capacity - self._size
            dropped = max(0, count - free)
            if dropped and self.overflow == "drop_newest":
                frames = frames[: count - dropped]
            elif dropped:
                if count >= self.capacity:
                    frames = frames[count - self.capacity :]
                    self._start = 0
                    self._size = 0
                else:
                    old = dropped  # all from the buffer
                    self._start = (self._start + old) % self.capacity
                    self._size -= old
            self._dropped += dropped
            self._put(frames)
        return dropped

    def _put(self, frames: npt.NDArray[np.int16]) -> None:
        count = len(frames)
        if not count:
            return
        end = (self._start + self._size) % self.capacity
        first = min(count, self.capacity - end)
        self._data[end : end + first] = frames[:first]
        if first < count:
            self._data[: count - first] = frames[first:]
        self._size += count

    def read_into(self, out: npt.NDArray[np.int16]) -> int:
        """Fill ``out`` with the oldest frames, padding with silence.

        Returns:
            How many frames came from the buffer (the rest of ``out`` is zeros).
        """
        with self._lock:
            count = min(len(out), self._size)
            first = min(count, self.capacity - self._start)
            out[:first] = self._data[self._start : self._start + first]
            if first < count:
                out[first:count] = self._data[: count - first]
            self._start = (self._start + count) % self.capacity
            self._size -= count
            self._read += count
        if count < len(out):
            out[count:] = 0
        return count

    def read(self, max_frames: int | None = None) -> npt.NDArray[np.int16]:
        """Remove and return up to ``max_frames`` of the oldest frames (all by default)."""
        with self._lock:
            count = self._size if max_frames is None else min(max_frames, self._size)
        out = np.empty((count, self.channels), dtype=np.int16)
        # Only this reader removes frames, so at least ``count`` frames are still there.
        got = self.read_into(out)
        return out[:got]

    def clear(self) -> int:
        """Throw away every buffered frame; returns how many."""
        with self._lock:
            count = self._size
            self._start = 0
            self._size = 0
            self._cleared += count
        return count

    def statistics(self) -> RingStatistics:
        """Return the counters."""
        with self._lock:
            return RingStatistics(
                buffered=self._size,
                capacity=self.capacity,
                written=self._written,
                read=self._read,
                dropped=self._dropped,
                cleared=self._cleared,
            )
