"""Provider-neutral scripted replies, shared by every emulator in :mod:`trio_bidi.testing`.

Every emulator is scripted the same way: ``emulator.queue(*replies)`` queues replies for the
next model turns (a text turn, a VAD turn, or a turn after tool results), in order; with an
empty queue the emulator answers with a default spoken reply. Session-level actions
(``barge_in``, ``finish``, ``drop``, ``expire``, ``send_error``) and the waits
(``wait_for_session``, ``wait_for_client_message``) have the same names on every emulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import attrs

__all__ = ["FunctionCallReply", "Reply", "SpokenReply"]


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
