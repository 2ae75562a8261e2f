"""Synthesized speech for the demo: espeak-ng when it is installed, tones otherwise.

`espeak_voice` runs ``espeak-ng`` in a subprocess to
write a WAV file, reads it with the ``wave`` module and resamples it (numpy, the same
streaming resampler the audio IO uses) to the rate asked for. It is blocking: call it from
a worker thread (``trio.to_thread.run_sync``) in async code.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Final

import numpy as np

from ..io._resample import Int16Array, StreamResampler

__all__ = ["ASSISTANT", "USER", "SpeechUnavailable", "espeak_available", "espeak_voice"]

logger = logging.getLogger(__name__)

ASSISTANT: Final = ("en-us", 45)
"""The assistant's voice: espeak-ng voice name and pitch (0-99)."""
USER: Final = ("en+f3", 60)
"""The simulated user's voice."""

_TIMEOUT_S = 20.0
_MAX_TEXT_CHARS = 2000
_SPOKEN = (("*", " times "), ("=", " equals "), ("/", " divided by "), ("+", " plus "))


class SpeechUnavailable(Exception):
    """espeak-ng is missing or failed (the message says how)."""


def espeak_available() -> bool:
    """True when the ``espeak-ng`` program is on the ``PATH``."""
    return shutil.which("espeak-ng") is not None


def spoken_form(text: str) -> str:
    """Text as it should be read aloud: ``6 * 7 = 42`` becomes ``6 times 7 equals 42``."""
    for symbol, words in _SPOKEN:
        text = text.replace(symbol, words)
    return re.sub(r"\s+", " ", text).strip()


def espeak_voice(
    text: str, *, rate: int, voice: tuple[str, int] = ASSISTANT, words_per_minute: int = 175
) -> Int16Array:
    """Speak ``text`` with espeak-ng, as mono 16-bit samples at ``rate``.

    Args:
        text: What to say (symbols such as ``*`` and ``=`` are read as words).
        rate: The sample rate wanted.
        voice: The espeak-ng voice name and pitch.
        words_per_minute: Speaking speed.

    Returns:
        The samples, shape ``(frames,)``.

    Raises:
        SpeechUnavailable: espeak-ng is not installed, failed, or wrote no audio.
    """
    program = shutil.which("espeak-ng")
    if program is None:
        raise SpeechUnavailable("espeak-ng is not installed")
    name, pitch = voice
    with tempfile.TemporaryDirectory(prefix="trio-bidi-voice-") as directory:
        path = Path(directory) / "speech.wav"
        command = [program, "-v", name, "-p", str(pitch), "-s", str(words_per_minute)]
        try:
            subprocess.run(
                [*command, "-w", str(path), "--", spoken_form(text)[:_MAX_TEXT_CHARS]],
                check=True,
                capture_output=True,
                timeout=_TIMEOUT_S,
            )
            with wave.open(str(path), "rb") as wav:
                width, channels = wav.getsampwidth(), wav.getnchannels()
                source_rate = wav.getframerate()
                data = wav.readframes(wav.getnframes())
        except subprocess.CalledProcessError as exc:
            error = exc.stderr.decode(errors="replace").strip()[:200]
            raise SpeechUnavailable(f"espeak-ng failed ({exc.returncode}): {error}") from exc
        except (OSError, EOFError, wave.Error, subprocess.TimeoutExpired) as exc:
            raise SpeechUnavailable(f"espeak-ng gave no usable audio: {exc}") from exc
    if width != 2 or not data:
        raise SpeechUnavailable(f"espeak-ng wrote {width * 8}-bit audio of {len(data)} bytes")
    samples = np.frombuffer(data, dtype="<i2").reshape(-1, channels)[:, :1].astype(np.int16)
    resampler = StreamResampler(source_rate, rate)
    out = np.concatenate([resampler.process(samples), resampler.flush()])[:, 0]
    logger.debug("chars=<%d>, seconds=<%.2f> | synthesized speech", len(text), len(out) / rate)
    return out.astype(np.int16)
