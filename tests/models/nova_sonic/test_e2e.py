"""End to end: the Nova Sonic provider against the loopback emulator over real TLS sockets.

Every client event in these tests goes through the schema and order oracle (the
``nova_emulator`` fixture fails the test at teardown otherwise).
"""

from __future__ import annotations

import base64
import json
import logging

import pytest
import trio
import trio.testing

from tests.fixtures.nova import assert_no_nova_violations, nova_model, validated_nova_emulator
from tests.models._shared import counting_reader_steps
from trio_bidi.errors import (
    BidiAudioFormatError,
    BidiConfigurationError,
    BidiConnectionError,
    BidiModelTimeoutError,
    BidiProviderError,
)
from trio_bidi.events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiImageInputEvent,
    BidiInterruptionEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiTextInputEvent,
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from trio_bidi.models.nova_sonic import BidiNovaSonicModel, NovaSonicConnection
from trio_bidi.testing import FunctionCallReply, SpokenReply
from trio_bidi.testing._nova_emulator import NovaSonicEmulator
from trio_bidi.types import Message

from ._util import TOOL_SPEC, audio_event, collect_until, is_complete, names, of_type


async def drain(connection: NovaSonicConnection) -> None:
    """Receive until the connection ends (within 5 s)."""
    with trio.fail_after(5):
        async for _ in connection.receive():
            pass


async def open_and_close(model: BidiNovaSonicModel) -> None:
    """Open a connection and close it at once."""
    async with model.connect():
        pass


async def test_text_turn_speculative_then_final(nova_emulator: NovaSonicEmulator) -> None:
    model = nova_model(nova_emulator)
    async with model.connect(system_prompt="Be brief.", tools=[TOOL_SPEC]) as connection:
        await connection.send(BidiTextInputEvent("hello"))
        events = await collect_until(connection, is_complete)
    transcripts = of_type(events, BidiTranscriptStreamEvent)
    assert [(t.role, t.is_final, t.text) for t in transcripts] == [
        ("assistant", False, "You said: hello"),
        ("assistant", True, "You said: hello"),
    ]
    audio = of_type(events, BidiAudioStreamEvent)
    assert audio
    assert {(a.sample_rate, a.channels, a.format) for a in audio} == {(16000, 1, "pcm")}
    assert sum(len(base64.b64decode(a.audio)) for a in audio) == 16000 * 2 * 600 // 1000
    (start,) = of_type(events, BidiResponseStartEvent)
    (complete,) = of_type(events, BidiResponseCompleteEvent)
    assert start.response_id == complete.response_id
    assert complete.stop_reason == "complete"
    # The opening as the guide describes it, then the text block and the close.
    session = nova_emulator.sessions[0]
    with trio.fail_after(5):
        await session.input_ended.wait()
    assert names(session.events) == [
        "sessionStart",
        "promptStart",
        "contentStart",  # SYSTEM
        "textInput",
        "contentEnd",
        "contentStart",  # the microphone
        "contentStart",  # the text input
        "textInput",
        "contentEnd",
        "contentEnd",  # the microphone
        "promptEnd",
        "sessionEnd",
    ]
    starts = nova_emulator.messages_of("contentStart")
    assert [(s["type"], s["role"], s["interactive"]) for s in starts] == [
        ("TEXT", "SYSTEM", False),
        ("AUDIO", "USER", True),
        ("TEXT", "USER", True),
    ]
    (prompt,) = nova_emulator.messages_of("promptStart")
    spec = prompt["toolConfiguration"]["tools"][0]["toolSpec"]
    assert json.loads(spec["inputSchema"]["json"]) == TOOL_SPEC["inputSchema"]["json"]
    assert session.chunk_signatures_checked == len(session.events) + 1  # + the empty end


async def test_audio_turn_gets_user_transcript_and_reply(nova_emulator: NovaSonicEmulator) -> None:
    model = nova_model(nova_emulator, {"audio": {"output_rate": 24000, "voice": "tiffany"}})
    async with model.connect() as connection:
        for _ in range(10):
            await connection.send(audio_event(32, amplitude=8000))
        for _ in range(20):
            await connection.send(audio_event(32))
        events = await collect_until(connection, is_complete)
    user = [t for t in of_type(events, BidiTranscriptStreamEvent) if t.role == "user"]
    assert [(t.text, t.is_final) for t in user] == [("(spoken input, 0.3 seconds)", True)]
    assert {a.sample_rate for a in of_type(events, BidiAudioStreamEvent)} == {24000}
    (prompt,) = nova_emulator.messages_of("promptStart")
    assert prompt["audioOutputConfiguration"]["voiceId"] == "tiffany"
    assert prompt["audioOutputConfiguration"]["sampleRateHertz"] == 24000


