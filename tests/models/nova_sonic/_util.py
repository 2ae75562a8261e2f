"""Helpers shared by the Nova Sonic tests."""

from __future__ import annotations

import base64
import math

import numpy as np

from trio_bidi.events import BidiAudioInputEvent

from .._shared import TOOL_SPEC as TOOL_SPEC
from .._shared import collect_until as collect_until
from .._shared import is_complete as is_complete
from .._shared import of_type as of_type


def pcm_chunk(ms: int, amplitude: int = 0, rate: int = 16000) -> str:
    """Base64 16-bit mono PCM: a 220 Hz tone of ``amplitude`` (0: silence)."""
    t = np.arange(rate * ms // 1000) / rate
    samples = (amplitude * np.sin(2 * math.pi * 220 * t)).astype("<i2")
    return base64.b64encode(samples.tobytes()).decode()


def audio_event(ms: int, amplitude: int = 0) -> BidiAudioInputEvent:
    """An audio input event at Nova's input format (16 kHz mono PCM)."""
    return BidiAudioInputEvent(pcm_chunk(ms, amplitude), "pcm", 16000, 1)


def names(events: list[dict[str, object]]) -> list[str]:
    """The event names of recorded client events, in order."""
    return [next(iter(e["event"])) for e in events]  # type: ignore[call-overload]
