"""A loopback OpenAI Realtime (GA) server for tests, demos and benchmarks.

It speaks the real WebSocket protocol on 127.0.0.1 (port 0), checks the auth header,
sends ``session.created``, records every client message, and answers like the service:
a text turn (``conversation.item.create`` + ``response.create``) gets a spoken reply
(audio deltas plus transcript), audio with energy above a threshold followed by silence
makes a user turn (server VAD), speech during a reply interrupts it, and
``conversation.item.truncate`` is checked against the audio actually sent::

    async with OpenAIRealtimeEmulator() as emulator:
        model = BidiOpenAIRealtimeModel(client_config={"api_key": emulator.api_key,
                                                       "url": emulator.url})
        emulator.queue(FunctionCallReply("get_weather", {"city": "Paris"}))
        async with model.connect() as connection:
            ...
            await emulator.wait_for_client_message("response.create")
            await emulator.barge_in()          # user speech while the assistant speaks
            await emulator.send_error("boom")  # a server ``error`` event
            await emulator.drop()              # abrupt disconnect (no close frame)
            await emulator.expire()            # the service's session time limit

Replies are queued
([`OpenAIRealtimeEmulator.queue`][trio_bidi.testing._openai_emulator.OpenAIRealtimeEmulator.queue])
and used by the next ``response.create`` (or VAD turn); with an empty queue the default reply speaks
``reply_text(<user text>)``.
[`on_client`][trio_bidi.testing._openai_emulator.OpenAIRealtimeEmulator.on_client] adds rules run
for client messages of a type. ``client_message_validator`` is applied to every client message and
``server_message_validator`` to every event the emulator sends; what they report is kept in
`violations`. Each connection is an
[`EmulatedOpenAISession`][trio_bidi.testing.EmulatedOpenAISession] (``emulator.sessions``) with its
own records.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypeAlias
from urllib.parse import parse_qs, urlsplit

import attrs
import numpy as np
import trio

from .._util import open_nursery_unwrapped
from .._websocket import WebSocket, WebSocketClosed, WebSocketServer, serve_websocket
from ._replies import (
    FunctionCallReply,
    Reply,
    SpokenReply,
    encode_chunks,
    speech_chunks,
    tone_chunk,
)
from ._scripting import SessionActions

__all__ = [
    "ClientMessageValidator",
    "EmulatedOpenAISession",
    "FunctionCallReply",
    "OpenAIRealtimeEmulator",
    "Reply",
    "SpokenReply",
    "run_openai_emulator",
]

logger = logging.getLogger(__name__)

ClientMessageValidator: TypeAlias = Callable[[dict[str, Any]], Iterable[str] | None]
"""Checks one message; returns the problems found (empty or None when valid) or raises."""

Rule: TypeAlias = Callable[["EmulatedOpenAISession", dict[str, Any]], Awaitable[None] | None]
"""Called with the session and each client message of a type (see ``on_client``)."""

_RATE = 24000
_BYTES_PER_MS = _RATE * 2 // 1000
_WORDS = re.compile(r"\S+\s*")


def _tone_chunk(chunk_ms: int) -> str:
    return base64.b64encode(tone_chunk(chunk_ms, _RATE)).decode()


class _Response:
    """A response being played: its ids and the scope that can cancel it."""

    def __init__(self, response_id: str) -> None:
        self.id = response_id
        self.scope = trio.CancelScope()
        self.finished = trio.Event()
        self.release = trio.Event()
        self.output: list[dict[str, Any]] = []
        self.audio_item: dict[str, Any] | None = None


@attrs.define(eq=False)
class _Item:
    id: str
    data: dict[str, Any]
    audio_ms: float = 0.0


class EmulatedOpenAISession:
    """One client connection to the emulator: its records and its scripting methods.

    Attributes:
        index: 0 for the first connection.
        headers: The opening request's headers (lower-case names).
        path: The request path.
        model: The ``model`` query parameter.
        messages: Every client message received, decoded, in order.
        config: The session configuration (updated by ``session.update``).
        items: The conversation items (id -> item dict), in order.
        truncations: ``(item_id, audio_end_ms)`` of each accepted truncation.
        errors_sent: Every ``error`` event sent to the client.
        closed: Set when the connection has ended.
    """

    def __init__(
        self,
        emulator: OpenAIRealtimeEmulator,
        index: int,
        ws: WebSocket,
        headers: dict[str, str],
        path: str,
        model: str,
    ) -> None:
        self._emulator = emulator
        self._ws = ws
        self.index = index
        self.headers = headers
        self.path = path
        self.model = model
        self.messages: list[dict[str, Any]] = []
        self.config: dict[str, Any] = _default_session(f"sess_{index:04d}", model)
        self.items: dict[str, _Item] = {}
        self.truncations: list[tuple[str, int]] = []
        self.errors_sent: list[dict[str, Any]] = []
        self.closed = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._receive_scope = trio.CancelScope()
        self._close_request: tuple[int, str] | None = None
        self._serve_task: trio.lowlevel.Task | None = None
        self._active: _Response | None = None
        self._buffer_ms = 0.0
        self._audio_total_ms = 0.0
        self._speaking = False
        self._silence_ms = 0.0
        self._speech_item_id: str | None = None
        self._speech_start_ms = 0

    # ------------------------------------------------------------------ scripting

    @property
    def response_active(self) -> bool:
        """True while a response is being played."""
        return self._active is not None

    async def send(self, message: Mapping[str, Any]) -> None:
        """Send a server event (an ``event_id`` is added when missing)."""
        data = dict(message)
        data.setdefault("event_id", self._emulator._next_id("event"))
        validator = self._emulator.server_message_validator
        if validator is not None:
            self._emulator._check(self, "server", data, validator)
        if data.get("type") == "error":
            self.errors_sent.append(data)
        try:
            await self._ws.send_text(json.dumps(data))
        except WebSocketClosed:
            logger.debug("session=<%d> | client gone; event not sent", self.index)

    async def send_raw(self, text: str) -> None:
        """Send a text frame as is (for example malformed JSON)."""
        try:
            await self._ws.send_text(text)
        except WebSocketClosed:
            logger.debug("session=<%d> | client gone; frame not sent", self.index)

    async def send_error(
        self,
        message: str = "The server had an error while processing your request.",
        *,
        code: str | None = None,
        error_type: str = "server_error",
        param: str | None = None,
        event_id: str | None = None,
    ) -> None:
        """Send an ``error`` event."""
        await self.send(
            {
                "type": "error",
                "error": {
                    "type": error_type,
                    "code": code,
                    "message": message,
                    "param": param,
                    "event_id": event_id,
                },
            }
        )

    async def respond(self, reply: Reply | None = None) -> None:
        """Start a response now (the next queued or default reply when None)."""
        await self._start_response(reply)

    async def barge_in(self) -> None:
        """Emulate the user starting to speak: ``speech_started``, and cancel the reply."""
        self._speech_item_id = self._emulator._next_id("item")
        await self.send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": int(self._audio_total_ms),
                "item_id": self._speech_item_id,
            }
        )
        await self.cancel_response("turn_detected")

    async def cancel_response(self, reason: str = "client_cancelled") -> bool:
        """Cancel the active response (``response.done`` with status cancelled).

        Returns:
            False when no response was active.
        """
        active = self._active
        if active is None:
            return False
        active.scope.cancel()
        await active.finished.wait()
        await self._end_response(active, "cancelled", reason)
        return True

    def finish(self) -> None:
        """Let a held reply (``SpokenReply(hold=True)``) complete."""
        if self._active is not None:
            self._active.release.set()

    async def wait_response_done(self) -> None:
        """Wait until no response is being played."""
        while self._active is not None:
            await self._emulator._changed_wait()

    async def drop(self) -> None:
        """End the connection abruptly: close the TCP stream without a close frame."""
        self._ws.abort()
        await trio.lowlevel.checkpoint()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection cleanly with a close frame (from any task)."""
        if self.closed.is_set():
            return
        # Only the serving task reads the socket, so it performs the close handshake.
        self._close_request = (code, reason)
        self._receive_scope.cancel()
        if trio.lowlevel.current_task() is not self._serve_task:
            await self.closed.wait()

    async def expire(self) -> None:
        """End the session as the service does at its time limit (error, then close)."""
        await self.send_error(
            "Your session hit the maximum duration of 60 minutes.",
            code="session_expired",
            error_type="invalid_request_error",
        )
        await self.close(1000, "session expired")

    # ------------------------------------------------------------------ the connection

    async def _serve(self) -> None:
        emulator = self._emulator
        self._serve_task = trio.lowlevel.current_task()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if emulator.session_time_limit_s is not None:
                nursery.start_soon(self._time_limit, emulator.session_time_limit_s)
            await self.send({"type": "session.created", "session": self.config})
            try:
                with self._receive_scope:
                    while True:
                        raw = await self._ws.receive()
                        await self._on_raw(raw)
                if self._close_request is not None:
                    await self._ws.aclose(*self._close_request)
            except WebSocketClosed:
                pass
            finally:
                nursery.cancel_scope.cancel()
                self.closed.set()
                emulator._notify()

    async def _time_limit(self, seconds: float) -> None:
        await trio.sleep(seconds)
        await self.expire()

    async def _on_raw(self, raw: str | bytes) -> None:
        emulator = self._emulator
        try:
            message = json.loads(raw)
        except ValueError as exc:
            emulator._violation(self, len(self.messages), "?", f"not JSON: {exc}")
            await self.send_error(
                f"Invalid JSON: {exc}", code="invalid_json", error_type="invalid_request_error"
            )
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            emulator._violation(self, len(self.messages), "?", "not an object with a type")
            await self.send_error(
                "Missing or invalid 'type'.",
                code="invalid_event",
                error_type="invalid_request_error",
            )
            return
        kind = message["type"]
        self.messages.append(message)
        emulator.client_messages.append(message)
        if emulator.client_message_validator is not None:
            emulator._check(self, "client", message, emulator.client_message_validator)
        emulator._notify()
        replaced = False
        for rule_kind, rule, replace in list(emulator._rules):
            if rule_kind in (kind, "*"):
                result = rule(self, message)
                if result is not None:
                    await result
                replaced = replaced or replace
        if replaced:
            return
        handler = _HANDLERS.get(kind)
        if handler is None:
            await self.send_error(
                f"Invalid value: '{kind}'. Supported values are: {', '.join(sorted(_HANDLERS))}.",
                code="invalid_value",
                error_type="invalid_request_error",
                param="type",
                event_id=message.get("event_id"),
            )
            return
        await handler(self, message)

    # ------------------------------------------------------------------ client events

    async def _on_session_update(self, message: dict[str, Any]) -> None:
        session = message.get("session")
        if not isinstance(session, dict) or session.get("type") != "realtime":
            await self.send_error(
                "session.type must be 'realtime'.",
                code="invalid_value",
                error_type="invalid_request_error",
                param="session.type",
                event_id=message.get("event_id"),
            )
            return
        _merge(self.config, session)
        await self.send({"type": "session.updated", "session": self.config})

    async def _on_append(self, message: dict[str, Any]) -> None:
        audio = message.get("audio")
        try:
            pcm = base64.b64decode(audio, validate=True) if isinstance(audio, str) else None
        except (binascii.Error, ValueError):
            pcm = None
        if pcm is None or len(pcm) % 2:
            await self.send_error(
                "Invalid 'audio'. Expected base64-encoded 16-bit PCM.",
                code="invalid_value",
                error_type="invalid_request_error",
                param="audio",
                event_id=message.get("event_id"),
            )
            return
        chunk_ms = len(pcm) / _BYTES_PER_MS
        self._audio_total_ms += chunk_ms
        self._buffer_ms += chunk_ms
        turn_detection = self.config["audio"]["input"].get("turn_detection")
        threshold = self._emulator.vad_threshold
        if not turn_detection or threshold is None or not pcm:
            return
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
        loud = float(np.sqrt(np.mean(samples * samples))) >= threshold
        if loud and not self._speaking:
            self._speaking = True
            self._silence_ms = 0.0
            self._speech_start_ms = int(self._audio_total_ms - chunk_ms)
            self._speech_item_id = self._emulator._next_id("item")
            await self.send(
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": self._speech_start_ms,
                    "item_id": self._speech_item_id,
                }
            )
            if turn_detection.get("interrupt_response", True):
                await self.cancel_response("turn_detected")
        elif self._speaking:
            self._silence_ms = 0.0 if loud else self._silence_ms + chunk_ms
            silence_limit = turn_detection.get("silence_duration_ms") or 500
            if self._silence_ms >= silence_limit:
                self._speaking = False
                await self.send(
                    {
                        "type": "input_audio_buffer.speech_stopped",
                        "audio_end_ms": int(self._audio_total_ms),
                        "item_id": self._speech_item_id,
                    }
                )
                await self._commit(self._speech_item_id)
                if turn_detection.get("create_response", True):
                    await self._start_response(None)

    async def _on_commit(self, message: dict[str, Any]) -> None:
        if self._buffer_ms < 100:
            await self.send_error(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {self._buffer_ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
                error_type="invalid_request_error",
                event_id=message.get("event_id"),
            )
            return
        await self._commit(None)

    async def _on_clear(self, message: dict[str, Any]) -> None:
        self._buffer_ms = 0.0
        await self.send({"type": "input_audio_buffer.cleared"})

    async def _commit(self, item_id: str | None) -> None:
        emulator = self._emulator
        item_id = item_id or emulator._next_id("item")
        previous = next(reversed(self.items), None)
        audio_ms = self._buffer_ms
        self._buffer_ms = 0.0
        await self.send(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item_id,
                "previous_item_id": previous,
            }
        )
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self.items[item_id] = _Item(item_id, item, audio_ms)
        await self.send(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
        )
        await self.send(
            {"type": "conversation.item.done", "previous_item_id": previous, "item": item}
        )
        if self.config["audio"]["input"].get("transcription"):
            transcript = emulator.transcribe(audio_ms)
            item["content"][0]["transcript"] = transcript
            for word in _WORDS.findall(transcript):
                await self.send(
                    {
                        "type": "conversation.item.input_audio_transcription.delta",
                        "item_id": item_id,
                        "content_index": 0,
                        "delta": word,
                    }
                )
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item_id,
                    "content_index": 0,
                    "transcript": transcript,
                    "usage": {"type": "duration", "seconds": round(audio_ms / 1000, 3)},
                }
            )

    async def _on_item_create(self, message: dict[str, Any]) -> None:
        item = message.get("item")
        if not isinstance(item, dict) or item.get("type") not in (
            "message",
            "function_call",
            "function_call_output",
        ):
            await self.send_error(
                "Invalid 'item'.",
                code="invalid_value",
                error_type="invalid_request_error",
                param="item",
                event_id=message.get("event_id"),
            )
            return
        stored = dict(item)
        item_id = stored.get("id") or self._emulator._next_id("item")
        stored.update(id=item_id, object="realtime.item", status="completed")
        previous = next(reversed(self.items), None)
        self.items[item_id] = _Item(item_id, stored)
        await self.send(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": stored}
        )
        await self.send(
            {"type": "conversation.item.done", "previous_item_id": previous, "item": stored}
        )

    async def _on_item_delete(self, message: dict[str, Any]) -> None:
        item_id = message.get("item_id")
        if self.items.pop(str(item_id), None) is None:
            await self._item_not_found(message)
            return
        await self.send({"type": "conversation.item.deleted", "item_id": item_id})

    async def _on_item_retrieve(self, message: dict[str, Any]) -> None:
        item = self.items.get(str(message.get("item_id")))
        if item is None:
            await self._item_not_found(message)
            return
        await self.send({"type": "conversation.item.retrieved", "item": item.data})

    async def _item_not_found(self, message: dict[str, Any]) -> None:
        await self.send_error(
            f"Item with item_id '{message.get('item_id')}' not found.",
            code="item_not_found",
            error_type="invalid_request_error",
            param="item_id",
            event_id=message.get("event_id"),
        )

    async def _on_truncate(self, message: dict[str, Any]) -> None:
        item_id = message.get("item_id")
        end_ms = message.get("audio_end_ms")
        item = self.items.get(str(item_id))
        if item is None or item.data.get("role") != "assistant":
            await self._item_not_found(message)
            return
        if (
            not isinstance(end_ms, int)
            or end_ms < 0
            or end_ms > item.audio_ms
            or (item.audio_ms == 0)
        ):
            await self.send_error(
                f"Audio content of {item.audio_ms:.0f}ms is already shorter than {end_ms}ms",
                code="invalid_value",
                error_type="invalid_request_error",
                param="audio_end_ms",
                event_id=message.get("event_id"),
            )
            return
        item.audio_ms = float(end_ms)
        self.truncations.append((str(item_id), end_ms))
        await self.send(
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": message.get("content_index", 0),
                "audio_end_ms": end_ms,
            }
        )

    async def _on_response_create(self, message: dict[str, Any]) -> None:
        if self._active is not None:
            await self.send_error(
                "Conversation already has an active response in progress: "
                f"{self._active.id}. Wait until the response is finished before creating a "
                "new one.",
                code="conversation_already_has_active_response",
                error_type="invalid_request_error",
                event_id=message.get("event_id"),
            )
            return
        await self._start_response(None)

    async def _on_response_cancel(self, message: dict[str, Any]) -> None:
        if not await self.cancel_response("client_cancelled"):
            await self.send_error(
                "Cancellation failed: no active response found",
                code="response_cancel_not_active",
                error_type="invalid_request_error",
                event_id=message.get("event_id"),
            )

    async def _on_output_clear(self, message: dict[str, Any]) -> None:
        active = self._active
        await self.cancel_response("client_cancelled")
        if active is not None:
            await self.send({"type": "output_audio_buffer.cleared", "response_id": active.id})

    # ------------------------------------------------------------------ responses

    def _default_reply(self) -> Reply:
        emulator = self._emulator
        last = next(reversed(self.items.values()), None)
        data = last.data if last is not None else {}
        if data.get("type") == "function_call_output":
            return SpokenReply(text=f"The result is {data.get('output', '')}.")
        text = ""
        for part in data.get("content", ()) if data.get("role") == "user" else ():
            text = part.get("text") or part.get("transcript") or text
        return SpokenReply(text=emulator.reply_text(text), audio_ms=emulator.reply_audio_ms)

    async def _start_response(self, reply: Reply | None) -> None:
        emulator = self._emulator
        if reply is None:
            reply = emulator._replies.popleft() if emulator._replies else self._default_reply()
        active = _Response(emulator._next_id("resp"))
        self._active = active
        await self.send(
            {
                "type": "response.created",
                "response": {
                    "id": active.id,
                    "object": "realtime.response",
                    "status": "in_progress",
                    "status_details": None,
                    "output": [],
                    "conversation_id": "conv_emulator",
                    "output_modalities": self.config.get("output_modalities") or ["audio"],
                    "usage": None,
                },
            }
        )
        assert self._nursery is not None
        self._nursery.start_soon(self._play, active, reply)

    async def _play(self, active: _Response, reply: Reply) -> None:
        try:
            with active.scope:
                if isinstance(reply, FunctionCallReply):
                    await self._play_function_call(active, reply)
                else:
                    await self._play_spoken(active, reply)
                    if reply.hold:
                        await active.release.wait()
        finally:
            active.finished.set()
        if not active.scope.cancelled_caught:
            await self._end_response(active, "completed", None)

    async def _play_spoken(self, active: _Response, reply: SpokenReply) -> None:
        emulator = self._emulator
        text_only = self.config.get("output_modalities") == ["text"]
        item_id = emulator._next_id("item")
        part_type = "text" if text_only else "audio"
        content_type = "output_text" if text_only else "output_audio"
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        stored = _Item(item_id, item)
        self.items[item_id] = stored
        active.audio_item = item
        active.output.append(item)
        common = {"response_id": active.id, "item_id": item_id, "output_index": 0}
        await self.send(
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "response_id": active.id,
                "item": item,
            }
        )
        await self.send({"type": "conversation.item.added", "previous_item_id": None, "item": item})
        await self.send(
            {
                "type": "response.content_part.added",
                **common,
                "content_index": 0,
                "part": {"type": part_type, "transcript": ""},
            }
        )
        words = _WORDS.findall(reply.text)
        audio_chunks, chunk_ms = self._audio_of(reply)
        chunks = len(audio_chunks) if not text_only else max(1, len(words))
        delta_kind = (
            "response.output_text.delta" if text_only else "response.output_audio_transcript.delta"
        )
        for index in range(chunks):
            if not text_only:
                await self.send(
                    {
                        "type": "response.output_audio.delta",
                        **common,
                        "content_index": 0,
                        "delta": audio_chunks[index],
                    }
                )
                stored.audio_ms += chunk_ms[index]
            piece = "".join(
                words[index * len(words) // chunks : (index + 1) * len(words) // chunks]
            )
            if piece:
                await self.send({"type": delta_kind, **common, "content_index": 0, "delta": piece})
            if reply.chunk_interval_s:
                await trio.sleep(reply.chunk_interval_s)
        if text_only:
            await self.send(
                {
                    "type": "response.output_text.done",
                    **common,
                    "content_index": 0,
                    "text": reply.text,
                }
            )
            item["content"] = [{"type": content_type, "text": reply.text}]
        else:
            await self.send({"type": "response.output_audio.done", **common, "content_index": 0})
            await self.send(
                {
                    "type": "response.output_audio_transcript.done",
                    **common,
                    "content_index": 0,
                    "transcript": reply.text,
                }
            )
            item["content"] = [{"type": content_type, "transcript": reply.text}]
        await self.send(
            {
                "type": "response.content_part.done",
                **common,
                "content_index": 0,
                "part": {"type": part_type, "transcript": reply.text},
            }
        )

    def _audio_of(self, reply: SpokenReply) -> tuple[list[str], list[float]]:
        """The reply's audio deltas (base64) and their lengths in milliseconds."""
        if reply.pcm is None:
            count = max(1, math.ceil(reply.audio_ms / reply.chunk_ms))
            return [self._emulator._chunk(reply.chunk_ms)] * count, [float(reply.chunk_ms)] * count
        pieces = speech_chunks(reply, _RATE)
        return encode_chunks(pieces), [len(piece) / _BYTES_PER_MS for piece in pieces]

    async def _play_function_call(self, active: _Response, reply: FunctionCallReply) -> None:
        emulator = self._emulator
        item_id = emulator._next_id("item")
        call_id = reply.call_id or emulator._next_id("call")
        arguments = (
            reply.arguments if isinstance(reply.arguments, str) else json.dumps(reply.arguments)
        )
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "call_id": call_id,
            "name": reply.name,
            "arguments": "",
        }
        self.items[item_id] = _Item(item_id, item)
        active.output.append(item)
        common = {
            "response_id": active.id,
            "item_id": item_id,
            "output_index": 0,
            "call_id": call_id,
        }
        await self.send(
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "response_id": active.id,
                "item": item,
            }
        )
        pieces = max(1, reply.argument_chunks)
        for index in range(pieces):
            piece = arguments[
                index * len(arguments) // pieces : (index + 1) * len(arguments) // pieces
            ]
            if piece:
                await self.send(
                    {"type": "response.function_call_arguments.delta", **common, "delta": piece}
                )
        await self.send(
            {
                "type": "response.function_call_arguments.done",
                **common,
                "name": reply.name,
                "arguments": arguments,
            }
        )
        item["arguments"] = arguments

    async def _end_response(self, active: _Response, status: str, reason: str | None) -> None:
        if self._active is active:
            self._active = None
        audio_ms = 0.0
        for item in active.output:
            item["status"] = "completed" if status == "completed" else "incomplete"
            stored = self.items.get(item["id"])
            if stored is not None:
                audio_ms += stored.audio_ms
            await self.send(
                {
                    "type": "response.output_item.done",
                    "response_id": active.id,
                    "output_index": 0,
                    "item": item,
                }
            )
        text_tokens = sum(
            len(str(i.get("content") or i.get("arguments") or "")) // 4 for i in active.output
        )
        audio_tokens = int(audio_ms / 50)
        await self.send(
            {
                "type": "response.done",
                "response": {
                    "id": active.id,
                    "object": "realtime.response",
                    "status": status,
                    "status_details": None
                    if reason is None
                    else {"type": status, "reason": reason},
                    "output": active.output,
                    "conversation_id": "conv_emulator",
                    "output_modalities": self.config.get("output_modalities") or ["audio"],
                    "usage": {
                        "total_tokens": 120 + text_tokens + audio_tokens,
                        "input_tokens": 120,
                        "output_tokens": text_tokens + audio_tokens,
                        "input_token_details": {
                            "text_tokens": 100,
                            "audio_tokens": 20,
                            "image_tokens": 0,
                            "cached_tokens": 64,
                            "cached_tokens_details": {
                                "text_tokens": 64,
                                "audio_tokens": 0,
                                "image_tokens": 0,
                            },
                        },
                        "output_token_details": {
                            "text_tokens": text_tokens,
                            "audio_tokens": audio_tokens,
                        },
                    },
                },
            }
        )
        self._emulator._notify()


