"""A loopback Amazon Nova Sonic (Bedrock bidirectional stream) server for tests and demos.

It speaks the real protocol: TLS with ALPN h2 and a generated test CA
([`NovaSonicEmulator.ca_cert_pem_path`][trio_bidi.testing.NovaSonicEmulator.ca_cert_pem_path],
[`NovaSonicEmulator.ssl_context`][trio_bidi.testing.NovaSonicEmulator.ssl_context]),
``POST /model/<id>/invoke-with-bidirectional-stream`` with a SigV4 signature checked against the
emulator's test credentials, and an event-stream body whose every chunk signature is checked along
the chain (a wrong signature gets the service's error). It records every client event and answers
like the service::

    async with NovaSonicEmulator() as emulator:
        model = BidiNovaSonicModel(client_config=emulator.client_config())
        emulator.queue(FunctionCallReply("get_weather", {"city": "Paris"}))
        async with model.connect() as connection:
            ...
            await emulator.wait_for_client_message("textInput")
            await emulator.barge_in()      # the user talks over the reply
            await emulator.send_error("Too many requests", exception_type="throttlingException")
            await emulator.drop()          # abrupt disconnect
            await emulator.expire()        # the ~8 minute limit: modelTimeoutException

An interactive USER text block, a tool result, or speech in the audio block followed by
silence (energy VAD) makes a turn. The turn is answered with the next queued reply
([`NovaSonicEmulator.queue`][trio_bidi.testing.NovaSonicEmulator.queue], shared with the other
emulators) or a default spoken reply. A spoken reply is sent as the service does: SPECULATIVE
assistant text, the audio, then the FINAL text; a barge-in ends the audio with ``INTERRUPTED`` and
the text ``{ "interrupted" : true }``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import math
import os
import shutil
import ssl
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Final, TypeAlias
from urllib.parse import unquote

import numpy as np
import trio

from .._util import open_nursery_unwrapped
from ..io._resample import StreamResampler
from ..models.nova_sonic._eventstream import (
    EventStreamDecoder,
    EventStreamError,
    encode_message,
)
from ..models.nova_sonic._sigv4 import verify_chunk
from ..models.nova_sonic._wire import decode_output, encode_output_event
from ._nova_server import ServerConnection, TestCertificateAuthority, verify_request_signature
from ._replies import FunctionCallReply, Reply, SpokenReply
from ._scripting import SessionActions

__all__ = ["ClientEventValidator", "EmulatedNovaSession", "NovaSonicEmulator"]

logger = logging.getLogger(__name__)

ClientEventValidator: TypeAlias = Callable[
    ["EmulatedNovaSession", dict[str, Any]], Iterable[str] | None
]
"""Checks one client event (``{"event": {...}}``) of a session; returns the problems found."""

_PATH_PREFIX: Final = "/model/"
_PATH_SUFFIX: Final = "/invoke-with-bidirectional-stream"
_INPUT_RATE: Final = 16000
BARGE_IN_TEXT: Final = '{ "interrupted" : true }'
TIMEOUT_MESSAGE: Final = "Model has timed out in processing the request"


def _default_reply_text(user_text: str) -> str:
    return f"You said: {user_text}" if user_text else "Hello from the emulator."


def _default_transcribe(audio_ms: float) -> str:
    return f"(spoken input, {audio_ms / 1000:.1f} seconds)"


class _Reply:
    """A reply being played."""

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.release = trio.Event()
        self.finished = trio.Event()
        self.audio_content: str | None = None


class EmulatedNovaSession:
    """One bidirectional stream: its records and its scripting methods.

    Attributes:
        index: 0 for the first stream.
        model_id: The model id from the request path.
        headers: The request headers.
        events: Every client event received (``{"event": {...}}``), in order.
        chunk_signatures_checked: How many chunk signatures were verified.
        exceptions_sent: ``(type, message)`` of every exception or error sent.
        input_ended: Set when the client sent its signed empty chunk.
        closed: Set when the stream ended (either side).
    """

    def __init__(
        self,
        emulator: NovaSonicEmulator,
        index: int,
        connection: ServerConnection,
        stream_id: int,
        model_id: str,
        headers: dict[str, str],
        signing_key: bytes,
        scope: str,
        seed_signature: str,
    ) -> None:
        self._emulator = emulator
        self._connection = connection
        self._stream_id = stream_id
        self.index = index
        self.model_id = model_id
        self.headers = headers
        self.events: list[dict[str, Any]] = []
        self.chunk_signatures_checked = 0
        self.exceptions_sent: list[tuple[str, str]] = []
        self.input_ended = trio.Event()
        self.closed = trio.Event()
        self.session_id = emulator._next_id("session")
        self.prompt_name: str | None = None
        self.output_rate = 16000
        self.voice: str | None = None
        self._signing_key = signing_key
        self._scope = scope
        self._previous = seed_signature
        self._decoder = EventStreamDecoder()
        self._rejected = False
        self._blocks: dict[str, dict[str, Any]] = {}
        self._completion_id: str | None = None
        self._active: _Reply | None = None
        self._nursery: trio.Nursery | None = None
        self._speaking = False
        self._speech_ms = 0.0
        self._silence_ms = 0.0
        self._last_audio = trio.current_time()

    # ------------------------------------------------------------------ sending

    async def send_event(self, name: str, body: Mapping[str, Any]) -> None:
        """Send one output event ``{"event": {name: body}}``."""
        await self._send_bytes(encode_output_event({"event": {name: dict(body)}}))

    async def _send_bytes(self, data: bytes) -> None:
        if self.closed.is_set():
            return
        try:
            await self._connection.send_data(self._stream_id, data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            logger.debug("session=<%d> | client gone; event not sent", self.index)

    async def send_error(
        self,
        message: str = "An internal error occurred.",
        *,
        exception_type: str = "internalServerException",
        end_stream: bool = True,
    ) -> None:
        """Send an exception message (the service ends the stream after one)."""
        self.exceptions_sent.append((exception_type, message))
        headers = {
            ":message-type": "exception",
            ":exception-type": exception_type,
            ":content-type": "application/json",
        }
        await self._send_bytes(encode_message(headers, json.dumps({"message": message}).encode()))
        if end_stream:
            await self.end()

    async def send_unmodeled_error(self, code: str, message: str) -> None:
        """Send a ``:message-type=error`` message and end the stream."""
        self.exceptions_sent.append((code, message))
        headers = {":message-type": "error", ":error-code": code, ":error-message": message}
        await self._send_bytes(encode_message(headers))
        await self.end()

    async def end(self) -> None:
        """End the response stream cleanly (END_STREAM)."""
        if self.closed.is_set():
            return
        self._cancel_reply()
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._connection.end_stream(self._stream_id)
        self._close()

    def _close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            if self._nursery is not None:
                self._nursery.cancel_scope.cancel()
            self._emulator._notify()

    async def expire(self) -> None:
        """End the session as at the service's time limit (``modelTimeoutException``)."""
        await self.send_error(TIMEOUT_MESSAGE, exception_type="modelTimeoutException")

    async def drop(self) -> None:
        """Drop the TCP connection abruptly."""
        self._close()
        await self._connection.drop()

    # ------------------------------------------------------------------ scripting

    @property
    def response_active(self) -> bool:
        """True while a reply is being played."""
        return self._active is not None

    async def respond(self, reply: Reply | None = None) -> None:
        """Start a reply now (the next queued or default reply when None)."""
        self._start_reply(reply if reply is not None else self._emulator._next_reply(""))

    def finish(self) -> None:
        """Let a held reply (``SpokenReply(hold=True)``) complete."""
        if self._active is not None:
            self._active.release.set()

    async def barge_in(self) -> None:
        """The user talks over the reply: its audio ends ``INTERRUPTED``."""
        active = self._active
        if active is None:
            return
        active.scope.cancel()
        await active.finished.wait()
        if active.audio_content is not None:
            await self._content_end(active.audio_content, "AUDIO", "INTERRUPTED")
        content = self._emulator._next_id("content")
        await self._content_start(content, "TEXT", "ASSISTANT", stage="FINAL")
        await self._text(content, "ASSISTANT", BARGE_IN_TEXT)
        await self._content_end(content, "TEXT", "INTERRUPTED")

    async def wait_reply_done(self) -> None:
        """Wait until no reply is being played."""
        while self._active is not None:
            await self._emulator._changed_wait()

    # ------------------------------------------------------------------ input

    async def _serve(self, task_status: trio.TaskStatus[None]) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            limit = self._emulator.session_time_limit_s
            if limit is not None:
                nursery.start_soon(self._time_limit, limit)
            if self._emulator.silence_limit_s is not None:
                nursery.start_soon(self._silence_watch, self._emulator.silence_limit_s)
            task_status.started()
            await trio.sleep_forever()

    async def _time_limit(self, seconds: float) -> None:
        await trio.sleep(seconds)
        await self.expire()

    async def _silence_watch(self, seconds: float) -> None:
        while True:
            await trio.sleep_until(self._last_audio + seconds)
            if trio.current_time() >= self._last_audio + seconds:
                await self.send_error(
                    "InternalErrorCode=531: Timed out waiting for input events",
                    exception_type="validationException",
                )
                return

    async def _on_data(self, data: bytes) -> None:
        if self.input_ended.is_set() or self._rejected:
            return
        self._decoder.feed(data)
        try:
            for envelope in self._decoder:
                signature = verify_chunk(
                    self._signing_key,
                    self._scope,
                    self._previous,
                    envelope.headers,
                    envelope.payload,
                )
                if signature is None:
                    self._rejected = True
                    self._emulator._violation(self, "chunk", "chunk signature does not verify")
                    await self.send_unmodeled_error(
                        "InvalidSignatureException",
                        "The request signature we calculated does not match the signature "
                        "you provided.",
                    )
                    return
                self._previous = signature
                self.chunk_signatures_checked += 1
                if not envelope.payload:
                    self.input_ended.set()
                    self._emulator._notify()
                    return
                await self._on_inner(envelope.payload)
        except EventStreamError as exc:
            self._rejected = True
            self._emulator._violation(self, "framing", str(exc))
            await self.send_error(f"InvalidEventBytes: {exc}", exception_type="validationException")

    async def _on_inner(self, payload: bytes) -> None:
        inner_decoder = EventStreamDecoder()
        inner_decoder.feed(payload)
        messages = list(inner_decoder)
        if len(messages) != 1 or inner_decoder.buffered:
            raise EventStreamError("a chunk must carry exactly one inner message")
        try:
            event = decode_output(messages[0])
        except (ValueError, binascii.Error) as exc:
            self._emulator._violation(self, "payload", str(exc))
            await self.send_error(f"InvalidEventBytes: {exc}", exception_type="validationException")
            return
        if not isinstance(event, dict):
            self._emulator._violation(self, "payload", "a client message must be an event")
            return
        headers = messages[0].headers
        if (
            headers.get(":event-type") != "chunk"
            or headers.get(":content-type") != "application/json"
        ):
            self._emulator._violation(self, "payload", f"unexpected inner headers {dict(headers)}")
        self.events.append(event)
        self._emulator.client_events.append(event)
        self._emulator._check(self, event)
        self._emulator._notify()
        await self._handle(event)

    async def _handle(self, event: dict[str, Any]) -> None:
        ((name, body),) = event["event"].items()
        if name == "promptStart":
            self.prompt_name = body.get("promptName")
            audio = body.get("audioOutputConfiguration") or {}
            self.output_rate = int(audio.get("sampleRateHertz", 16000))
            self.voice = audio.get("voiceId")
        elif name == "contentStart":
            self._blocks[body.get("contentName", "")] = {**body, "texts": []}
        elif name in ("textInput", "toolResult"):
            block = self._blocks.get(body.get("contentName", ""))
            if block is not None:
                block["texts"].append(body.get("content", ""))
        elif name == "audioInput":
            await self._on_audio(body.get("content", ""))
        elif name == "contentEnd":
            block = self._blocks.pop(body.get("contentName", ""), None)
            if block is not None:
                await self._on_block_end(block)
        elif name == "sessionEnd":
            await self._finish_session()

    async def _on_block_end(self, block: dict[str, Any]) -> None:
        if block.get("type") == "TEXT" and block.get("role") == "USER" and block.get("interactive"):
            text = "".join(block["texts"])
            self._start_reply(self._emulator._next_reply(text))
        elif block.get("type") == "TOOL":
            self._start_reply(self._emulator._next_reply(""))

    async def _on_audio(self, content: str) -> None:
        self._last_audio = trio.current_time()
        threshold = self._emulator.vad_threshold
        try:
            pcm = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            self._emulator._violation(self, "audioInput", "content is not base64")
            return
        if threshold is None or len(pcm) < 2:
            return
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32)
        chunk_ms = len(samples) * 1000 / _INPUT_RATE
        loud = float(np.sqrt(np.mean(samples * samples))) > threshold
        if loud:
            if not self._speaking:
                self._speaking = True
                self._speech_ms = 0.0
                if self._active is not None:
                    await self.barge_in()
            self._speech_ms += chunk_ms
            self._silence_ms = 0.0
        elif self._speaking:
            self._silence_ms += chunk_ms
            if self._silence_ms >= self._emulator.vad_silence_ms:
                self._speaking = False
                transcript = self._emulator.transcribe(self._speech_ms)
                content = self._emulator._next_id("content")
                await self._content_start(content, "TEXT", "USER", stage="FINAL")
                await self._text(content, "USER", transcript)
                await self._content_end(content, "TEXT", "END_TURN")
                self._start_reply(self._emulator._next_reply(transcript))

    async def _finish_session(self) -> None:
        self._cancel_reply()
        if self._completion_id is not None:
            await self.send_event(
                "completionEnd",
                {**self._ids(), "stopReason": "END_TURN"},
            )
        await self.end()

    # ------------------------------------------------------------------ replies

    def _ids(self) -> dict[str, Any]:
        return {
            "sessionId": self.session_id,
            "promptName": self.prompt_name or "",
            "completionId": self._completion_id or "",
        }

    def _cancel_reply(self) -> None:
        if self._active is not None:
            self._active.scope.cancel()

    def _start_reply(self, reply: Reply) -> None:
        if self._nursery is None or self.closed.is_set():
            return
        self._cancel_reply()
        active = _Reply()
        self._active = active
        self._nursery.start_soon(self._play, active, reply)

    async def _play(self, active: _Reply, reply: Reply) -> None:
        try:
            with active.scope:
                if self._completion_id is None:
                    self._completion_id = self._emulator._next_id("completion")
                    await self.send_event("completionStart", self._ids())
                if isinstance(reply, FunctionCallReply):
                    await self._play_tool_call(reply)
                else:
                    await self._play_spoken(active, reply)
                await self.send_event(
                    "usageEvent",
                    {
                        **self._ids(),
                        "details": {
                            "delta": {
                                "input": {"speechTokens": 0, "textTokens": 10},
                                "output": {"speechTokens": 20, "textTokens": 5},
                            },
                            "total": {
                                "input": {"speechTokens": 0, "textTokens": 10},
                                "output": {"speechTokens": 20, "textTokens": 5},
                            },
                        },
                        "totalInputTokens": 10,
                        "totalOutputTokens": 25,
                        "totalTokens": 35,
                    },
                )
        finally:
            active.finished.set()
            if self._active is active:
                self._active = None
            self._emulator._notify()

    async def _content_start(
        self, content: str, kind: str, role: str, *, stage: str | None = None
    ) -> None:
        body: dict[str, Any] = {**self._ids(), "contentId": content, "type": kind, "role": role}
        if stage is not None:
            body["additionalModelFields"] = json.dumps({"generationStage": stage})
        if kind == "TEXT":
            body["textOutputConfiguration"] = {"mediaType": "text/plain"}
        elif kind == "AUDIO":
            body["audioOutputConfiguration"] = {
                "mediaType": "audio/lpcm",
                "sampleRateHertz": self.output_rate,
                "sampleSizeBits": 16,
                "channelCount": 1,
                "encoding": "base64",
                "audioType": "SPEECH",
            }
        else:
            body["toolUseOutputConfiguration"] = {"mediaType": "application/json"}
        await self.send_event("contentStart", body)

    async def _text(self, content: str, role: str, text: str) -> None:
        await self.send_event(
            "textOutput", {**self._ids(), "contentId": content, "role": role, "content": text}
        )

    async def _content_end(self, content: str, kind: str, stop: str) -> None:
        await self.send_event(
            "contentEnd", {**self._ids(), "contentId": content, "type": kind, "stopReason": stop}
        )

    async def _play_spoken(self, active: _Reply, reply: SpokenReply) -> None:
        emulator = self._emulator
        speculative = emulator._next_id("content")
        await self._content_start(speculative, "TEXT", "ASSISTANT", stage="SPECULATIVE")
        await self._text(speculative, "ASSISTANT", reply.text)
        await self._content_end(speculative, "TEXT", "PARTIAL_TURN")
        audio = emulator._next_id("content")
        active.audio_content = audio
        await self._content_start(audio, "AUDIO", "ASSISTANT")
        for chunk in emulator._audio_chunks(reply, self.output_rate):
            await self.send_event(
                "audioOutput", {**self._ids(), "contentId": audio, "content": chunk}
            )
            if reply.chunk_interval_s:
                await trio.sleep(reply.chunk_interval_s)
        if reply.hold:
            await active.release.wait()
        await self._content_end(audio, "AUDIO", "PARTIAL_TURN")
        active.audio_content = None
        final = emulator._next_id("content")
        await self._content_start(final, "TEXT", "ASSISTANT", stage="FINAL")
        await self._text(final, "ASSISTANT", reply.text)
        await self._content_end(final, "TEXT", "END_TURN")

    async def _play_tool_call(self, reply: FunctionCallReply) -> None:
        content = self._emulator._next_id("content")
        tool_use_id = reply.call_id or self._emulator._next_id("tooluse")
        arguments = (
            reply.arguments
            if isinstance(reply.arguments, str)
            else json.dumps(dict(reply.arguments))
        )
        await self._content_start(content, "TOOL", "TOOL", stage="FINAL")
        await self.send_event(
            "toolUse",
            {
                **self._ids(),
                "contentId": content,
                "content": arguments,
                "toolName": reply.name,
                "toolUseId": tool_use_id,
            },
        )
        await self._content_end(content, "TOOL", "TOOL_USE")


