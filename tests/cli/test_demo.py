"""``trio-bidi demo``: the whole conversation, checked end to end."""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import trio

from tests.fixtures.openai import assert_no_openai_violations, validated_openai_emulator
from trio_bidi.cli._demo import RATE, SimulatedSpeaker, run_demo_conversation, synth_voice
from trio_bidi.cli._voices import USER, espeak_available, espeak_voice
from trio_bidi.errors import BidiAudioFormatError
from trio_bidi.events import (
    BidiAudioStreamEvent,
    BidiInterruptionEvent,
    BidiResponseStartEvent,
)

SPEED = 2.0


def require_espeak() -> None:
    if not espeak_available():
        if os.environ.get("CI") == "true":
            pytest.fail("espeak-ng is required under CI=true (.ci/run installs it)")
        pytest.skip("espeak-ng is not installed")


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, RATE)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)


def sounding_seconds(channel: np.ndarray) -> float:
    return float(np.count_nonzero(channel)) / RATE


@pytest.mark.parametrize("speech", [False, True], ids=["tones", "espeak"])
async def test_demo_conversation_end_to_end(tmp_path: Path, speech: bool) -> None:
    if speech:
        require_espeak()
    out = io.StringIO()
    wav_path = tmp_path / "demo.wav"
    async with validated_openai_emulator() as emulator:
        result = await run_demo_conversation(
            out, wav_path=wav_path, speed=SPEED, emulator=emulator, timeout_s=30, speech=speech
        )
    assert_no_openai_violations(emulator)  # every client message matched the official types
    text = out.getvalue()

    # It says it runs on an emulator, and how to reach the real service.
    words = " ".join(text.split())
    assert "This is an offline demo" in words
    assert "local emulator of the OpenAI Realtime API at ws://127.0.0.1:" in words
    assert "export OPENAI_API_KEY=" in text
    assert "trio-bidi chat --provider openai" in text
    # It says which voices it used.
    assert result.speech is speech
    if speech:
        assert "[demo] Voices: synthesized speech (espeak-ng)" in text
    else:
        assert "[demo] Voices: tones (install espeak-ng" in text

    # The transcript, in order.
    expected_in_order = [
        "You (typed): What is 1234 times 5678?",
        '[tool call] calculate({"expression": "1234 * 5678"})',
        "[tool result] calculate success: 1234 * 5678 = 7006652",
        "Assistant: The result is 1234 * 5678 = 7006652.",
        "You (typed): Tell me a story about a lighthouse keeper.",
        "Assistant: Once upon a time",
        "[interrupted: the user spoke]",
        "ms of the story when the user",
        "You: Sorry to interrupt, what time is it right now?",
        '[tool call] current_time({"timezone": "UTC"})',
        "[tool result] current_time success:",
        "[connection restart]",
        "You (typed): Are you still there?",
        "Assistant: Yes, I'm still here.",
        "[tool call] stop_conversation({})",
        "[closed] connection",
        "[usage]",
    ]
    position = 0
    for expected in expected_in_order:
        found = text.find(expected, position)
        assert found >= 0, f"{expected!r} missing after position {position}:\n{text}"
        position = found + len(expected)
    # The interrupted story was cut short: its end never shows.
    assert "not on any chart" not in text

    # Barge-in and truncation: what the speaker reported is what the emulator truncated.
    assert len(result.playback_reports) == 1
    assert len(result.truncations) == 1
    played_ms = result.playback_reports[0]
    assert result.truncations[0][1] == played_ms
    # The user spoke after 1.5 s of the 6 s story (later on a slow machine, never at the end).
    assert 1400 <= played_ms <= 3500
    assert f"played {played_ms} ms of the story" in text

    # The tool calls, the restart and the history replayed into the second connection.
    assert result.tool_calls == ("calculate", "current_time", "stop_conversation")
    assert result.restarts == 1
    assert result.connections == 2
    assert result.replayed_items >= 6  # texts, transcripts, calls and their results
    second = emulator.sessions[1].messages
    replayed = [m["item"] for m in second if m["type"] == "conversation.item.create"]
    assert any(i.get("type") == "function_call" and i["name"] == "calculate" for i in replayed)

    # The WAV: user on the left, assistant (as heard) on the right.
    samples = read_wav(wav_path)
    assert result.wav_path == wav_path
    assert abs(len(samples) / RATE - result.wav_seconds) < 0.01
    user_s, assistant_s = sounding_seconds(samples[:, 0]), sounding_seconds(samples[:, 1])
    if speech:
        # The user's track is espeak-ng saying the question (about 2.8 s), not the buzz.
        question = espeak_voice(
            "Sorry to interrupt, what time is it right now?", rate=RATE, voice=USER
        )
        assert user_s == pytest.approx(np.count_nonzero(question) / RATE, abs=0.25)
        assert user_s > 2
        assert assistant_s > played_ms / 1000
    else:
        assert user_s == pytest.approx(0.8, abs=0.02)  # the 0.8 s of synthesised voice
        # Three 0.6 s replies plus the story up to the barge-in; never the whole 6 s story.
        assert assistant_s == pytest.approx(3 * 0.6 + played_ms / 1000, abs=0.02)
    # The assistant is silent from shortly after the user starts speaking until it
    # answers, which it can only do once the voice (0.8 s of buzz, or about 2.8 s of
    # speech, whose first syllable may be too quiet for the VAD) and 0.5 s of silence are
    # over.
    voice_s = user_s if speech else 0.8
    voice_start = int(np.argmax(np.abs(samples[:, 0]) > 100))
    quiet_from = voice_start + int((1.0 if speech else 0.5) * RATE)
    after = samples[quiet_from : voice_start + int((voice_s + 0.4) * RATE), 1]
    assert len(after) > RATE // 2
    assert np.abs(after).max() == 0


