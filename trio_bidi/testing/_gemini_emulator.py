"""A loopback emulator of the Gemini Live API, for tests and demos without a network.

It speaks the Live API's WebSocket protocol (camelCase JSON, ``setup`` answered by
``setupComplete``, errors as close frames) on ``127.0.0.1`` and an ephemeral port, and
is scripted like every emulator of `trio_bidi.testing`::

    async with GeminiLiveEmulator(api_key="test-key") as emulator:
        emulator.queue(FunctionCallReply("get_time"), SpokenReply("It is noon."))
        model = BidiGeminiLiveModel(client_config={"api_key": "test-key", "url": emulator.url})
        async with model.connect() as connection:
            ...
            await emulator.barge_in()     # serverContent.interrupted; the reply stops
            await emulator.expire()       # goAway, a fresh handle, then a close
            await emulator.send_error("Internal error encountered.", code=1011)

A model turn (``clientContent`` with ``turnComplete``, ``realtimeInput.text``, a tool
response, or the end of an audio stream after audio: ``activityEnd`` /
``audioStreamEnd``) is answered with the next queued reply, or by default with speech
(audio and transcription in the same messages). Replies play in the background, so the
emulator keeps reading: a new user turn during a reply interrupts it, as the service
does. After each turn, and right after ``goAway``, it issues a fresh resumption handle
when the client asked for resumption. Every client message is recorded
(``emulator.client_messages``) and passed to the optional ``client_message_validator``;
every server message to the optional ``server_message_validator``. What a validator
raises is recorded in ``emulator.violations`` (tests assert it stays empty). Like the
real service, the emulator also understands the proto field names (``client_content``,
``mime_type``) that the official Python SDK sends in places; ``session.messages`` holds
them camelCased. Each connection's
[`EmulatedGeminiSession`][trio_bidi.testing.EmulatedGeminiSession] keeps lower-level hooks
(``send``, ``send_raw``, ``speak``, ``call_tools``, ``go_away``, ``close``...).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, suppress
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import trio

from .._util import open_nursery_unwrapped
from .._websocket import WebSocket, WebSocketClosed, WebSocketServer, serve_websocket
from .._websocket import header_items as _header_items
from ._replies import FunctionCallReply, Reply, SpokenReply, encode_chunks, speech_chunks
from ._scripting import SessionActions

__all__ = [
    "EmulatedGeminiSession",
    "GeminiLiveEmulator",
    "MessageValidator",
    "normalize_client_message",
]

logger = logging.getLogger(__name__)

MessageValidator = Callable[[dict[str, Any]], object]
"""Checks one message; raises (any exception) to report a violation."""

ClientMessageHook = Callable[["EmulatedGeminiSession", dict[str, Any]], Awaitable[bool]]
"""Called with each client message after setup; return True to skip the default reply."""

Rule = Callable[["EmulatedGeminiSession", dict[str, Any]], Awaitable[None] | None]
"""Called with the session and each client message of a kind (see ``on_client``)."""

_OUTPUT_RATE = 24000
_WORDS = re.compile(r"\S+\s*")

_PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
_INVALID_KEY = "API key not valid. Please pass a valid API key."


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _camel_keys(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    return {_camel(str(k)): v for k, v in value.items()}


def normalize_client_message(message: dict[str, Any]) -> dict[str, Any]:
    """Return a client message with its structural keys in camelCase.

    The Live API parses JSON as protobuf does, so it also takes the proto field names
    (``client_content``, ``turn_complete``, ``mime_type``), and the official Python SDK
    sends some of them. The emulator reads messages through this so it answers either
    form; free-form parts (function arguments and responses, schemas) are left as sent.
    """
    out = _camel_keys(message)
    for key in ("setup", "clientContent", "realtimeInput", "toolResponse"):
        if isinstance(out.get(key), dict):
            out[key] = _camel_keys(out[key])
    setup = out.get("setup")
    if isinstance(setup, dict):
        for key in ("sessionResumption", "realtimeInputConfig", "generationConfig"):
            if isinstance(setup.get(key), dict):
                setup[key] = _camel_keys(setup[key])
    realtime = out.get("realtimeInput")
    if isinstance(realtime, dict):
        for key in ("audio", "video"):
            if isinstance(realtime.get(key), dict):
                realtime[key] = _camel_keys(realtime[key])
    return out  # type: ignore[no-any-return]


def _pcm_chunk(index: int, size: int) -> str:
    """Deterministic 16-bit PCM (a quiet ramp) of ``size`` bytes, base64-encoded."""
    samples = bytearray(size)
    for i in range(0, size - 1, 2):
        value = ((i // 2 + index * 7) % 64 - 32) * 16
        samples[i : i + 2] = value.to_bytes(2, "little", signed=True)
    return base64.b64encode(bytes(samples)).decode()


_USAGE: dict[str, Any] = {
    "promptTokenCount": 12,
    "responseTokenCount": 30,
    "totalTokenCount": 42,
    "promptTokensDetails": [
        {"modality": "TEXT", "tokenCount": 4},
        {"modality": "AUDIO", "tokenCount": 8},
    ],
    "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 30}],
}


class _Playing:
    """A scripted reply being played: the scope that stops it, and its hold."""

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.finished = trio.Event()
        self.release = trio.Event()


def _kinds(message: Mapping[str, Any]) -> list[str]:
    """The kinds a client message matches: its top-level key, and ``realtimeInput.<field>``."""
    kinds = list(message)
    realtime = message.get("realtimeInput")
    if isinstance(realtime, Mapping):
        kinds.extend(f"realtimeInput.{field}" for field in realtime)
    return kinds


@attrs.define(eq=False)
class EmulatedGeminiSession:
    """One client connection to the emulator; the test scripts the server side with it.

    Attributes:
        index: Counts connections from 0.
        setup: The client's ``setup`` object.
        messages: Every client message after ``setup``, in order.
        resumed_from: The handle this connection resumed, or None.
        audio_bytes: Bytes of input audio received.
        handles: Resumption handles issued on this connection.
        history_complete: True once the initial history ended (with ``historyConfig``).
        closed: Set when the connection ended.
    """

    emulator: GeminiLiveEmulator
    index: int
    _ws: WebSocket
    setup: dict[str, Any]
    resumed_from: str | None = None
    messages: list[dict[str, Any]] = attrs.Factory(list)
    audio_bytes: int = 0
    handles: list[str] = attrs.Factory(list)
    closed: trio.Event = attrs.Factory(trio.Event)
    _changed: trio.Event = attrs.Factory(trio.Event)
    history_complete: bool = False
    _loop_scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    _ending: tuple[int, str] | str | None = None
    _nursery: trio.Nursery | None = None
    _playing: _Playing | None = None

    # ------------------------------------------------------------------ waiting

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_message(
        self, predicate: Callable[[dict[str, Any]], bool], *, start: int = 0
    ) -> dict[str, Any]:
        """Wait for a client message (at or after index ``start``) that ``predicate`` accepts."""
        position = start
        while True:
            while position < len(self.messages):
                message = self.messages[position]
                position += 1
                if predicate(message):
                    return message
            if self.closed.is_set():
                raise WebSocketClosed(1006, "the session ended", by_peer=True)
            await self._changed.wait()

    async def wait_message_count(self, count: int) -> None:
        """Wait until the client has sent ``count`` messages after ``setup``."""
        while len(self.messages) < count:
            if self.closed.is_set():
                raise WebSocketClosed(1006, "the session ended", by_peer=True)
            await self._changed.wait()

    # ------------------------------------------------------------------ sending

    @property
    def request_headers(self) -> dict[str, str]:
        """The HTTP headers of the connection's opening request (lower-case names)."""
        request = self._ws.request
        return _header_items(request.headers) if request is not None else {}

    @property
    def request_path(self) -> str:
        """The path (with query) of the connection's opening request."""
        request = self._ws.request
        return request.path if request is not None else ""

    @property
    def resumption_enabled(self) -> bool:
        """True when the client asked for session resumption in its setup."""
        return "sessionResumption" in self.setup

    async def send(self, message: dict[str, Any]) -> None:
        """Send one raw server message (validated by ``server_message_validator``)."""
        emulator = self.emulator
        emulator._validate(emulator.server_message_validator, message, "server")
        text = json.dumps(message)
        if emulator.binary_frames:
            await self._ws.send_bytes(text.encode())
        else:
            await self._ws.send_text(text)

    async def transcribe_input(self, text: str, *, finished: bool = True) -> None:
        """Send an input transcription of the user's speech."""
        await self.send(
            {"serverContent": {"inputTranscription": {"text": text, "finished": finished}}}
        )

    async def speak(
        self,
        text: str,
        *,
        chunks: int = 2,
        chunk_bytes: int = 960,
        usage: bool = True,
        complete: bool = True,
        issue_handle: bool = True,
    ) -> None:
        """Reply with speech: audio parts and the output transcription in the same messages.

        Args:
            text: What the model says (split over the chunks as its transcription).
            chunks: Number of audio messages.
            chunk_bytes: Bytes of 24 kHz PCM per audio message.
            usage: Send ``usageMetadata`` with ``turnComplete``.
            complete: End with ``generationComplete`` and ``turnComplete``.
            issue_handle: Send a ``sessionResumptionUpdate`` after the turn when the
                client asked for resumption.
        """
        words = text.split(" ")
        per = max(1, math.ceil(len(words) / max(chunks, 1)))
        for i in range(chunks):
            piece = " ".join(words[i * per : (i + 1) * per])
            content: dict[str, Any] = {
                "modelTurn": {
                    "parts": [
                        {
                            "inlineData": {
                                "mimeType": "audio/pcm;rate=24000",
                                "data": _pcm_chunk(i, chunk_bytes),
                            }
                        }
                    ]
                }
            }
            if piece:
                content["outputTranscription"] = {"text": (" " if i else "") + piece}
            await self.send({"serverContent": content})
        if complete:
            await self.finish_turn(usage=usage, issue_handle=issue_handle)

    async def finish_turn(self, *, usage: bool = True, issue_handle: bool = True) -> None:
        """Send ``generationComplete``, then ``turnComplete`` (with usage) and a new handle."""
        await self.send({"serverContent": {"generationComplete": True}})
        final: dict[str, Any] = {"serverContent": {"turnComplete": True}}
        if usage:
            final["usageMetadata"] = _USAGE
        await self.send(final)
        if issue_handle and self.resumption_enabled:
            await self.issue_handle()

    async def call_tools(self, calls: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """Ask for tool calls: ``(id, name, args)`` each, in one ``toolCall`` message."""
        await self.send(
            {
                "toolCall": {
                    "functionCalls": [
                        {"id": call_id, "name": name, "args": args} for call_id, name, args in calls
                    ]
                }
            }
        )

    async def cancel_tools(self, ids: Sequence[str]) -> None:
        """Withdraw tool calls (``toolCallCancellation``)."""
        await self.send({"toolCallCancellation": {"ids": list(ids)}})

    async def interrupt(self) -> None:
        """Signal that the user barged in (``serverContent.interrupted``)."""
        await self.send({"serverContent": {"interrupted": True}})

    async def issue_handle(self, *, resumable: bool = True) -> str:
        """Send a ``sessionResumptionUpdate`` with a new handle; return the handle.

        With ``transparent`` resumption it carries ``lastConsumedClientMessageIndex``
        (``setup`` is index 0, so it equals the number of messages after it).
        """
        handle = self.emulator._new_handle(self)
        update: dict[str, Any] = {"newHandle": handle if resumable else "", "resumable": resumable}
        if self.setup.get("sessionResumption", {}).get("transparent"):
            update["lastConsumedClientMessageIndex"] = str(len(self.messages))
        await self.send({"sessionResumptionUpdate": update})
        if resumable:
            self.handles.append(handle)
        return handle

    async def go_away(self, time_left_s: float = 10.0, *, issue_handle: bool = True) -> None:
        """Warn that the server will end the connection (``goAway``).

        Like the service, it then sends a fresh resumable handle right away (when the
        client asked for resumption and ``issue_handle``); the connection stays usable
        for ``time_left_s``
        ([`expire`][trio_bidi.testing._gemini_emulator.EmulatedGeminiSession.expire] also closes it
        when the time is up).
        """
        await self.send({"goAway": {"timeLeft": f"{time_left_s:g}s"}})
        if issue_handle and self.resumption_enabled:
            await self.issue_handle()

    async def send_raw(self, text: str | bytes) -> None:
        """Send a frame as is (text or binary), without validation: hostile-peer tests."""
        if isinstance(text, bytes):
            await self._ws.send_bytes(text)
        else:
            await self._ws.send_text(text)

    @property
    def response_active(self) -> bool:
        """True while a scripted reply is being played."""
        return self._playing is not None

    async def respond(self, reply: Reply | None = None) -> None:
        """Start a model turn now with ``reply`` (None: the next queued or the default one)."""
        await trio.lowlevel.checkpoint()
        self._start_reply(reply if reply is not None else self.emulator._next_reply(None))

    async def barge_in(self) -> None:
        """Emulate the user speaking over the reply: ``interrupted``, and the reply stops."""
        playing = self._playing
        if playing is not None:
            playing.scope.cancel()
            await playing.finished.wait()
        await self.send({"serverContent": {"interrupted": True}})

    def finish(self) -> None:
        """Let a held reply (``SpokenReply(hold=True)``) end its turn."""
        if self._playing is not None:
            self._playing.release.set()

    async def wait_response_done(self) -> None:
        """Wait until no scripted reply is being played."""
        while self._playing is not None:
            await self._changed.wait()

    async def send_error(
        self, message: str = "Internal error encountered.", code: int = 1011
    ) -> None:
        """Report an error the way the Live API does: a close frame with code and reason."""
        await self.close(code, message)

    async def expire(self, time_left_s: float = 10.0) -> None:
        """End the session as the service does at its time limit.

        ``goAway`` with ``timeLeft`` (and a fresh handle when resumption is on), then the
        connection closes when the time is up unless the client left first.
        """
        await self.go_away(time_left_s)
        with trio.move_on_after(time_left_s):
            await self.closed.wait()
            return
        await self.close(1000, "session time limit reached")

    def _start_reply(self, reply: Reply) -> None:
        if self._nursery is None:
            raise RuntimeError("the session is not serving")
        playing = _Playing()
        self._playing = playing
        self._nursery.start_soon(self._play, playing, reply)

    async def _play(self, playing: _Playing, reply: Reply) -> None:
        try:
            with playing.scope:
                if isinstance(reply, FunctionCallReply):
                    await self._play_function_call(reply)
                else:
                    await self._play_spoken(playing, reply)
        except WebSocketClosed:
            logger.debug("session=<%d> | client gone; reply not finished", self.index)
        finally:
            if self._playing is playing:
                self._playing = None
            playing.finished.set()
            self._notify()

    async def _play_spoken(self, playing: _Playing, reply: SpokenReply) -> None:
        modalities = (self.setup.get("generationConfig") or {}).get("responseModalities") or []
        text_only = [str(m).upper() for m in modalities] == ["TEXT"]
        words = _WORDS.findall(reply.text)
        audio = [] if text_only else encode_chunks(speech_chunks(reply, _OUTPUT_RATE))
        count = max(1, len(words)) if text_only else len(audio)
        for index in range(count):
            piece = "".join(words[index * len(words) // count : (index + 1) * len(words) // count])
            content: dict[str, Any] = {}
            if text_only:
                if not piece:
                    continue
                content["modelTurn"] = {"parts": [{"text": piece}]}
            else:
                mime = f"audio/pcm;rate={_OUTPUT_RATE}"
                content["modelTurn"] = {
                    "parts": [{"inlineData": {"mimeType": mime, "data": audio[index]}}]
                }
                if piece:
                    content["outputTranscription"] = {"text": piece}
            await self.send({"serverContent": content})
            if reply.chunk_interval_s:
                await trio.sleep(reply.chunk_interval_s)
        if reply.hold:
            await self.send({"serverContent": {"generationComplete": True}})
            await playing.release.wait()
            await self._end_turn()
        else:
            await self.finish_turn()

    async def _end_turn(self) -> None:
        await self.send({"serverContent": {"turnComplete": True}, "usageMetadata": _USAGE})
        if self.resumption_enabled:
            await self.issue_handle()

    async def _play_function_call(self, reply: FunctionCallReply) -> None:
        arguments: Any = reply.arguments
        if isinstance(arguments, str):
            arguments = json.loads(arguments) if arguments.strip() else {}
        call_id = reply.call_id or f"function-call-{self.emulator._next_number()}"
        await self.send(
            {
                "toolCall": {
                    "functionCalls": [{"id": call_id, "name": reply.name, "args": arguments}]
                }
            }
        )

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection with a close frame (1007, 1008, 1011 for errors).

        The session's own server task performs the close (it is the one reading the
        socket); this waits until the connection has ended.
        """
        await self._end((code, reason))

    async def drop(self) -> None:
        """End the connection abruptly: close the TCP stream without a close frame."""
        await self._end(None)

    async def _end(self, close: tuple[int, str] | None) -> None:
        if not self.closed.is_set():
            self._ending = close if close is not None else "drop"
            self._loop_scope.cancel()
        await self.closed.wait()

    # ------------------------------------------------------------------ default replies

    @property
    def waits_for_history(self) -> bool:
        """True while the initial history (``historyConfig``) has not ended yet."""
        config = self.setup.get("historyConfig") or {}
        return bool(config.get("initialHistoryInClientContent")) and not self.history_complete

    def _consume_history(self, message: dict[str, Any]) -> bool:
        """Handle the initial history phase; True when ``message`` belonged to it."""
        if not self.waits_for_history or self.resumed_from is not None:
            return False
        content = message.get("clientContent")
        if content is None:
            self.emulator.violations.append(
                f"{sorted(message)} sent before the initial history ended (turnComplete)"
            )
            return False
        if content.get("turnComplete"):
            self.history_complete = True
        return True

    async def _default_reply(self, message: dict[str, Any]) -> None:
        """Answer a client message that gives the model a turn (queued reply or default)."""
        emulator = self.emulator
        content = message.get("clientContent")
        realtime = message.get("realtimeInput")
        default: str | None = None
        if content is not None and content.get("turnComplete"):
            turns = content.get("turns") or []
            texts = [
                part["text"]
                for part in (turns[-1].get("parts") or [] if turns else [])
                if "text" in part
            ]
            default = emulator.reply_text(" ".join(texts))
        elif realtime is not None and "text" in realtime:
            default = emulator.reply_text(realtime["text"])
        elif realtime is not None and ("activityEnd" in realtime or "audioStreamEnd" in realtime):
            if self.audio_bytes:
                await self.transcribe_input(f"({self.audio_bytes} bytes of audio)")
                default = emulator.reply_text("audio")
        elif "toolResponse" in message:
            default = "Thanks, I have the result."
        if default is None:
            return
        if self._playing is not None:
            # A new user turn while the model speaks: the service interrupts the reply.
            await self.barge_in()
        reply = emulator._next_reply(SpokenReply(default, audio_ms=emulator.reply_audio_ms))
        self._start_reply(reply)


class GeminiLiveEmulator(SessionActions[EmulatedGeminiSession]):
    """A scriptable Gemini Live server on loopback (see the module docstring).

    Args:
        api_key: The key clients must present (``x-goog-api-key`` header or ``?key=``).
        client_message_validator: Called with every client message; what it raises is
            recorded in `violations`.
        server_message_validator: Called with every message the emulator sends.
        auto_reply: Answer text turns, tool responses and audio ends by default.
        on_client_message: Called with each client message after setup; returning True
            skips the default reply.
        reply_text: Makes the default spoken reply to a user text.
        reply_audio_ms: Audio length of default replies.
        binary_frames: Send server messages as binary frames of UTF-8 JSON, as the Live
            service does (False: text frames).

    Attributes:
        sessions: Every connection that completed setup, in order.
        client_messages: Every client message received (all sessions, including setup).
        violations: Validator failures and protocol violations the emulator saw.
    """

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        client_message_validator: MessageValidator | None = None,
        server_message_validator: MessageValidator | None = None,
        auto_reply: bool = True,
        on_client_message: ClientMessageHook | None = None,
        reply_text: Callable[[str], str] | None = None,
        reply_audio_ms: int = 200,
        binary_frames: bool = True,
    ) -> None:
        self.api_key = api_key
        self.client_message_validator = client_message_validator
        self.server_message_validator = server_message_validator
        self.auto_reply = auto_reply
        self.on_client_message = on_client_message
        self.reply_text: Callable[[str], str] = reply_text or (lambda text: f"You said {text}")
        self.reply_audio_ms = reply_audio_ms
        self.binary_frames = binary_frames
        self._replies: deque[Reply] = deque()
        self._rules: list[tuple[str, Rule, bool]] = []
        self._changed = trio.Event()
        self._numbers = 0
        self.sessions: list[EmulatedGeminiSession] = []
        self.client_messages: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self.connection_attempts = 0
        self._handles: dict[str, int] = {}
        self._handle_count = 0
        self._setup_failures: list[tuple[int, str]] = []
        self._session_ready = trio.Event()
        self._stack: AsyncExitStack | None = None
        self._server: WebSocketServer | None = None

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> GeminiLiveEmulator:
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            nursery = await stack.enter_async_context(open_nursery_unwrapped())
            self._server = await nursery.start(serve_websocket, self._serve)
            stack.callback(self._server.close)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        stack, self._stack = self._stack, None
        if stack is None:
            return None
        return await stack.__aexit__(exc_type, exc, tb)

    @property
    def port(self) -> int:
        """The TCP port the emulator listens on."""
        if self._server is None:
            raise RuntimeError("the emulator is not running (use `async with`)")
        return self._server.port

    @property
    def url(self) -> str:
        """The ``ws://`` URL of the Live endpoint (for ``client_config["url"]``)."""
        return f"ws://127.0.0.1:{self.port}{_PATH}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, for ``google-genai``'s ``http_options.base_url``."""
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ scripting

    def fail_next_setup(self, code: int, reason: str) -> None:
        """Make the next connection's setup end with this close code and reason."""
        self._setup_failures.append((code, reason))

    async def wait_session(self, index: int = -1) -> EmulatedGeminiSession:
        """Wait for a session (``index`` counts from 0; -1: the newest) to complete setup."""
        wanted = index if index >= 0 else 0
        while len(self.sessions) <= wanted:
            await self._session_ready.wait()
        return self.sessions[index]

    def queue(self, *replies: Reply) -> None:
        """Queue replies for the next model turns, in order (then the default reply)."""
        self._replies.extend(replies)

    def on_client(self, kind: str, rule: Rule, *, replace_default: bool = False) -> None:
        """Run ``rule(session, message)`` for each client message of ``kind`` (``*``: all).

        Args:
            kind: A top-level key (``clientContent``, ``toolResponse``...) or
                ``realtimeInput.<field>`` (``realtimeInput.audio``...).
            rule: A function or coroutine function.
            replace_default: Skip the emulator's own reply to these messages.
        """
        self._rules.append((kind, rule, replace_default))

    async def wait_for_session(self, index: int = -1) -> EmulatedGeminiSession:
        """Wait for a session (``index`` counts from 0; -1: the newest) to complete setup."""
        return await self.wait_session(index)

    async def wait_for_client_message(
        self, kind: str, *, count: int = 1, session: EmulatedGeminiSession | None = None
    ) -> dict[str, Any]:
        """Wait until ``count`` client messages of ``kind`` arrived; return the last one.

        Args:
            kind: As for
                [`on_client`][trio_bidi.testing._gemini_emulator.GeminiLiveEmulator.on_client]
                (``setup`` too).
            count: How many to wait for (over all sessions unless ``session``).
            session: Count only this session's messages (after its setup).
        """
        while True:
            found = self._of_kind(kind, session)
            if len(found) >= count:
                return found[count - 1]
            await self._changed.wait()

    def messages_of(self, kind: str) -> list[dict[str, Any]]:
        """Return the client messages of one kind received so far (all sessions, camelCase)."""
        return self._of_kind(kind, None)

    def _of_kind(self, kind: str, session: EmulatedGeminiSession | None) -> list[dict[str, Any]]:
        source = (
            session.messages
            if session is not None
            else [normalize_client_message(m) for m in self.client_messages]
        )
        return [m for m in source if kind in _kinds(m)]

    async def send(
        self, message: dict[str, Any], session: EmulatedGeminiSession | None = None
    ) -> None:
        """Send a server message to a session (default: the newest)."""
        await (await self._session(session)).send(message)

    async def wait_response_done(self, session: EmulatedGeminiSession | None = None) -> None:
        """Wait until the session (default: the newest) plays no reply."""
        await (await self._session(session)).wait_response_done()

    async def expire(
        self, session: EmulatedGeminiSession | None = None, *, time_left_s: float = 10.0
    ) -> None:
        """End a session as at the service's time limit (``goAway``, new handle, close)."""
        await (await self._session(session)).expire(time_left_s)

    async def send_error(
        self,
        message: str = "Internal error encountered.",
        *,
        code: int = 1011,
        session: EmulatedGeminiSession | None = None,
    ) -> None:
        """Report an error as the Live API does: close the connection with code and reason."""
        await (await self._session(session)).send_error(message, code)

    async def wait_session_count(self, count: int) -> EmulatedGeminiSession:
        """Wait until ``count`` sessions completed setup; return the newest."""
        while len(self.sessions) < count:
            await self._session_ready.wait()
        return self.sessions[-1]

    # ------------------------------------------------------------------ internals

    def _validate(self, validator: MessageValidator | None, message: Any, side: str) -> None:
        if validator is None:
            return
        try:
            validator(message)
        except Exception as exc:
            self.violations.append(f"{side} message {json.dumps(message)[:300]}: {exc}")

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _next_number(self) -> int:
        self._numbers += 1
        return self._numbers

    def _next_reply(self, default: Reply | None) -> Reply:
        if self._replies:
            return self._replies.popleft()
        if default is not None:
            return default
        return SpokenReply(self.reply_text(""), audio_ms=self.reply_audio_ms)

    def _new_handle(self, session: EmulatedGeminiSession) -> str:
        self._handle_count += 1
        handle = f"emulated-handle-{self._handle_count}"
        self._handles[handle] = session.index
        return handle

    def _key_ok(self, ws: WebSocket) -> bool:
        request = ws.request
        if request is None:
            return False
        headers = _header_items(request.headers)
        if headers.get("x-goog-api-key") == self.api_key:
            return True
        query = parse_qs(urlsplit(request.path).query)
        return query.get("key", [None])[0] == self.api_key

    async def _receive_json(self, ws: WebSocket) -> dict[str, Any] | None:
        raw = await ws.receive()
        try:
            message = json.loads(raw)
        except ValueError:
            self.violations.append(f"client sent invalid JSON: {raw[:200]!r}")
            await ws.aclose(1007, "Invalid JSON payload received.")
            return None
        if not isinstance(message, dict):
            self.violations.append(f"client sent a JSON {type(message).__name__}")
            await ws.aclose(1007, "Invalid JSON payload received.")
            return None
        self.client_messages.append(message)
        self._validate(self.client_message_validator, message, "client")
        self._notify()
        return message

    async def _serve(self, ws: WebSocket) -> None:
        self.connection_attempts += 1
        with suppress(WebSocketClosed):
            await self._serve_session(ws)

    async def _serve_session(self, ws: WebSocket) -> None:
        request_path = urlsplit(ws.request.path).path if ws.request is not None else ""
        if request_path != _PATH and not request_path.endswith(".BidiGenerateContent"):
            await ws.aclose(1008, f"unknown method {request_path}")
            return
        first = await self._receive_json(ws)
        if first is None:
            return
        if not self._key_ok(ws):
            await ws.aclose(1007, _INVALID_KEY)
            return
        setup = normalize_client_message(first).get("setup")
        if not isinstance(setup, dict):
            self.violations.append("the first client message was not setup")
            await ws.aclose(1007, "The first message must be a setup message.")
            return
        if self._setup_failures:
            code, reason = self._setup_failures.pop(0)
            await ws.aclose(code, reason)
            return
        model = setup.get("model")
        if not isinstance(model, str) or not model.startswith("models/"):
            await ws.aclose(1008, f"{model} is not found for API version v1beta")
            return
        handle = (setup.get("sessionResumption") or {}).get("handle")
        if handle is not None and handle not in self._handles:
            await ws.aclose(1007, "Invalid session resumption handle.")
            return
        session = EmulatedGeminiSession(self, len(self.sessions), ws, setup, resumed_from=handle)
        await session.send({"setupComplete": {}})
        self.sessions.append(session)
        self._session_ready.set()
        self._session_ready = trio.Event()
        self._notify()
        try:
            with session._loop_scope:
                async with open_nursery_unwrapped() as nursery:
                    session._nursery = nursery
                    await self._session_loop(session, ws)
                    nursery.cancel_scope.cancel()
            ending = session._ending
            if ending == "drop":
                ws.abort()
                await trio.lowlevel.checkpoint()
            elif isinstance(ending, tuple):
                await ws.aclose(*ending)
        finally:
            session._nursery = None
            session.closed.set()
            session._notify()
            self._notify()

    async def _session_loop(self, session: EmulatedGeminiSession, ws: WebSocket) -> None:
        while True:
            message = await self._receive_json(ws)
            if message is None:
                return
            if len(message) != 1:
                self.violations.append(f"client message has {len(message)} top-level keys")
            if "setup" in message:
                self.violations.append("setup sent twice")
                await ws.aclose(1007, "Setup was already sent.")
                return
            message = normalize_client_message(message)
            audio = (message.get("realtimeInput") or {}).get("audio")
            if audio is not None:
                session.audio_bytes += len(base64.b64decode(audio.get("data", "")))
            session.messages.append(message)
            session._notify()
            if session._consume_history(message):
                continue
            handled = False
            kinds = _kinds(message)
            for kind, rule, replace in list(self._rules):
                if kind == "*" or kind in kinds:
                    result = rule(session, message)
                    if result is not None:
                        await result
                    handled = handled or replace
            if self.on_client_message is not None:
                handled = await self.on_client_message(session, message) or handled
            if not handled and self.auto_reply:
                await session._default_reply(message)
