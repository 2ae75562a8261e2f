"""The official AWS client drives whole sessions against NovaSonicEmulator (Python 3.12).

``aws_sdk_bedrock_runtime[awscrt]`` (pinned in the ``nova_official`` nox session) is
pointed at the emulator the way PROTOCOLS.md describes: test credentials in
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, the endpoint in
``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``, the emulator's CA in ``SSL_CERT_FILE`` and the CRT
transport. The emulator verifies the official request signature and every chunk
signature, checks every event against the schema/order oracle, and what the official
client decodes from the emulator must be what the service sends.

The file is not named ``test_*``: it needs Python 3.12 and asyncio, so only its own nox
session runs it (``pytest --noconftest tests/nova_official/official_client_check.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio
from aws_sdk_bedrock_runtime.client import AsyncBedrockRuntimeClient
from aws_sdk_bedrock_runtime.config import AsyncBedrockRuntimeConfig
from aws_sdk_bedrock_runtime.models import (
    BidirectionalInputPayloadPart,
    InvokeModelWithBidirectionalStreamInputChunk,
    InvokeModelWithBidirectionalStreamOperationInput,
    InvokeModelWithBidirectionalStreamOutputChunk,
    InvokeModelWithBidirectionalStreamOutputModelTimeoutException,
    InvokeModelWithBidirectionalStreamOutputThrottlingException,
)
from smithy_http.aio.crt import AWSCRTHTTPClient

from tests.oracles.nova import NovaClientOracle
from trio_bidi.testing import FunctionCallReply, SpokenReply
from trio_bidi.testing._nova_emulator import NovaSonicEmulator

MODEL_ID = "amazon.nova-2-sonic-v1:0"
PROMPT = "official-prompt"


class EmulatorThread:
    """Runs a NovaSonicEmulator under trio.run in a thread, beside asyncio."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self.emulator: NovaSonicEmulator | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported by stop()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with NovaSonicEmulator(
            client_event_validator=NovaClientOracle(), **self._kwargs
        ) as emulator:
            self.emulator = emulator
            self._ready.set()
            await self._stop.wait()

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn`` (async) in the emulator's Trio thread."""
        return trio.from_thread.run(fn, *args, trio_token=self._token)

    def start(self) -> NovaSonicEmulator:
        self._thread.start()
        self._ready.wait(10)
        if self.emulator is None:
            raise RuntimeError(f"the emulator did not start: {self._error!r}")
        return self.emulator

    def stop(self) -> None:
        assert self._stop is not None
        trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(10)
        if self._error is not None:
            raise RuntimeError("the emulator failed") from self._error


@contextmanager
def running_emulator(**kwargs: Any) -> Iterator[tuple[EmulatorThread, NovaSonicEmulator]]:
    runner = EmulatorThread(**kwargs)
    emulator = runner.start()
    saved = dict(os.environ)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": emulator.access_key,
            "AWS_SECRET_ACCESS_KEY": emulator.secret_key,
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": f"https://localhost:{emulator.port}",
            "SSL_CERT_FILE": emulator.ca_cert_pem_path,
            "AWS_REGION": "us-east-1",
        }
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    try:
        yield runner, emulator
    finally:
        os.environ.clear()
        os.environ.update(saved)
        runner.stop()


def event(name: str, **body: Any) -> dict[str, Any]:
    return {"event": {name: body}}