async def test_tool_round_trip(nova_emulator: NovaSonicEmulator) -> None:
    nova_emulator.queue(FunctionCallReply("get_weather", {"city": "Paris"}, call_id="tool-1"))
    model = nova_model(nova_emulator)
    async with model.connect(tools=[TOOL_SPEC]) as connection:
        await connection.send(BidiTextInputEvent("weather in Paris?"))
        events = await collect_until(connection, is_complete)
        (use,) = of_type(events, ToolUseStreamEvent)
        assert use.current_tool_use == {
            "toolUseId": "tool-1",
            "name": "get_weather",
            "input": {"city": "Paris"},
        }
        assert of_type(events, BidiResponseCompleteEvent)[0].stop_reason == "tool_use"
        await connection.send(
            ToolResultEvent(
                {
                    "toolUseId": "tool-1",
                    "status": "success",
                    "content": [{"json": {"sky": "clear"}}],
                }
            )
        )
        events = await collect_until(connection, is_complete)
        assert of_type(events, BidiResponseCompleteEvent)[0].stop_reason == "complete"
    tool_starts = [s for s in nova_emulator.messages_of("contentStart") if s["type"] == "TOOL"]
    assert tool_starts[0]["toolResultInputConfiguration"]["toolUseId"] == "tool-1"
    assert json.loads(nova_emulator.messages_of("toolResult")[0]["content"]) == {"sky": "clear"}


async def test_doubly_encoded_tool_input_is_parsed(nova_emulator: NovaSonicEmulator) -> None:
    nova_emulator.queue(FunctionCallReply("get_weather", json.dumps(json.dumps({"city": "Oslo"}))))
    async with nova_model(nova_emulator).connect(tools=[TOOL_SPEC]) as connection:
        await connection.send(BidiTextInputEvent("weather?"))
        events = await collect_until(connection, is_complete)
    (use,) = of_type(events, ToolUseStreamEvent)
    assert use.current_tool_use["input"] == {"city": "Oslo"}


async def test_barge_in_interrupts_once_and_never_shows_the_marker(
    nova_emulator: NovaSonicEmulator,
) -> None:
    nova_emulator.queue(SpokenReply("A long story.", hold=True))
    async with nova_model(nova_emulator).connect() as connection:
        await connection.send(BidiTextInputEvent("tell me a story"))
        await collect_until(connection, lambda e: isinstance(e, BidiAudioStreamEvent))
        await nova_emulator.barge_in()
        events = await collect_until(connection, is_complete)
    assert len(of_type(events, BidiInterruptionEvent)) == 1
    assert of_type(events, BidiResponseCompleteEvent)[0].stop_reason == "interrupted"
    assert all("interrupted" not in t.text for t in of_type(events, BidiTranscriptStreamEvent))


async def test_barge_in_by_speech_during_the_reply(nova_emulator: NovaSonicEmulator) -> None:
    nova_emulator.queue(SpokenReply("A long story.", hold=True))
    async with nova_model(nova_emulator).connect() as connection:
        await connection.send(BidiTextInputEvent("tell me a story"))
        await collect_until(connection, lambda e: isinstance(e, BidiAudioStreamEvent))
        await connection.send(audio_event(32, amplitude=8000))
        events = await collect_until(connection, is_complete)
    assert of_type(events, BidiInterruptionEvent) == [BidiInterruptionEvent("user_speech")]


async def test_usage_event(nova_emulator: NovaSonicEmulator) -> None:
    async with nova_model(nova_emulator).connect() as connection:
        await connection.send(BidiTextInputEvent("hi"))
        events = await collect_until(connection, lambda e: isinstance(e, BidiUsageEvent))
    (usage,) = of_type(events, BidiUsageEvent)
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (10, 25, 35)


async def test_time_limit_exception_is_a_timeout(nova_emulator: NovaSonicEmulator) -> None:
    async with nova_model(nova_emulator).connect() as connection:
        await nova_emulator.expire()
        with pytest.raises(BidiModelTimeoutError, match="modelTimeoutException"):
            await drain(connection)


@pytest.mark.parametrize(
    ("exception_type", "message"),
    [
        ("validationException", "InternalErrorCode=531: Timed out waiting for input events"),
        ("internalServerException", "System instability detected. Please retry."),
        ("modelStreamErrorException", "The model stream failed."),
        ("validationException", "InvalidEventBytes: the event could not be parsed"),
    ],
)
async def test_recoverable_exceptions_are_timeouts(
    nova_emulator: NovaSonicEmulator, exception_type: str, message: str
) -> None:
    async with nova_model(nova_emulator).connect() as connection:
        await nova_emulator.send_error(message, exception_type=exception_type)
        with pytest.raises(BidiModelTimeoutError, match=exception_type):
            await drain(connection)