_HANDLERS: dict[str, Callable[[EmulatedOpenAISession, dict[str, Any]], Awaitable[None]]] = {
    "session.update": EmulatedOpenAISession._on_session_update,
    "input_audio_buffer.append": EmulatedOpenAISession._on_append,
    "input_audio_buffer.commit": EmulatedOpenAISession._on_commit,
    "input_audio_buffer.clear": EmulatedOpenAISession._on_clear,
    "output_audio_buffer.clear": EmulatedOpenAISession._on_output_clear,
    "conversation.item.create": EmulatedOpenAISession._on_item_create,
    "conversation.item.delete": EmulatedOpenAISession._on_item_delete,
    "conversation.item.retrieve": EmulatedOpenAISession._on_item_retrieve,
    "conversation.item.truncate": EmulatedOpenAISession._on_truncate,
    "response.create": EmulatedOpenAISession._on_response_create,
    "response.cancel": EmulatedOpenAISession._on_response_cancel,
}


def _default_session(session_id: str, model: str) -> dict[str, Any]:
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "Your knowledge cutoff is 2023-10. You are a helpful assistant.",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "prompt": None,
        "include": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": _RATE},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 200,
                    "idle_timeout_ms": None,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": _RATE},
                "voice": "alloy",
                "speed": 1.0,
            },
        },
    }


