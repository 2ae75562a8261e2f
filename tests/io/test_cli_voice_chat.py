"""``trio-bidi chat --audio``: a spoken turn through the virtual devices, end to end.

The command runs in a subprocess against the OpenAI emulator. The test speaks into the
virtual microphone (espeak-ng speech played on ``vmic_feed``), the emulator's voice
activity detection makes a user turn of it and replies with a 440 Hz tone, which the
command plays on ``vspeaker``; the test records it from the speaker's monitor. Ctrl-C
(SIGINT) then ends the command cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import trio

from tests.fixtures.openai import assert_no_openai_violations, validated_openai_emulator

from .test_audio_device import capturing, dominant_frequency, loud

pytestmark = pytest.mark.audio_device


def answered(session: Any) -> bool:
    """The emulator has spoken a reply, and it is complete."""
    replies = [i for i in session.items.values() if i.data.get("role") == "assistant"]
    return bool(replies) and not session.response_active


async def read_all(stream: trio.abc.ReceiveStream) -> str:
    chunks = []
    while chunk := await stream.receive_some():
        chunks.append(chunk)
    return b"".join(chunks).decode()


async def test_voice_chat_hears_the_user_and_plays_the_reply(
    sd: ModuleType, speech_16k: np.ndarray
) -> None:
    async with validated_openai_emulator() as emulator:
        env = {**os.environ, "OPENAI_API_KEY": str(emulator.api_key)}
        command = [sys.executable, "-m", "trio_bidi", "chat", "--audio", "--url", emulator.url]
        command += ["--input-device", "vmic", "--output-device", "vspeaker"]
        process = await trio.lowlevel.open_process(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        try:
            with capturing(sd, "vspeaker_monitor", 24000) as played, trio.fail_after(30):
                # The microphone streams (silence) to the model.
                await emulator.wait_for_client_message("input_audio_buffer.append")
                position = 0
                padded = np.concatenate([speech_16k, np.zeros(16000, np.int16)])

                def feed(outdata: np.ndarray, frames: int, _time: Any, _status: Any) -> None:
                    nonlocal position
                    chunk = padded[position : position + frames]
                    outdata[: len(chunk), 0] = chunk
                    outdata[len(chunk) :] = 0
                    position += frames

                with sd.OutputStream(
                    device="vmic_feed", samplerate=16000, channels=1, dtype="int16", callback=feed
                ):
                    session = await emulator.wait_for_session()
                    # The spoken turn is committed and answered. (The emulator has no
                    # public "reply done" event: poll its records.)
                    while not answered(session):  # noqa: ASYNC110
                        await trio.sleep(0.05)
                await trio.sleep(1.0)  # the 600 ms reply plays out
            process.send_signal(signal.SIGINT)
            with trio.fail_after(15):
                returncode = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.stdout is not None
        assert process.stderr is not None
        stdout, stderr = await read_all(process.stdout), await read_all(process.stderr)
    assert_no_openai_violations(emulator)
    assert returncode == 130, stderr
    assert "trio-bidi: interrupted" in stderr
    assert stdout.startswith("Talking with gpt-realtime (openai); speak now")
    assert "You: (spoken input," in stdout
    assert "Assistant: You said: (spoken input," in stdout
    # The reply (the emulator's 440 Hz tone) came out of the speaker.
    heard = played.samples
    assert loud(heard, 24000).sum() * 10 >= 400  # at least 400 ms of the 600 ms reply
    sounding = heard[np.repeat(loud(heard, 24000), 240)[: len(heard)]]
    assert abs(dominant_frequency(sounding.astype(float), 24000) - 440) < 5