class NovaSonicEmulator(SessionActions[EmulatedNovaSession]):
    """A loopback Nova Sonic service; see the module docstring.

    Args:
        access_key: The test access key id clients sign with.
        secret_key: The test secret key (the emulator checks signatures with it).
        region: The region of [`client_config`][trio_bidi.testing.NovaSonicEmulator.client_config].
        client_event_validator: Applied to every client event; what it reports is kept
            in `violations`.
        reply_text: Builds the default reply from the user's text or transcript.
        reply_audio_ms: Audio length of default replies.
        transcribe: Builds the user transcript of speech from its length.
        vad_threshold: RMS (16-bit scale) above which audio counts as speech (None: no
            automatic turns from audio).
        vad_silence_ms: Silence that ends a spoken turn.
        session_time_limit_s: End each session after this long like the service
            (``modelTimeoutException``).
        silence_limit_s: End a session after this long without audio input, like the
            service's ``InternalErrorCode=531`` (None: never).
    """

    def __init__(
        self,
        *,
        access_key: str = "AKIDNOVAEMULATOR0001",
        secret_key: str = "nova-emulator-test-secret",
        region: str = "us-east-1",
        client_event_validator: ClientEventValidator | None = None,
        reply_text: Callable[[str], str] = _default_reply_text,
        reply_audio_ms: int = 600,
        transcribe: Callable[[float], str] = _default_transcribe,
        vad_threshold: float | None = 500.0,
        vad_silence_ms: float = 500.0,
        session_time_limit_s: float | None = None,
        silence_limit_s: float | None = None,
    ) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.client_event_validator = client_event_validator
        self.reply_text = reply_text
        self.reply_audio_ms = reply_audio_ms
        self.transcribe = transcribe
        self.vad_threshold = vad_threshold
        self.vad_silence_ms = vad_silence_ms
        self.session_time_limit_s = session_time_limit_s
        self.silence_limit_s = silence_limit_s
        #: Every stream, in order.
        self.sessions: list[EmulatedNovaSession] = []
        #: Every client event of every session, in order.
        self.client_events: list[dict[str, Any]] = []
        #: Problems found by the validator and by the emulator's own checks.
        self.violations: list[str] = []
        #: Requests refused: ``(status, error type)``.
        self.refused: list[tuple[int, str]] = []
        self._authority = TestCertificateAuthority()
        self._replies: deque[Reply] = deque()
        self._ids = 0
        self._changed = trio.Event()
        self._port: int | None = None
        self._stack: AsyncExitStack | None = None
        self._tempdir: str | None = None
        self._connections: list[ServerConnection] = []

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> NovaSonicEmulator:
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            self._tempdir = self._write_ca_file()
            stack.callback(shutil.rmtree, self._tempdir, True)
            nursery = await stack.enter_async_context(open_nursery_unwrapped())
            listeners = await nursery.start(self._serve)
            self._port = listeners[0].socket.getsockname()[1]
            stack.callback(nursery.cancel_scope.cancel)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    def _write_ca_file(self) -> str:
        directory = tempfile.mkdtemp(prefix="nova-emulator-")
        with open(os.path.join(directory, "ca.pem"), "wb") as file:
            file.write(self._authority.ca_cert_pem)
        return directory

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(*exc_info)  # type: ignore[arg-type]

    async def _serve(self, task_status: trio.TaskStatus[list[trio.SocketListener]]) -> None:
        await trio.serve_tcp(self._handle_tcp, 0, host="127.0.0.1", task_status=task_status)

    @property
    def port(self) -> int:
        """The listening port."""
        if self._port is None:
            raise RuntimeError("the emulator is not running (use `async with`)")
        return self._port

    @property
    def endpoint_url(self) -> str:
        """``https://127.0.0.1:<port>``: the model's ``client_config["endpoint_url"]``."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_cert_pem_path(self) -> str:
        """A PEM file of the test CA (for ``SSL_CERT_FILE`` or other clients)."""
        if self._tempdir is None:
            raise RuntimeError("the emulator is not running (use `async with`)")
        return os.path.join(self._tempdir, "ca.pem")

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts the emulator's test CA."""
        return self._authority.client_context()

    def boto_session(self) -> Any:
        """A botocore session holding the emulator's test credentials."""
        import botocore.session

        session = botocore.session.Session()
        session.set_credentials(self.access_key, self.secret_key)
        return session

    def client_config(self, **extra: Any) -> dict[str, Any]:
        """A ``BidiNovaSonicModel`` client_config pointed at the emulator."""
        return {
            "region": self.region,
            "endpoint_url": self.endpoint_url,
            "ssl_context": self.ssl_context(),
            "boto_session": self.boto_session(),
            **extra,
        }

    async def _handle_tcp(self, tcp: trio.SocketStream) -> None:
        stream = trio.SSLStream(tcp, self._authority.server_context(), server_side=True)
        try:
            await stream.do_handshake()
        except (trio.BrokenResourceError, ssl.SSLError):
            await trio.aclose_forcefully(stream)
            return
        if stream.selected_alpn_protocol() != "h2":
            logger.warning(
                "alpn=<%s> | client did not negotiate h2", stream.selected_alpn_protocol()
            )
            await trio.aclose_forcefully(stream)
            return
        connection = ServerConnection(stream)
        self._connections.append(connection)
        sessions: dict[int, EmulatedNovaSession] = {}
        try:
            async with trio.open_nursery() as nursery:

                async def on_request(
                    conn: ServerConnection, stream_id: int, headers: dict[str, str]
                ) -> None:
                    session = await self._on_request(conn, stream_id, headers)
                    if session is not None:
                        sessions[stream_id] = session
                        await nursery.start(session._serve)

                async def on_data(stream_id: int, data: bytes) -> None:
                    session = sessions.get(stream_id)
                    if session is not None:
                        await session._on_data(data)

                async def on_end(stream_id: int) -> None:
                    session = sessions.get(stream_id)
                    if session is not None and not session.closed.is_set():
                        if not session.input_ended.is_set():
                            self._violation(
                                session, "end", "END_STREAM without the signed empty chunk"
                            )
                        await session.end()

                await connection.serve(on_request, on_data, on_end)
                for session in sessions.values():
                    session._close()
                nursery.cancel_scope.cancel()
        finally:
            for session in sessions.values():
                session._close()
            self._connections.remove(connection)
            await trio.aclose_forcefully(stream)

    async def _on_request(
        self, conn: ServerConnection, stream_id: int, headers: dict[str, str]
    ) -> EmulatedNovaSession | None:
        target = headers.get(":path", "")
        path, _, query = target.partition("?")
        if headers.get(":method") != "POST" or not (
            path.startswith(_PATH_PREFIX) and path.endswith(_PATH_SUFFIX)
        ):
            await self._refuse(conn, stream_id, 404, "UnknownOperationException", "Not found")
            return None
        request_headers = {k: v for k, v in headers.items() if not k.startswith(":")}
        request_headers["host"] = headers.get(":authority", "")
        check = verify_request_signature(
            "POST", path, request_headers, {self.access_key: self.secret_key}, query=query
        )
        if check.error_type is not None:
            await self._refuse(conn, stream_id, 403, check.error_type, check.message)
            return None
        if request_headers.get("content-type") != "application/vnd.amazon.eventstream":
            await self._refuse(
                conn,
                stream_id,
                400,
                "ValidationException",
                "content-type must be application/vnd.amazon.eventstream",
            )
            return None
        model_id = unquote(path[len(_PATH_PREFIX) : -len(_PATH_SUFFIX)])
        session = EmulatedNovaSession(
            self,
            len(self.sessions),
            conn,
            stream_id,
            model_id,
            request_headers,
            check.signing_key,
            check.scope,
            check.signature,
        )
        self.sessions.append(session)
        await conn.send_headers(
            stream_id,
            [
                (":status", "200"),
                ("content-type", "application/vnd.amazon.eventstream"),
                ("x-amzn-requestid", self._next_id("request")),
            ],
        )
        self._notify()
        return session

    async def _refuse(
        self, conn: ServerConnection, stream_id: int, status: int, error_type: str, message: str
    ) -> None:
        self.refused.append((status, error_type))
        logger.info("status=<%d>, type=<%s> | request refused", status, error_type)
        await conn.send_headers(
            stream_id,
            [
                (":status", str(status)),
                ("content-type", "application/json"),
                (
                    "x-amzn-errortype",
                    f"{error_type}:http://internal.amazon.com/coral/com.amazon.coral.service/",
                ),
                ("x-amzn-requestid", self._next_id("request")),
            ],
        )
        await conn.send_data(stream_id, json.dumps({"message": message}).encode(), end_stream=True)

    # ------------------------------------------------------------------ records

    def _next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}-{self._ids:06d}"

    def _next_reply(self, user_text: str) -> Reply:
        if self._replies:
            return self._replies.popleft()
        return SpokenReply(self.reply_text(user_text), audio_ms=self.reply_audio_ms)

    def _audio_chunks(self, reply: SpokenReply, rate: int) -> list[str]:
        if reply.pcm is not None:
            samples = np.frombuffer(reply.pcm[: len(reply.pcm) // 2 * 2], dtype="<i2")
            if reply.pcm_rate != rate:
                resampler = StreamResampler(reply.pcm_rate, rate)
                column = samples.reshape(-1, 1)
                samples = np.concatenate([resampler.process(column), resampler.flush()]).ravel()
        else:
            count = rate * reply.audio_ms // 1000
            t = np.arange(count) / rate
            samples = (3000 * np.sin(2 * math.pi * 440 * t)).astype("<i2")
        step = max(1, rate * reply.chunk_ms // 1000)
        data = samples.astype("<i2").tobytes()
        return [
            base64.b64encode(data[start : start + step * 2]).decode()
            for start in range(0, len(data), step * 2)
        ] or [""]

    def _check(self, session: EmulatedNovaSession, event: dict[str, Any]) -> None:
        validator = self.client_event_validator
        if validator is None:
            return
        try:
            problems = list(validator(session, event) or ())
        except Exception as exc:  # a validator that raises reports a violation too
            problems = [str(exc) or repr(exc)]
        name = next(iter(event.get("event", {})), "?")
        for problem in problems:
            self._violation(session, name, problem)

    def _violation(self, session: EmulatedNovaSession, kind: str, problem: str) -> None:
        text = f"session {session.index}, event {len(session.events) - 1} ({kind}): {problem}"
        logger.warning("violation=<%s> | client event rejected", text)
        self.violations.append(text)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _changed_wait(self) -> None:
        await self._changed.wait()

    # ------------------------------------------------------------------ scripting

    def queue(self, *replies: Reply) -> None:
        """Queue replies for the next turns, in order."""
        self._replies.extend(replies)

    async def wait_for_session(self, index: int = -1) -> EmulatedNovaSession:
        """Wait until a session exists (``index`` from 0; -1: the newest) and return it."""
        wanted = index if index >= 0 else 0
        while len(self.sessions) <= wanted:
            await self._changed.wait()
        return self.sessions[index]

    async def wait_for_client_message(
        self, kind: str, *, count: int = 1, session: EmulatedNovaSession | None = None
    ) -> dict[str, Any]:
        """Wait until ``count`` client events named ``kind`` arrived; return the last body.

        Args:
            kind: The event name (``"textInput"``, ``"toolResult"``, ``"sessionEnd"``...).
            count: How many to wait for (over all sessions unless ``session``).
            session: Count only this session's events.
        """
        while True:
            source = session.events if session is not None else self.client_events
            found = [e["event"][kind] for e in source if kind in e.get("event", {})]
            if len(found) >= count:
                return dict(found[count - 1])
            await self._changed.wait()

    def messages_of(self, kind: str) -> list[dict[str, Any]]:
        """The bodies of the client events named ``kind`` received so far (all sessions)."""
        return [dict(e["event"][kind]) for e in self.client_events if kind in e.get("event", {})]

    async def expire(self, session: EmulatedNovaSession | None = None) -> None:
        """End a session as at the service's time limit (``modelTimeoutException``)."""
        await (await self._session(session)).expire()

    async def send_error(
        self,
        message: str = "An internal error occurred.",
        *,
        exception_type: str = "internalServerException",
        session: EmulatedNovaSession | None = None,
    ) -> None:
        """Send an exception to a session (default: the newest), ending its stream."""
        await (await self._session(session)).send_error(message, exception_type=exception_type)


@asynccontextmanager
async def run_nova_emulator(**kwargs: Any) -> AsyncIterator[NovaSonicEmulator]:
    """Run an emulator: the same as ``async with NovaSonicEmulator(**kwargs)``."""
    async with NovaSonicEmulator(**kwargs) as emulator:
        yield emulator
