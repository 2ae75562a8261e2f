"""The demo's voices: espeak-ng speech where installed, tones otherwise."""

from __future__ import annotations

import os

import numpy as np
import pytest

from trio_bidi.cli._demo import RATE, _Voices, synth_voice
from trio_bidi.cli._voices import (
    ASSISTANT,
    USER,
    SpeechUnavailable,
    espeak_available,
    espeak_voice,
    spoken_form,
)


@pytest.fixture
def espeak() -> None:
    if not espeak_available():
        if os.environ.get("CI") == "true":
            pytest.fail("espeak-ng is required under CI=true (.ci/run installs it)")
        pytest.skip("espeak-ng is not installed")


def test_spoken_form_reads_symbols_as_words() -> None:
    assert spoken_form("1234 * 5678 = 7006652") == "1234 times 5678 equals 7006652"
    assert spoken_form("  a\n+ b / c ") == "a plus b divided by c"


@pytest.mark.usefixtures("espeak")
def test_espeak_voice_is_speech_at_the_rate_asked_for() -> None:
    text = "The result is forty two."
    assistant = espeak_voice(text, rate=RATE, voice=ASSISTANT)
    user = espeak_voice(text, rate=16000, voice=USER)
    assert assistant.dtype == np.int16
    assert assistant.ndim == 1
    # About 1.5 s of speech at 175 words per minute, at each rate.
    assert 0.8 < len(assistant) / RATE < 3.0
    assert 0.8 < len(user) / 16000 < 3.0
    assert np.abs(assistant).max() > 3000  # loud enough for voice activity detection
    # Speech, not a tone: the loudness changes from syllable to syllable.
    frames = assistant[: len(assistant) // 480 * 480].reshape(-1, 480).astype(np.float64)
    loudness = np.sqrt((frames**2).mean(axis=1))
    assert loudness.std() > 0.3 * loudness.mean()
    # Two different voices.
    assert not np.array_equal(espeak_voice(text, rate=16000, voice=ASSISTANT), user)


def test_without_espeak_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert not espeak_available()
    with pytest.raises(SpeechUnavailable, match="espeak-ng is not installed"):
        espeak_voice("hello", rate=RATE)


async def test_tones_are_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    voices = await _Voices.make(True)  # asked for speech, but espeak-ng is missing
    assert not voices.speech
    assert voices.note.startswith("Voices: tones (install espeak-ng")
    reply = voices.reply("Hello.", audio_ms=900)
    assert (reply.pcm, reply.audio_ms) == (None, 900)  # the emulator's tone
    assert np.array_equal(voices.user_question(), synth_voice(0.8))
    assert (await voices.speak("The result is 42.")).pcm is None


@pytest.mark.usefixtures("espeak")
async def test_speech_replies_carry_the_pcm() -> None:
    voices = await _Voices.make(True)
    assert voices.speech
    assert voices.note.startswith("Voices: synthesized speech (espeak-ng)")
    still_here = voices.reply("Yes, I'm still here.")
    assert still_here.pcm is not None
    assert still_here.pcm_rate == RATE
    assert len(still_here.pcm) % 2 == 0
    spoken = await voices.speak("The result is 42.")
    assert spoken.text == "The result is 42."
    assert spoken.pcm == espeak_voice("The result is 42.", rate=RATE).astype("<i2").tobytes()
    assert len(voices.user_question()) / RATE > 2  # the spoken question, not the buzz
