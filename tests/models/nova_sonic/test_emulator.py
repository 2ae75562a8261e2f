"""The Nova Sonic emulator itself: lifecycle, its CA, replies, limits and violations."""

from __future__ import annotations

import base64
import os
import ssl

import numpy as np
import pytest
import trio

from tests.fixtures.nova import nova_model, validated_nova_emulator
from trio_bidi.errors import BidiModelTimeoutError
from trio_bidi.events import BidiAudioStreamEvent, BidiTextInputEvent
from trio_bidi.models.nova_sonic import NovaSonicConnection
from trio_bidi.testing import SpokenReply
from trio_bidi.testing._nova_emulator import NovaSonicEmulator

from ._util import audio_event, collect_until, is_complete, of_type


async def drain(connection: NovaSonicConnection) -> None:
    with trio.fail_after(5):
        async for _ in connection.receive():
            pass


async def test_errors_in_the_block_pass_through_unwrapped() -> None:
    with pytest.raises(ValueError, match="mine"):
        async with NovaSonicEmulator():
            raise ValueError("mine")


async def test_the_ca_file_lives_as_long_as_the_emulator() -> None:
    async with NovaSonicEmulator() as emulator:
        path = emulator.ca_cert_pem_path
        with open(path, "rb") as file:  # noqa: ASYNC230 - a small local file
            assert file.read().startswith(b"-----BEGIN CERTIFICATE-----")
        context = ssl.create_default_context(cafile=path)
        stream = await trio.open_ssl_over_tcp_stream(
            "127.0.0.1", emulator.port, ssl_context=context, https_compatible=True
        )
        await stream.do_handshake()
        await stream.aclose()
    assert not os.path.exists(path)  # noqa: ASYNC240 - checked once, after the run


async def test_not_running_is_a_clear_error() -> None:
    emulator = NovaSonicEmulator()
    with pytest.raises(RuntimeError, match="not running"):
        _ = emulator.endpoint_url


async def test_spoken_reply_with_real_pcm_is_resampled(nova_emulator: NovaSonicEmulator) -> None:
    # One second of 24 kHz speech becomes one second at the session's 16 kHz.
    t = np.arange(24000) / 24000
    pcm = (4000 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()
    nova_emulator.queue(SpokenReply("hi", pcm=pcm, pcm_rate=24000, chunk_ms=200))
    async with nova_model(nova_emulator).connect() as connection:
        await connection.send(BidiTextInputEvent("speak"))
        events = await collect_until(connection, is_complete)
    audio = b"".join(base64.b64decode(a.audio) for a in of_type(events, BidiAudioStreamEvent))
    assert abs(len(audio) // 2 - 16000) <= 2
    samples = np.frombuffer(audio, dtype="<i2").astype(np.float64)
    assert 2000 < np.sqrt(np.mean(samples**2)) < 3500  # the tone, not silence


async def test_session_time_limit_expires_like_the_service() -> None:
    async with (
        validated_nova_emulator(session_time_limit_s=0.3) as emulator,
        nova_model(emulator).connect() as connection,
    ):
        with pytest.raises(BidiModelTimeoutError, match="timed out"):
            await drain(connection)
    assert emulator.sessions[0].exceptions_sent == [
        ("modelTimeoutException", "Model has timed out in processing the request")
    ]


async def test_order_violations_are_reported() -> None:
    async with (
        validated_nova_emulator() as emulator,
        nova_model(emulator).connect() as connection,
    ):
        prompt = connection.protocol.prompt_name
        # A text block with an audio frame inside it: what the service forbids.
        connection._queue_events(
            [
                {
                    "event": {
                        "contentStart": {
                            "promptName": prompt,
                            "contentName": "bad-text",
                            "type": "TEXT",
                            "interactive": True,
                            "role": "USER",
                            "textInputConfiguration": {"mediaType": "text/plain"},
                        }
                    }
                },
            ]
        )
        await connection.send(audio_event(20))
        with trio.fail_after(5):
            await emulator.wait_for_client_message("audioInput")
    assert any("audio frame inside an open text" in v for v in emulator.violations)
