"""The official google-genai client against the emulator: proof that the emulator speaks
the real Live protocol (the SDK builds the client messages, parses the server messages),
and a cross-check of the oracle on messages the SDK itself sends."""

from __future__ import annotations

import asyncio
import base64
from functools import partial
from typing import Any

import trio
from google import genai
from google.genai import types as gt

from tests.fixtures.gemini import assert_no_violations, validated_gemini_emulator
from tests.oracles.gemini import validate_client_message


def _run_sdk_conversation(base_url: str, api_key: str) -> list[gt.LiveServerMessage]:
    async def conversation() -> list[gt.LiveServerMessage]:
        client = genai.Client(
            api_key=api_key, http_options={"base_url": base_url, "api_version": "v1beta"}
        )
        # With an API key the SDK always switches the scheme to wss://; the emulator is
        # plain loopback ws://, so keep the scheme (the only deviation from the SDK's path).
        ws_base = base_url.replace("http://", "ws://", 1)
        client._api_client._websocket_base_url = lambda http_options=None: ws_base  # type: ignore[method-assign]
        client._api_client._websocket_ssl_ctx = {}
        config = gt.LiveConnectConfig(
            response_modalities=[gt.Modality.AUDIO],
            system_instruction="Be brief.",
            session_resumption=gt.SessionResumptionConfig(),
            input_audio_transcription=gt.AudioTranscriptionConfig(),
            output_audio_transcription=gt.AudioTranscriptionConfig(),
            realtime_input_config=gt.RealtimeInputConfig(
                automatic_activity_detection=gt.AutomaticActivityDetection(disabled=True)
            ),
            tools=[
                gt.Tool(
                    function_declarations=[
                        gt.FunctionDeclaration(
                            name="get_weather",
                            description="Weather for a city.",
                            parameters_json_schema={
                                "type": "object",
                                "properties": {"city": {"type": "string"}},
                            },
                        )
                    ]
                )
            ],
        )
        received: list[gt.LiveServerMessage] = []
        async with asyncio.timeout(10):
            async with client.aio.live.connect(
                model="gemini-2.5-flash-native-audio-preview-09-2025", config=config
            ) as session:
                await session.send_client_content(
                    turns=gt.Content(role="user", parts=[gt.Part(text="hello")]),
                    turn_complete=True,
                )
                async for message in session.receive():  # one turn
                    received.append(message)
                await session.send_realtime_input(activity_start=gt.ActivityStart())
                await session.send_realtime_input(
                    audio=gt.Blob(data=b"\x00\x01" * 160, mime_type="audio/pcm;rate=16000")
                )
                await session.send_realtime_input(activity_end=gt.ActivityEnd())
                async for message in session.receive():
                    received.append(message)
        return received

    return asyncio.run(conversation())


async def test_official_client_talks_to_the_emulator() -> None:
    # The SDK sends some proto field names (``client_content``), which the service takes;
    # its messages are checked against the same types, without the camelCase rule.
    async with validated_gemini_emulator(
        client_message_validator=partial(validate_client_message, camel_case=False)
    ) as gemini_emulator:
        messages = await trio.to_thread.run_sync(
            _run_sdk_conversation, gemini_emulator.base_url, gemini_emulator.api_key
        )
    assert_no_violations(gemini_emulator)
    snake = [m for m in gemini_emulator.client_messages if "client_content" in m]
    assert snake, "the SDK sent clientContent in camelCase: drop the lenient validator"
    session = gemini_emulator.sessions[0]
    assert session.setup["model"] == "models/gemini-2.5-flash-native-audio-preview-09-2025"
    assert session.setup["realtimeInputConfig"] == {
        "automaticActivityDetection": {"disabled": True}
    }
    assert session.audio_bytes == 320
    contents = [m.server_content for m in messages if m.server_content is not None]
    audio = [
        part.inline_data.data
        for content in contents
        if content.model_turn and content.model_turn.parts
        for part in content.model_turn.parts
        if part.inline_data is not None
    ]
    assert len(audio) == 4
    assert all(isinstance(chunk, bytes) and chunk for chunk in audio)
    outputs = "".join(c.output_transcription.text or "" for c in contents if c.output_transcription)
    assert outputs == "You said helloYou said audio"
    inputs = [c.input_transcription.text for c in contents if c.input_transcription]
    assert inputs == ["(320 bytes of audio)"]
    usage: Any = [m.usage_metadata for m in messages if m.usage_metadata is not None]
    assert usage[0].total_token_count == 42
    updates = [m.session_resumption_update for m in messages if m.session_resumption_update]
    # (each handle follows its turn's turnComplete; the SDK stops reading at the last one)
    assert [u.new_handle for u in updates] == session.handles[:1]
    audio_in = session.messages[-2]["realtimeInput"]["audio"]
    assert base64.b64decode(audio_in["data"]) == b"\x00\x01" * 160
    assert audio_in["mimeType"] == "audio/pcm;rate=16000"