def opening(tools: bool = False) -> list[dict[str, Any]]:
    prompt: dict[str, Any] = {
        "promptName": PROMPT,
        "textOutputConfiguration": {"mediaType": "text/plain"},
        "audioOutputConfiguration": {
            "mediaType": "audio/lpcm",
            "sampleRateHertz": 24000,
            "sampleSizeBits": 16,
            "channelCount": 1,
            "voiceId": "matthew",
            "encoding": "base64",
            "audioType": "SPEECH",
        },
        "toolUseOutputConfiguration": {"mediaType": "application/json"},
    }
    if tools:
        schema = {"type": "object", "properties": {"city": {"type": "string"}}}
        prompt["toolConfiguration"] = {
            "tools": [
                {
                    "toolSpec": {
                        "name": "get_weather",
                        "description": "Weather for a city.",
                        "inputSchema": {"json": json.dumps(schema)},
                    }
                }
            ]
        }
    return [
        event(
            "sessionStart",
            inferenceConfiguration={"maxTokens": 1024, "topP": 0.9, "temperature": 0.7},
            turnDetectionConfiguration={"endpointingSensitivity": "MEDIUM"},
        ),
        event("promptStart", **prompt),
        *text_block("system", "SYSTEM", "Be brief.", interactive=False),
        event(
            "contentStart",
            promptName=PROMPT,
            contentName="mic",
            type="AUDIO",
            interactive=True,
            role="USER",
            audioInputConfiguration={
                "mediaType": "audio/lpcm",
                "sampleRateHertz": 16000,
                "sampleSizeBits": 16,
                "channelCount": 1,
                "audioType": "SPEECH",
                "encoding": "base64",
            },
        ),
        event("audioInput", promptName=PROMPT, contentName="mic", content="AAAAAAAAAAA="),
    ]


def text_block(name: str, role: str, text: str, *, interactive: bool) -> list[dict[str, Any]]:
    return [
        event(
            "contentStart",
            promptName=PROMPT,
            contentName=name,
            type="TEXT",
            interactive=interactive,
            role=role,
            textInputConfiguration={"mediaType": "text/plain"},
        ),
        event("textInput", promptName=PROMPT, contentName=name, content=text),
        event("contentEnd", promptName=PROMPT, contentName=name),
    ]


def closing() -> list[dict[str, Any]]:
    return [
        event("contentEnd", promptName=PROMPT, contentName="mic"),
        event("promptEnd", promptName=PROMPT),
        event("sessionEnd"),
    ]


async def open_stream() -> Any:
    config = await AsyncBedrockRuntimeConfig.resolve(transport=AWSCRTHTTPClient())
    client = AsyncBedrockRuntimeClient(config=config)
    return await client.invoke_model_with_bidirectional_stream(
        InvokeModelWithBidirectionalStreamOperationInput(model_id=MODEL_ID)
    )


async def send(stream: Any, *events: dict[str, Any]) -> None:
    for item in events:
        await stream.input_stream.send(
            InvokeModelWithBidirectionalStreamInputChunk(
                value=BidirectionalInputPayloadPart(bytes_=json.dumps(item).encode())
            )
        )


async def receive_until(output: Any, stop: Any) -> list[Any]:
    """Collect decoded output (dicts, or exception variants) until ``stop`` accepts one."""
    seen: list[Any] = []
    async with asyncio.timeout(10):
        async for item in output:
            if isinstance(item, InvokeModelWithBidirectionalStreamOutputChunk):
                decoded = json.loads(item.value.bytes_)
                seen.append(decoded)
                if stop(decoded):
                    return seen
            else:
                seen.append(item)
                if stop(item):
                    return seen
    return seen


def is_end_turn(item: Any) -> bool:
    return isinstance(item, dict) and item["event"].get("contentEnd", {}).get("stopReason") in (
        "END_TURN",
        "TOOL_USE",
    )