@pytest.mark.parametrize(
    ("exception_type", "message"),
    [
        ("throttlingException", "Too many requests, please wait before trying again."),
        ("validationException", "Invalid input request, please fix your input and try again."),
        ("accessDeniedException", "You don't have access to the model with the specified id."),
    ],
)
async def test_other_exceptions_are_precise_provider_errors(
    nova_emulator: NovaSonicEmulator, exception_type: str, message: str
) -> None:
    async with nova_model(nova_emulator).connect() as connection:
        await nova_emulator.send_error(message, exception_type=exception_type)
        with pytest.raises(BidiProviderError) as caught:
            await drain(connection)
    assert caught.value.code == exception_type
    assert message in str(caught.value)
    assert exception_type in str(caught.value)


async def test_silence_limit_gives_a_recoverable_531() -> None:
    async with (
        validated_nova_emulator(silence_limit_s=0.3) as emulator,
        nova_model(emulator).connect() as connection,
    ):
        with pytest.raises(BidiModelTimeoutError, match="531"):
            await drain(connection)
    assert_no_nova_violations(emulator)


async def test_wrong_secret_is_refused_with_the_service_error() -> None:
    async with validated_nova_emulator(secret_key="the-real-secret") as emulator:
        import botocore.session

        session = botocore.session.Session()
        session.set_credentials(emulator.access_key, "a-wrong-secret")
        model = nova_model(emulator, boto_session=session)
        with pytest.raises(BidiConnectionError, match="signature we calculated") as caught:
            async with model.connect():
                pass
        assert caught.value.code == 403
        assert caught.value.reason == "InvalidSignatureException"
        assert "a-wrong-secret" not in str(caught.value)
        assert emulator.refused == [(403, "InvalidSignatureException")]


async def test_unknown_access_key_is_refused() -> None:
    async with validated_nova_emulator() as emulator:
        import botocore.session

        session = botocore.session.Session()
        session.set_credentials("AKIDUNKNOWN", emulator.secret_key)
        with pytest.raises(BidiConnectionError, match="security token") as caught:
            async with nova_model(emulator, boto_session=session).connect():
                pass
        assert caught.value.reason == "UnrecognizedClientException"


async def test_a_broken_chunk_signature_gets_the_service_error() -> None:
    async with NovaSonicEmulator() as emulator:
        async with nova_model(emulator).connect() as connection:
            signer = connection._signer
            assert signer is not None
            signer._previous = "00" * 32  # break the chain, as a buggy signer would
            await connection.send(BidiTextInputEvent("hello"))
            with pytest.raises(BidiProviderError) as caught:
                await drain(connection)
        assert caught.value.code == "InvalidSignatureException"
        assert len(emulator.violations) == 1
        assert emulator.violations[0].endswith("(chunk): chunk signature does not verify")