def _merge(target: dict[str, Any], update: Mapping[str, Any]) -> None:
    for key, value in update.items():
        if (
            isinstance(value, Mapping)
            and isinstance(target.get(key), dict)
            and key != "turn_detection"
        ):
            _merge(target[key], value)
        else:
            target[key] = value


def _default_reply_text(user_text: str) -> str:
    return f"You said: {user_text}" if user_text else "Hello from the emulator."


def _default_transcribe(audio_ms: float) -> str:
    return f"(spoken input, {audio_ms / 1000:.1f} seconds)"


class OpenAIRealtimeEmulator(SessionActions[EmulatedOpenAISession]):
    """A loopback OpenAI Realtime server; see the module docstring.

    Args:
        api_key: The key clients must send as ``Authorization: Bearer <key>`` (None:
            accept any).
        client_message_validator: Applied to every client message; the problems it returns
            (or the exception it raises) are kept in `violations`.
        server_message_validator: The same for every server event the emulator sends (to
            prove the emulator itself speaks the protocol).
        reply_text: Builds the default reply from the user's text or transcript.
        reply_audio_ms: Audio length of default replies.
        transcribe: Builds the input transcript of committed audio from its length.
        vad_threshold: RMS (16-bit scale) above which appended audio counts as speech for
            server VAD; None turns automatic turns off (audio is only buffered).
        session_time_limit_s: End each session after this long like the service does
            (an ``error`` with code ``session_expired``, then a close).
    """

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        client_message_validator: ClientMessageValidator | None = None,
        server_message_validator: ClientMessageValidator | None = None,
        reply_text: Callable[[str], str] = _default_reply_text,
        reply_audio_ms: int = 600,
        transcribe: Callable[[float], str] = _default_transcribe,
        vad_threshold: float | None = 500.0,
        session_time_limit_s: float | None = None,
    ) -> None:
        self.api_key = api_key
        self.client_message_validator = client_message_validator
        self.server_message_validator = server_message_validator
        self.reply_text = reply_text
        self.reply_audio_ms = reply_audio_ms
        self.transcribe = transcribe
        self.vad_threshold = vad_threshold
        self.session_time_limit_s = session_time_limit_s
        #: Every connection, in order.
        self.sessions: list[EmulatedOpenAISession] = []
        #: Every client message of every session, decoded, in order.
        self.client_messages: list[dict[str, Any]] = []
        #: Problems found by ``client_message_validator`` (and undecodable messages).
        self.violations: list[str] = []
        #: Opening requests refused (``(status, reason)``).
        self.refused: list[tuple[int, str]] = []
        self._rules: list[tuple[str, Rule, bool]] = []
        self._replies: deque[Reply] = deque()
        self._ids = 0
        self._chunks: dict[int, str] = {}
        self._changed = trio.Event()
        self._server: WebSocketServer | None = None
        self._stack: AsyncExitStack | None = None

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> OpenAIRealtimeEmulator:
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            nursery = await stack.enter_async_context(open_nursery_unwrapped())
            self._server = await nursery.start(self._serve)
            stack.callback(self._server.close)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(*exc_info)  # type: ignore[arg-type]

    async def _serve(self, task_status: trio.TaskStatus[WebSocketServer]) -> None:
        await serve_websocket(self._handle, authorize=self._authorize, task_status=task_status)

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>/v1/realtime``: the model's ``client_config["url"]``."""
        return f"{self.base_url}/realtime"

    @property
    def base_url(self) -> str:
        """``ws://127.0.0.1:<port>/v1``: the ``openai`` client's ``websocket_base_url``."""
        if self._server is None:
            raise RuntimeError("the emulator is not running (use `async with`)")
        return f"{self._server.url}/v1"

    def _authorize(self, request: Any) -> tuple[int, str] | None:
        headers = {str(k).lower(): str(v) for k, v in request.headers.raw_items()}
        query = parse_qs(urlsplit(request.path).query)
        refusal: tuple[int, str] | None = None
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            refusal = (401, "Incorrect API key provided.")
        elif not query.get("model") and not query.get("call_id"):
            refusal = (400, "Missing required parameter: 'model'.")
        if refusal is not None:
            self.refused.append(refusal)
        return refusal

    async def _handle(self, ws: WebSocket) -> None:
        request = ws.request
        headers = (
            {str(k).lower(): str(v) for k, v in request.headers.raw_items()} if request else {}
        )
        target = urlsplit(request.path if request else "/")
        model = (parse_qs(target.query).get("model") or [""])[0]
        session = EmulatedOpenAISession(self, len(self.sessions), ws, headers, target.path, model)
        self.sessions.append(session)
        if "openai-beta" in headers:
            self._violation(
                session,
                -1,
                "handshake",
                f"OpenAI-Beta header sent ({headers['openai-beta']}); GA clients send none",
            )
        self._notify()
        await session._serve()

    # ------------------------------------------------------------------ records

    def _next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}_{self._ids:06d}"

    def _chunk(self, chunk_ms: int) -> str:
        chunk = self._chunks.get(chunk_ms)
        if chunk is None:
            chunk = self._chunks[chunk_ms] = _tone_chunk(chunk_ms)
        return chunk

    def _check(
        self,
        session: EmulatedOpenAISession,
        side: str,
        message: dict[str, Any],
        validator: ClientMessageValidator,
    ) -> None:
        try:
            problems = list(validator(message) or ())
        except Exception as exc:  # a validator that raises reports a violation too
            problems = [str(exc) or repr(exc)]
        index = len(session.messages) - 1 if side == "client" else -1
        for problem in problems:
            self._violation(session, index, f"{side} {message.get('type')}", problem)

    def _violation(
        self, session: EmulatedOpenAISession, index: int, kind: str, problem: str
    ) -> None:
        text = f"session {session.index}, message {index} ({kind}): {problem}"
        logger.warning("violation=<%s> | message rejected by the validator", text)
        self.violations.append(text)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _changed_wait(self) -> None:
        await self._changed.wait()

    # ------------------------------------------------------------------ scripting

    def queue(self, *replies: Reply) -> None:
        """Queue replies for the next responses, in order."""
        self._replies.extend(replies)

    def on_client(self, kind: str, rule: Rule, *, replace_default: bool = False) -> None:
        """Run ``rule(session, message)`` for each client message of type ``kind`` (``*``: all).

        Args:
            kind: The client event type.
            rule: A function or coroutine function.
            replace_default: Skip the emulator's own handling of these messages.
        """
        self._rules.append((kind, rule, replace_default))

    async def wait_for_session(self, index: int = -1) -> EmulatedOpenAISession:
        """Wait until a session exists (``index`` from 0; -1: the newest) and return it."""
        wanted = index if index >= 0 else 0
        while len(self.sessions) <= wanted:
            await self._changed.wait()
        return self.sessions[index]

    async def wait_for_client_message(
        self, kind: str, *, count: int = 1, session: EmulatedOpenAISession | None = None
    ) -> dict[str, Any]:
        """Wait until ``count`` client messages of type ``kind`` arrived; return the last one.

        Args:
            kind: The client event type.
            count: How many to wait for (counted over all sessions unless ``session``).
            session: Count only this session's messages.
        """
        while True:
            source = session.messages if session is not None else self.client_messages
            found = [m for m in source if m.get("type") == kind]
            if len(found) >= count:
                return found[count - 1]
            await self._changed.wait()

    def messages_of(self, kind: str) -> list[dict[str, Any]]:
        """Return the client messages of one type received so far (all sessions)."""
        return [m for m in self.client_messages if m.get("type") == kind]

    async def send(
        self, message: Mapping[str, Any], session: EmulatedOpenAISession | None = None
    ) -> None:
        """Send a server event to a session (default: the newest)."""
        await (await self._session(session)).send(message)

    async def send_error(
        self,
        message: str = "The server had an error while processing your request.",
        *,
        code: str | None = None,
        error_type: str = "server_error",
        session: EmulatedOpenAISession | None = None,
    ) -> None:
        """Send an ``error`` event to a session (default: the newest)."""
        await (await self._session(session)).send_error(message, code=code, error_type=error_type)

    async def wait_response_done(self, session: EmulatedOpenAISession | None = None) -> None:
        """Wait until the session (default: the newest) plays no response."""
        await (await self._session(session)).wait_response_done()

    async def expire(self, session: EmulatedOpenAISession | None = None) -> None:
        """End a session as at the service's time limit."""
        await (await self._session(session)).expire()


@asynccontextmanager
async def run_openai_emulator(**kwargs: Any) -> AsyncIterator[OpenAIRealtimeEmulator]:
    """Run an emulator: the same as ``async with OpenAIRealtimeEmulator(**kwargs)``."""
    async with OpenAIRealtimeEmulator(**kwargs) as emulator:
        yield emulator
