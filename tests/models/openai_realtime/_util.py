"""Helpers shared by the OpenAI Realtime tests."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import trio

from trio_bidi.events import BidiAudioInputEvent, BidiOutputEvent, BidiResponseCompleteEvent
from trio_bidi.models import BidiConnection
from trio_bidi.types import ToolSpec

T = TypeVar("T")

TOOL_SPEC: ToolSpec = {
    "name": "get_weather",
    "description": "Weather for a city.",
    "inputSchema": {
        "json": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        }
    },
}


def pcm_chunk(ms: int, amplitude: int = 0, rate: int = 24000) -> str:
    """Base64 16-bit mono PCM: a 220 Hz tone of ``amplitude`` (0: silence)."""
    t = np.arange(rate * ms // 1000) / rate
    samples = (amplitude * np.sin(2 * math.pi * 220 * t)).astype("<i2")
    return base64.b64encode(samples.tobytes()).decode()


def audio_event(ms: int, amplitude: int = 0) -> BidiAudioInputEvent:
    """An audio input event at the session's format (24 kHz mono PCM)."""
    return BidiAudioInputEvent(pcm_chunk(ms, amplitude), "pcm", 24000, 1)


async def collect_until(
    connection: BidiConnection,
    stop: Callable[[BidiOutputEvent], bool],
    *,
    timeout_s: float = 5.0,
) -> list[BidiOutputEvent]:
    """Receive events until ``stop`` accepts one (included); fail after ``timeout_s``."""
    events: list[BidiOutputEvent] = []
    with trio.fail_after(timeout_s):
        async for event in connection.receive():
            events.append(event)
            if stop(event):
                return events
    raise AssertionError(f"receive() ended before the expected event; got {events}")


def is_complete(event: BidiOutputEvent) -> bool:
    """True for a response complete event."""
    return isinstance(event, BidiResponseCompleteEvent)


def of_type(events: list[BidiOutputEvent], kind: type[T]) -> list[T]:
    """The events of one class, in order."""
    return [event for event in events if isinstance(event, kind)]
