"""The input buffer: what the application sends while no connection takes input."""

from __future__ import annotations

import base64
import binascii
import logging
from collections import deque

import trio

from ..events import BidiAudioInputEvent
from ..models._base import SendableEvent

__all__ = ["InputBuffer", "audio_ms"]

logger = logging.getLogger(__name__)


def audio_ms(event: BidiAudioInputEvent) -> float:
    """Duration of an audio input event in ms (16-bit samples; 0 for undecodable audio)."""
    text = event.audio
    padding = len(text) - len(text.rstrip("="))
    size = len(text) * 3 // 4 - padding
    if event.format not in ("pcm", "wav"):
        try:
            size = len(base64.b64decode(text, validate=False))
        except (binascii.Error, ValueError):
            return 0.0
    return size / (2 * event.channels * event.sample_rate) * 1000.0


class InputBuffer:
    """Input waiting for the next connection, in order.

    Audio is bounded in milliseconds: putting audio beyond the bound drops the oldest
    audio (counted in ``dropped_audio_events`` / ``dropped_audio_ms``). Other events are
    bounded in number; `wait_room` waits until one more fits.

    Args:
        max_audio_ms: Audio kept at most.
        max_events: Non-audio events kept at most.
    """

    def __init__(self, max_audio_ms: float, max_events: int) -> None:
        self._items: deque[tuple[SendableEvent, float]] = deque()
        self._max_audio_ms = max_audio_ms
        self._max_events = max_events
        self._non_audio = 0
        self.audio_ms = 0.0
        self.dropped_audio_events = 0
        self.dropped_audio_ms = 0.0
        self._room = trio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def has_room(self, event: SendableEvent) -> bool:
        """True when ``event`` can be put without waiting."""
        return isinstance(event, BidiAudioInputEvent) or self._non_audio < self._max_events

    async def wait_room(self) -> None:
        """Wait until an item leaves the buffer (or `wake` is called)."""
        await self._room.wait()

    def wake(self) -> None:
        """Wake every `wait_room` waiter (the agent stopped)."""
        self._room.set()
        self._room = trio.Event()

    def put(self, event: SendableEvent) -> None:
        """Append an event (audio may push out the oldest audio)."""
        if not isinstance(event, BidiAudioInputEvent):
            self._items.append((event, 0.0))
            self._non_audio += 1
            return
        duration = audio_ms(event)
        if duration > self._max_audio_ms:
            self._count_drop(duration)
            return
        while self.audio_ms + duration > self._max_audio_ms:
            self._drop_oldest_audio()
        self._items.append((event, duration))
        self.audio_ms += duration

    def _count_drop(self, duration: float) -> None:
        self.dropped_audio_events += 1
        self.dropped_audio_ms += duration
        logger.debug(
            "dropped_audio_events=<%d> | restart buffer full, dropped the oldest audio",
            self.dropped_audio_events,
        )

    def _drop_oldest_audio(self) -> None:
        for index, (item, duration) in enumerate(self._items):
            if isinstance(item, BidiAudioInputEvent):
                del self._items[index]
                self.audio_ms -= duration
                self._count_drop(duration)
                return
        self.audio_ms = 0.0  # pragma: no cover - accounting guard

    def peek(self) -> SendableEvent:
        """Return the oldest event."""
        return self._items[0][0]

    def pop(self) -> None:
        """Remove the oldest event."""
        event, duration = self._items.popleft()
        if isinstance(event, BidiAudioInputEvent):
            self.audio_ms -= duration
        else:
            self._non_audio -= 1
        self._room.set()
        self._room = trio.Event()