def test_official_client_text_turn_and_tool_round_trip() -> None:
    async def session(runner: EmulatorThread) -> list[Any]:
        stream = await open_stream()
        await send(stream, *opening(tools=True))
        await send(stream, *text_block("t1", "USER", "hello", interactive=True))
        _, output = await stream.await_output()
        first = await receive_until(output, is_end_turn)
        runner.call(queue_tool_call, runner.emulator)
        await send(stream, *text_block("t2", "USER", "weather in Paris?", interactive=True))
        second = await receive_until(output, is_end_turn)
        tool_use = next(i["event"]["toolUse"] for i in second if "toolUse" in i["event"])
        await send(
            stream,
            event(
                "contentStart",
                promptName=PROMPT,
                contentName="r1",
                interactive=False,
                type="TOOL",
                role="TOOL",
                toolResultInputConfiguration={
                    "toolUseId": tool_use["toolUseId"],
                    "type": "TEXT",
                    "textInputConfiguration": {"mediaType": "text/plain"},
                },
            ),
            event("toolResult", promptName=PROMPT, contentName="r1", content='{"sky": "clear"}'),
            event("contentEnd", promptName=PROMPT, contentName="r1"),
        )
        third = await receive_until(output, is_end_turn)
        await send(stream, *closing())
        await stream.input_stream.close()
        rest = await receive_until(output, lambda _: False)
        return [first, second, third, rest]

    async def queue_tool_call(emulator: NovaSonicEmulator) -> None:
        emulator.queue(
            FunctionCallReply("get_weather", {"city": "Paris"}, call_id="tool-1"),
            SpokenReply("Paris is sunny."),
        )

    with running_emulator() as (runner, emulator):
        first, second, third, rest = asyncio.run(session(runner))
        session_record = emulator.sessions[0]
        assert emulator.violations == []
        assert session_record.model_id == MODEL_ID
        # Every event went through a verified chunk signature, and so did the empty end.
        assert session_record.chunk_signatures_checked == len(session_record.events) + 1
        assert session_record.input_ended.is_set()
    names = [next(iter(item["event"])) for item in first]
    assert names[0] == "completionStart"
    stages = [
        json.loads(item["event"]["contentStart"]["additionalModelFields"])["generationStage"]
        for item in first
        if "contentStart" in item["event"] and item["event"]["contentStart"]["type"] == "TEXT"
    ]
    assert stages == ["SPECULATIVE", "FINAL"]
    assert any("audioOutput" in item["event"] for item in first)
    tool_use = next(i["event"]["toolUse"] for i in second if "toolUse" in i["event"])
    assert (tool_use["toolName"], tool_use["toolUseId"]) == ("get_weather", "tool-1")
    assert json.loads(tool_use["content"]) == {"city": "Paris"}
    texts = [i["event"]["textOutput"]["content"] for i in third if "textOutput" in i["event"]]
    assert texts[-1] == "Paris is sunny."
    assert any("completionEnd" in item["event"] for item in rest)


def test_official_client_decodes_the_emulator_exceptions() -> None:
    async def session(runner: EmulatorThread, kind: str) -> list[Any]:
        stream = await open_stream()
        await send(stream, *opening())
        _, output = await stream.await_output()
        if kind == "timeout":
            runner.call(runner.emulator.expire)
        else:
            runner.call(throttle, runner.emulator)
        seen: list[Any] = []
        try:
            seen = await receive_until(output, lambda item: not isinstance(item, dict))
        except Exception as exc:  # the client may raise the modeled error instead
            seen.append(exc)
        await stream.close()
        return seen

    async def throttle(emulator: NovaSonicEmulator) -> None:
        await emulator.send_error("Too many requests", exception_type="throttlingException")

    with running_emulator() as (runner, emulator):
        timeout = asyncio.run(session(runner, "timeout"))
        throttled = asyncio.run(session(runner, "throttle"))
        assert emulator.violations == []
    last = timeout[-1]
    assert isinstance(last, InvokeModelWithBidirectionalStreamOutputModelTimeoutException) or (
        "ModelTimeout" in type(last).__name__
    ), repr(last)
    assert "timed out" in str(getattr(last, "value", last))
    last = throttled[-1]
    assert isinstance(last, InvokeModelWithBidirectionalStreamOutputThrottlingException) or (
        "Throttling" in type(last).__name__
    ), repr(last)


def test_official_client_with_a_wrong_secret_is_refused() -> None:
    async def session() -> None:
        stream = await open_stream()
        await send(stream, *opening())
        _, output = await stream.await_output()
        async with asyncio.timeout(10):
            async for _ in output:
                pass

    with running_emulator() as (_runner, emulator):
        os.environ["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
        with pytest.raises(Exception) as caught:  # noqa: PT011 - the SDK's own error type
            asyncio.run(session())
        assert emulator.refused == [(403, "InvalidSignatureException")]
    assert "signature" in str(caught.value).lower() or "InvalidSignature" in repr(caught.value)