def test_demo_command_prints_the_wav_path(tmp_path: Path) -> None:
    wav_path = tmp_path / "out.wav"
    result = subprocess.run(
        [sys.executable, "-m", "trio_bidi", "demo", "--speed", "8", "--wav", str(wav_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith(str(wav_path))
    assert re.search(r"Done: 2 connections \(1 restart\)", result.stdout)
    assert len(read_wav(wav_path)) > RATE


class _Handle:
    def __init__(self) -> None:
        self.model = None
        self.reports: list[int] = []

    async def report_playback(self, played_ms: int) -> None:
        self.reports.append(played_ms)


async def test_simulated_speaker_plays_in_real_time(autojump_clock: trio.abc.Clock) -> None:
    speaker = SimulatedSpeaker(speed=2.0)
    handle = _Handle()
    await speaker.start(handle)  # type: ignore[arg-type]
    tone = synth_voice(1.0)  # 1 s of audio: 0.5 s at speed 2
    audio = BidiAudioStreamEvent(base64.b64encode(tone.tobytes()).decode(), "pcm", RATE, 1)
    await speaker(BidiResponseStartEvent("r1"))
    await speaker(audio)
    await speaker(audio)  # queued after the first: 2 s of audio, 1 s of wall time
    await trio.sleep(0.75)
    assert speaker.played_ms() == pytest.approx(1500, abs=1)
    await speaker(BidiInterruptionEvent("user_speech"))
    assert handle.reports == [1500]
    await speaker(audio)  # late audio of the interrupted response is not played
    await trio.sleep(5)
    track = speaker.assistant_track()
    assert [start for start, _ in track] == [0, RATE]
    assert sum(len(s) for _, s in track) == int(1.5 * RATE)
    with pytest.raises(BidiAudioFormatError, match="24 kHz mono PCM"):
        await speaker(BidiAudioStreamEvent(audio.audio, "pcm", 16000, 1))


def test_demo_stops_quietly_when_its_reader_goes_away(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "trio_bidi", "demo", "--speed", "8"]
    command += ["--wav", str(tmp_path / "out.wav")]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.readline().startswith("This is an offline demo.")
        process.stdout.close()  # like `trio-bidi demo | head -1`
        stderr = process.stderr.read()
        returncode = process.wait(timeout=60)
    assert returncode == 1
    assert stderr == ""
