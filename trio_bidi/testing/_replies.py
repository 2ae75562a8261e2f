"""Provider-neutral scripted replies, shared by every emulator in `trio_bidi.testing`.

Every emulator is scripted the same way: ``emulator.queue(*replies)`` queues replies for the
next model turns (a text turn, a VAD turn, or a turn after tool results), in order; with an
empty queue the emulator answers with a default spoken reply. Session-level actions
(``barge_in``, ``finish``, ``drop``, ``expire``, ``send_error``) and the waits
(``wait_for_session``, ``wait_for_client_message``) have the same names on every emulator.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any, TypeAlias

import attrs
import numpy as np

__all__ = [
    "FunctionCallReply",
    "Reply",
    "SpokenReply",
    "encode_chunks",
    "speech_chunks",
    "tone_chunk",
]


@attrs.define
class SpokenReply:
    """A spoken assistant reply: audio deltas with the transcript interleaved.

    Attributes:
        text: The transcript (also the text in a text-only session).
        audio_ms: Length of the audio when ``pcm`` is not given (a tone is sent).
        chunk_ms: Audio per audio message (``response.output_audio.delta``, Gemini
            ``inlineData``, Nova ``audioOutput``).
        chunk_interval_s: Pause between chunks (0: as fast as the socket takes them).
        hold: Keep the response open after its audio until the emulator's ``finish()``
            or a barge-in (so an interruption can land mid-response).
        pcm: Real audio to speak instead of a tone: 16-bit little-endian mono PCM at
            ``pcm_rate`` (each emulator resamples it to its provider's output rate).
        pcm_rate: The sample rate of ``pcm``.
    """

    text: str = "Hello from the emulator."
    audio_ms: int = 600
    chunk_ms: int = 100
    chunk_interval_s: float = 0.0
    hold: bool = False
    pcm: bytes | None = None
    pcm_rate: int = 24000


@attrs.define
class FunctionCallReply:
    """A reply that calls a function.

    Attributes:
        name: The function's name.
        arguments: The arguments (a dict is JSON-encoded; a string is sent as is).
        call_id: The call id (default: generated).
        argument_chunks: How many ``function_call_arguments.delta`` events to split into.
    """

    name: str
    arguments: Mapping[str, Any] | str = attrs.field(factory=dict)
    call_id: str | None = None
    argument_chunks: int = 3


Reply: TypeAlias = SpokenReply | FunctionCallReply
"""What an emulator answers a model turn (a text turn, a VAD turn, tool results) with."""


def tone_chunk(chunk_ms: int, rate: int) -> bytes:
    """Return ``chunk_ms`` of a quiet 440 Hz tone: 16-bit little-endian mono PCM at ``rate``."""
    samples = rate * chunk_ms // 1000
    t = np.arange(samples) / rate
    return (3000 * np.sin(2 * math.pi * 440 * t)).astype("<i2").tobytes()


def speech_chunks(reply: SpokenReply, rate: int) -> list[bytes]:
    """Return a spoken reply's audio at ``rate``, cut into ``chunk_ms`` pieces.

    ``reply.pcm`` (16-bit mono at ``reply.pcm_rate``) is resampled by linear
    interpolation when the rates differ; without it the reply is ``audio_ms`` of a tone.
    The last piece may be shorter. An emulator base64-encodes the pieces itself.

    Args:
        reply: The reply to speak.
        rate: The provider's output sample rate.

    Returns:
        The chunks, at least one (empty audio gives one empty chunk).
    """
    if reply.pcm is None:
        count = max(1, math.ceil(reply.audio_ms / reply.chunk_ms))
        return [tone_chunk(reply.chunk_ms, rate)] * count
    samples = np.frombuffer(reply.pcm[: len(reply.pcm) // 2 * 2], dtype="<i2")
    if reply.pcm_rate != rate and len(samples):
        length = max(1, round(len(samples) * rate / reply.pcm_rate))
        positions = np.arange(length) * (reply.pcm_rate / rate)
        resampled = np.interp(positions, np.arange(len(samples)), samples.astype(np.float64))
        samples = np.clip(np.round(resampled), -32768, 32767).astype("<i2")
    data = samples.tobytes()
    step = max(2, rate * reply.chunk_ms // 1000 * 2)
    return [data[i : i + step] for i in range(0, len(data), step)] or [b""]


def encode_chunks(chunks: list[bytes]) -> list[str]:
    """Base64-encode audio chunks (each as its own string), reusing equal chunks."""
    cache: dict[int, str] = {}
    out: list[str] = []
    for chunk in chunks:
        key = id(chunk)
        text = cache.get(key)
        if text is None:
            text = cache[key] = base64.b64encode(chunk).decode()
        out.append(text)
    return out