async def test_history_within_the_limits(
    nova_emulator: NovaSonicEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    long_text = "é" * 3000  # 6000 bytes: split into textInputs of at most 1 KB
    messages: list[Message] = [
        {"role": "assistant", "content": [{"text": "I start, which Nova refuses"}]},
        *(
            {"role": "user" if i % 2 == 0 else "assistant", "content": [{"text": long_text}]}
            for i in range(10)
        ),
        {"role": "user", "content": [{"text": "the newest"}]},
    ]
    with caplog.at_level(logging.INFO, logger="trio_bidi.models.nova_sonic._protocol"):
        async with nova_model(nova_emulator).connect(messages=messages) as connection:
            await connection.send(BidiTextInputEvent("hi"))
            await collect_until(connection, is_complete)
    inputs = nova_emulator.messages_of("textInput")
    history = inputs[:-1]
    assert all(len(i["content"].encode()) <= 1024 for i in inputs)
    assert sum(len(i["content"].encode()) for i in history) <= 40 * 1024
    assert history[-1]["content"] == "the newest"
    starts = [s for s in nova_emulator.messages_of("contentStart") if not s["interactive"]]
    assert starts[0]["role"] == "USER"
    assert "oldest history messages dropped" in caplog.text
    # A long message stays one block: its pieces share a content name.
    first_block = [i for i in history if i["contentName"] == starts[0]["contentName"]]
    assert "".join(i["content"] for i in first_block) == long_text


async def test_wrong_audio_and_images_are_refused(nova_emulator: NovaSonicEmulator) -> None:
    async with nova_model(nova_emulator).connect() as connection:
        with pytest.raises(BidiAudioFormatError, match="16000 Hz mono"):
            await connection.send(
                BidiAudioInputEvent(base64.b64encode(b"\0\0").decode(), "pcm", 24000, 1)
            )
        with pytest.raises(BidiConfigurationError, match="not supported by Nova Sonic"):
            await connection.send(BidiImageInputEvent("aGk=", "image/png"))


async def test_v1_takes_audio_but_no_text(nova_emulator: NovaSonicEmulator) -> None:
    model = nova_model(nova_emulator, model_id="amazon.nova-sonic-v1:0")
    async with model.connect() as connection:
        with pytest.raises(BidiConfigurationError, match="no text input"):
            await connection.send(BidiTextInputEvent("hello"))
        for _ in range(10):
            await connection.send(audio_event(32, amplitude=8000))
        for _ in range(20):
            await connection.send(audio_event(32))
        await collect_until(connection, is_complete)
    assert nova_emulator.sessions[0].model_id == "amazon.nova-sonic-v1:0"
    (start,) = nova_emulator.messages_of("sessionStart")
    assert "turnDetectionConfiguration" not in start


async def test_turn_detection_is_sent_on_nova_2(nova_emulator: NovaSonicEmulator) -> None:
    model = nova_model(nova_emulator, {"turn_detection": {"endpointingSensitivity": "HIGH"}})
    async with model.connect():
        pass
    (start,) = nova_emulator.messages_of("sessionStart")
    assert start["turnDetectionConfiguration"] == {"endpointingSensitivity": "HIGH"}


async def test_long_audio_output_flows_past_the_default_window(
    nova_emulator: NovaSonicEmulator,
) -> None:
    # 30 s at 24 kHz is 1.4 MB of base64 audio: far past HTTP/2's 64 KiB default window.
    nova_emulator.queue(SpokenReply("long", audio_ms=30_000, chunk_ms=200))
    model = nova_model(nova_emulator, {"audio": {"output_rate": 24000}})
    async with model.connect() as connection:
        await connection.send(BidiTextInputEvent("talk"))
        events = await collect_until(connection, is_complete, timeout_s=20)
    audio = of_type(events, BidiAudioStreamEvent)
    assert sum(len(base64.b64decode(a.audio)) for a in audio) == 24000 * 2 * 30


async def test_missing_credentials_name_the_ways_to_provide_them(
    nova_emulator: NovaSonicEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", f"{tmp_path}/none")
    monkeypatch.setenv("AWS_CONFIG_FILE", f"{tmp_path}/none")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    model = BidiNovaSonicModel(
        client_config={
            "endpoint_url": nova_emulator.endpoint_url,
            "ssl_context": nova_emulator.ssl_context(),
        }
    )
    with pytest.raises(BidiConfigurationError) as caught:
        async with model.connect():
            pass
    message = str(caught.value)
    for way in ("AWS_ACCESS_KEY_ID", "~/.aws/credentials", "aws sso login", "boto_session"):
        assert way in message
    assert nova_emulator.sessions == []


async def test_every_send_is_a_checkpoint(nova_emulator: NovaSonicEmulator) -> None:
    async with nova_model(nova_emulator).connect() as connection:
        for event in (audio_event(32), BidiTextInputEvent("hi"), audio_event(32)):
            with trio.testing.assert_checkpoints():
                await connection.send(event)


async def test_configured_from_the_environment_only(
    nova_emulator: NovaSonicEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `trio-bidi chat --provider nova` and the official SDK rely on: credentials,
    # endpoint and the CA (SSL_CERT_FILE) from the environment, nothing in code.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", nova_emulator.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", nova_emulator.secret_key)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", nova_emulator.endpoint_url)
    monkeypatch.setenv("SSL_CERT_FILE", nova_emulator.ca_cert_pem_path)
    async with BidiNovaSonicModel().connect() as connection:
        await connection.send(BidiTextInputEvent("hello"))
        events = await collect_until(connection, is_complete)
    assert of_type(events, BidiResponseCompleteEvent)[0].stop_reason == "complete"


async def test_the_consumer_reads_the_stream_itself(nova_emulator: NovaSonicEmulator) -> None:
    # Nova reads in steps (ConnectionBase._read_step): while the consumer keeps asking,
    # the connection's reader task does not hand events over (it only checks, every
    # 0.25 s, that somebody still reads).
    model = nova_model(nova_emulator)
    async with model.connect(system_prompt="Be brief.") as connection:
        with counting_reader_steps() as instrument:
            events: list[object] = []
            for text in ("one", "two", "three"):
                await connection.send(BidiTextInputEvent(text))
                events += await collect_until(connection, is_complete)
    assert len(of_type(events, BidiResponseCompleteEvent)) == 3
    assert len(events) > 20
    assert instrument.steps < 10, instrument.steps
