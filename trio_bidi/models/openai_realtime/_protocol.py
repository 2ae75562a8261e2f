"""The OpenAI Realtime session as a sans-IO state machine.

`OpenAIRealtimeProtocol` turns decoded server messages into provider-neutral
events and input events into client message texts. It holds the state the mapping needs
(function-call names and argument fragments, transcripts so far, the assistant audio item
that a barge-in may truncate) and never touches a socket or a clock, so it is tested
synchronously. It never raises on server input: anything malformed becomes a
[`BidiErrorEvent`][trio_bidi.events.BidiErrorEvent].
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from ...errors import (
    BidiAudioFormatError,
    BidiConfigurationError,
    BidiProtocolError,
    BidiProviderError,
)
from ...events import (
    BidiAudioInputEvent,
    BidiAudioStreamEvent,
    BidiErrorEvent,
    BidiImageInputEvent,
    BidiInterruptionEvent,
    BidiOutputEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiTextInputEvent,
    BidiTranscriptStreamEvent,
    StopReason,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from ...types import Message, ToolResult, ToolSpec
from .._untrusted import (
    BASE64_CHARS,
    DEFAULT_MAX_DEPTH,
    JSONNestingError,
    loads_bounded,
    nesting_exceeds,
    server_text,
)
from . import _wire

__all__ = ["OpenAIRealtimeProtocol"]

logger = logging.getLogger(__name__)

_STOP_REASONS: Final[dict[str, StopReason]] = {
    "completed": "complete",
    "cancelled": "interrupted",
    "failed": "error",
    "incomplete": "interrupted",
}
_HARMLESS_ERROR_CODES: Final = frozenset({"response_cancel_not_active"})
_EXPIRED_ERROR_CODES: Final = frozenset({"session_expired"})
# Known server events that carry nothing the application needs.
_IGNORED: Final = frozenset(
    {
        "session.created",
        "session.updated",
        "conversation.created",
        "conversation.item.created",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.deleted",
        "conversation.item.retrieved",
        "conversation.item.truncated",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "input_audio_buffer.cleared",
        "input_audio_buffer.timeout_triggered",
        "input_audio_buffer.dtmf_event_received",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "output_audio_buffer.cleared",
        "rate_limits.updated",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_audio.done",
        "mcp_list_tools.in_progress",
        "mcp_list_tools.completed",
        "mcp_list_tools.failed",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
    }
)

_NO_EVENTS: Final[list[BidiOutputEvent]] = []


class _Call:
    """A function call being streamed: its name and argument fragments."""

    __slots__ = ("name", "parts")

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.parts: list[str] = []


class OpenAIRealtimeProtocol:
    """Maps one OpenAI Realtime session's messages to events and back.

    Args:
        config: A resolved provider config (``resolve_provider_config``).
    """

    def __init__(
        self, config: Mapping[str, Any], *, max_json_depth: int = DEFAULT_MAX_DEPTH
    ) -> None:
        audio = config["audio"]
        self._max_depth = max_json_depth
        # Client messages the protocol itself must send (error results of malformed calls).
        self._outbox: list[str] = []
        # Per response: for each function call, whether it went to the application
        # (True) or was answered here with an error result (False).
        self._response_calls: dict[str, list[bool]] = {}
        self._config = config
        self._input_rate: int = audio["input_rate"]
        self._output_rate: int = audio["output_rate"]
        self._channels: int = audio["channels"]
        self._format: str = audio["format"]
        self._calls: dict[str, _Call] = {}
        self._awaiting_results: set[str] = set()
        self._tool_responses: set[str] = set()
        self._transcripts: dict[tuple[str, Any, Any], str] = {}
        self._audio_item_id: str | None = None
        self._audio_content_index = 0
        self._audio_bytes = 0
        self._truncated_item_id: str | None = None
        #: True once the server said the session reached its maximum duration.
        self.expired = False
        self._handlers: dict[str, Callable[[dict[str, Any]], list[BidiOutputEvent]]] = {
            "response.output_audio.delta": self._on_audio_delta,
            "response.output_audio_transcript.delta": self._on_output_delta,
            "response.output_text.delta": self._on_output_delta,
            "response.output_audio_transcript.done": self._on_transcript_done,
            "response.output_text.done": self._on_text_done,
            "response.created": self._on_response_created,
            "response.done": self._on_response_done,
            "response.cancelled": self._on_response_cancelled,
            "response.output_item.added": self._on_output_item_added,
            "response.function_call_arguments.delta": self._on_arguments_delta,
            "response.function_call_arguments.done": self._on_arguments_done,
            "input_audio_buffer.speech_started": self._on_speech_started,
            "conversation.item.input_audio_transcription.delta": self._on_input_delta,
            "conversation.item.input_audio_transcription.completed": self._on_input_completed,
            "conversation.item.input_audio_transcription.segment": self._on_input_segment,
            "conversation.item.input_audio_transcription.failed": self._on_input_failed,
            "error": self._on_error,
        }

    # ------------------------------------------------------------------ client -> server

    def open_messages(
        self,
        system_prompt: str | None,
        tools: Sequence[ToolSpec],
        messages: Sequence[Message],
    ) -> list[str]:
        """Return the texts to send once ``session.created`` arrived: config, then history."""
        texts = [
            _wire.encode(
                _wire.session_update(self._config, instructions=system_prompt, tools=tools)
            )
        ]
        texts.extend(_wire.encode(_wire.item_create(i)) for i in self.history_items(messages))
        return texts

    def history_items(self, messages: Sequence[Message]) -> list[dict[str, Any]]:
        """Convert Strands messages to conversation items.

        Tool use ids are shortened with `_wire.short_call_id` (the same mapping for
        a use and its result); results whose use is not in the history are skipped.

        Raises:
            BidiConfigurationError: A message has an unknown role, or a tool result holds
                content the API cannot take.
        """
        items: list[dict[str, Any]] = []
        seen_calls: set[str] = set()
        for index, message in enumerate(messages):
            role = message.get("role")
            if role not in ("user", "assistant"):
                raise BidiConfigurationError(
                    f"messages[{index}]: role {role!r} is not 'user' or 'assistant'"
                )
            for block in message.get("content", []):
                if "text" in block:
                    items.append(_wire.text_item(block["text"], role))
                elif "toolUse" in block:
                    use = block["toolUse"]
                    call_id = _wire.short_call_id(use["toolUseId"])
                    seen_calls.add(call_id)
                    items.append(
                        _wire.function_call_item(call_id, use["name"], use.get("input", {}))
                    )
                elif "toolResult" in block:
                    result = block["toolResult"]
                    call_id = _wire.short_call_id(result["toolUseId"])
                    if call_id not in seen_calls:
                        logger.warning(
                            "tool_use_id=<%s> | skipping a tool result whose tool use is "
                            "not in the history",
                            result["toolUseId"],
                        )
                        continue
                    items.append(
                        _wire.function_call_output_item(call_id, _wire.tool_result_output(result))
                    )
                else:
                    logger.warning(
                        "message_index=<%d>, keys=<%s> | skipping a content block the "
                        "OpenAI Realtime API cannot take",
                        index,
                        sorted(block),
                    )
        return items

    def send(self, event: object) -> list[str]:
        """Return the texts that send one input event or tool result.

        Raises:
            BidiAudioFormatError: Audio whose rate, channels or format differ from the
                session's.
            BidiConfigurationError: An image type or tool result content the API rejects.
            TypeError: Not an event a connection sends.
        """
        kind = type(event)
        if kind is BidiAudioInputEvent:
            assert isinstance(event, BidiAudioInputEvent)
            if (
                event.sample_rate != self._input_rate
                or event.channels != self._channels
                or event.format != self._format
            ):
                raise BidiAudioFormatError(
                    f"audio input is {event.format} {event.sample_rate} Hz, {event.channels} "
                    f"channel(s), but the session takes {self._format} {self._input_rate} Hz, "
                    f"{self._channels} channel(s); convert it before sending"
                )
            return [_wire.audio_append(event.audio)]
        if kind is BidiTextInputEvent:
            assert isinstance(event, BidiTextInputEvent)
            create = _wire.encode(_wire.item_create(_wire.text_item(event.text, event.role)))
            if event.role == "user":
                return [create, _wire.encode(_wire.response_create())]
            return [create]
        if kind is ToolResultEvent:
            assert isinstance(event, ToolResultEvent)
            result = event.tool_result
            call_id = _wire.short_call_id(result["toolUseId"])
            item = _wire.function_call_output_item(call_id, _wire.tool_result_output(result))
            texts = [_wire.encode(_wire.item_create(item))]
            self._awaiting_results.discard(call_id)
            if not self._awaiting_results:
                texts.append(_wire.encode(_wire.response_create()))
            return texts
        if kind is BidiImageInputEvent:
            assert isinstance(event, BidiImageInputEvent)
            return [_wire.encode(_wire.item_create(_wire.image_item(event.image, event.mime_type)))]
        raise TypeError(f"cannot send {kind.__name__} to an OpenAI Realtime connection")

    def report_playback(self, played_ms: int) -> list[str]:
        """Return the ``conversation.item.truncate`` for how much audio the user heard.

        The position is clamped to the audio received for the current assistant item.
        Nothing is sent before any audio arrived, or twice for the same item.
        """
        item_id = self._audio_item_id
        if item_id is None or self._audio_bytes == 0:
            logger.debug("played_ms=<%s> | no assistant audio to truncate", played_ms)
            return []
        if item_id == self._truncated_item_id:
            logger.debug("item_id=<%s> | item already truncated", item_id)
            return []
        received_ms = int(
            _wire.audio_duration_ms(self._audio_bytes, self._output_rate, self._channels)
        )
        end_ms = max(0, min(int(played_ms), received_ms))
        self._truncated_item_id = item_id
        logger.debug(
            "item_id=<%s>, played_ms=<%s>, received_ms=<%s> | truncating assistant audio",
            item_id,
            played_ms,
            received_ms,
        )
        return [_wire.encode(_wire.truncate(item_id, self._audio_content_index, end_ms))]

    def take_outbox(self) -> list[str]:
        """Return (and forget) the client messages the protocol needs sent on its own.

        After a malformed function call it answers the call with an error result and,
        once every call of that response has a result, asks for the next response. The
        connection sends these right after the server message that caused them.
        """
        texts, self._outbox = self._outbox, []
        return texts

    @property
    def has_outbox(self) -> bool:
        """True when `take_outbox` has messages to send."""
        return bool(self._outbox)

    # ------------------------------------------------------------------ server -> client

    def receive_raw(self, raw: str | bytes) -> list[BidiOutputEvent]:
        """Decode one server message and map it; malformed JSON becomes an error event."""
        try:
            message = _wire.decode(raw, self._max_depth)
        except BidiProtocolError as exc:
            logger.warning("error=<%s> | malformed server message", exc)
            kind = _wire.event_type_of(raw)
            return [BidiErrorEvent(exc, {"raw": _preview(raw), "server_event_type": kind})]
        return self.receive(message)

    def receive(self, message: dict[str, Any]) -> list[BidiOutputEvent]:
        """Map one decoded server message to events (never raises)."""
        kind = message.get("type")
        handler = self._handlers.get(kind) if type(kind) is str else None
        if handler is None:
            if kind not in _IGNORED:
                logger.debug("type=<%s> | ignoring unknown server event", kind)
            return _NO_EVENTS
        try:
            return handler(message)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # A flat event was not walked for depth: keep it only when it is shallow.
            raw = None if nesting_exceeds(message, self._max_depth) else message
            error = BidiProtocolError(f"server event {kind!r} is malformed: {exc!r}", raw=raw)
            logger.warning("type=<%s>, error=<%r> | malformed server event", kind, exc)
            return [BidiErrorEvent(error, {"server_event_type": kind})]

    def _on_audio_delta(self, message: dict[str, Any]) -> list[BidiOutputEvent]:
        delta = message["delta"]
        if type(delta) is not str:
            raise TypeError(f"delta must be a string, not {type(delta).__name__}")
        # looks_like_base64, inlined: constant time, on the hot path.
        if delta and (len(delta) & 3 or not delta.isascii() or delta[-1] not in BASE64_CHARS):
            raise ValueError("delta is not base64 audio")
        item_id = message.get("item_id")
        if type(item_id) is not str:
            # Still audio the user should hear, but no item a truncation could name.
            logger.debug("item_id=<%r> | audio delta without an item id", item_id)
            return [BidiAudioStreamEvent(delta, "pcm", self._output_rate, self._channels)]  # type: ignore[arg-type]
        if item_id != self._audio_item_id:
            self._audio_item_id = item_id
            index = message.get("content_index", 0)
            self._audio_content_index = index if type(index) is int else 0
            self._audio_bytes = 0
        self._audio_bytes += _wire.base64_size(delta)
        return [BidiAudioStreamEvent(delta, "pcm", self._output_rate, self._channels)]  # type: ignore[arg-type]

    def _on_output_delta(self, message: dict[str, Any]) -> list[BidiOutputEvent]:
        delta = message["delta"]
        if type(delta) is not str:
            raise TypeError(f"delta must be a string, not {type(delta).__name__}")
        key = ("assistant", message.get("item_id"), message.get("content_index"))
        so_far = self._transcripts.get(key, "") + delta
        self._transcripts[key] = so_far
        return [BidiTranscriptStreamEvent({"text": delta}, delta, "assistant", False, so_far)]

    def _final(self, role: str, message: dict[str, Any], text: Any) -> list[BidiOutputEvent]:
        if type(text) is not str:
            raise TypeError(f"final text must be a string, not {type(text).__name__}")
        self._transcripts.pop((role, message.get("item_id"), message.get("content_index")), None)
        return [BidiTranscriptStreamEvent({"text": text}, text, role, True, text)]  # type: ignore[arg-type]

    def _on_transcript_done(self, message: dict[str, Any]) -> list[BidiOutputEvent]:
        return self._final("assistant", message, message["transcript"])

    def _on_text_done(self, message: dict[str, Any]) -> list[BidiOutputEvent]:
        return self._final("assistant", message, message["text"])

    def _on_response_created(self, message: dict[str, Any]) -> list[BidiOutputEvent]:
        response = message.get("response") or {}
        return [BidiResponseStartEvent(_response_id(response))]

    def _on_response_done(self, message: dict[str, Any]) -> list[BidiOutputEvent]:
        response = message.get("response") or {}
        response_id = _response_id(response)
        status = response.get("status")
        stop_reason = _STOP_REASONS.get(status, "complete") if type(status) is str else "complete"
        has_tool_call = response_id in self._tool_responses or any(
            isinstance(item, Mapping) and item.get("type") == "function_call"
            for item in response.get("output") or ()
        )
        self._tool_responses.discard(response_id)
        calls = self._response_calls.pop(response_id, None)
        if calls is None and response_id:
            calls = self._response_calls.pop("", None)
        if calls and not any(calls) and status == "completed":
            # Every call of this response was malformed and already has its error
            # result: nobody else will ask for the next response.
            self._outbox.append(_wire.encode(_wire.response_create()))
        if stop_reason == "complete" and has_tool_call:
            stop_reason = "tool_use"
        self._transcripts = {k: v for k, v in self._transcripts.items() if k[0] != "assistant"}
        events: list[BidiOutputEvent] = []
        if status == "failed":
            details = response.get("status_details") or {}
            error = details.get("error") or {}
            events.append(
                BidiErrorEvent(
                    BidiProviderError(
                        server_text(error.get("message") or "the response failed", limit=1000),
                        code=error.get("code") or error.get("type"),
                        raw=message,
                    ),
                    {"response_id": response_id, "status_details": details},
                )
            )
        usage = response.get("usage")
        if isinstance(usage, Mapping):
            events.append(_wire.usage_event(usage))
        events.append(BidiResponseCompleteEvent(response_id, stop_reason))
        return events

    def _on_response_cancelled(self, message: dict[str, Any]) -> list[BidiOutputEvent]:
        response = message.get("response") or {}
        return [BidiResponseCompleteEvent(_response_id(response), "interrupted")]

    def _on_output_item_added(self, message: dict[str, Any]) -> list[BidiOutputEvent]:
        item = message["item"]
        if item.get("type") == "function_call":
            call_id = item["call_id"]
            if type(call_id) is not str:
                raise TypeError("function_call item without a string call_id")
            self._calls[call_id] = _Call(item.get("name"))
            response_id = message.get("response_id")
            if type(response_id) is str:
                self._tool_responses.add(response_id)
        return _NO_EVENTS

    def _on_arguments_delta(self, message: dict[str, Any]) -> list[BidiOutputEvent]:
        call_id = message["call_id"]
        delta = message["delta"]
        if type(call_id) is not str or type(delta) is not str:
            raise TypeError("call_id and delta must be strings")
        call = self._calls.get(call_id)
        if call is None:
            call = self._calls[call_id] = _Call(None)
        call.parts.append(delta)
        return _NO_EVENTS

    def _on_arguments_done(self, message: dict[str, Any]) -> list[BidiOutputEvent]:
        call_id = message["call_id"]
        if type(call_id) is not str:
            raise TypeError("call_id must be a string")
        call = self._calls.pop(call_id, None)
        arguments = message.get("arguments")
        if type(arguments) is not str:
            arguments = "".join(call.parts) if call is not None else ""
        name = message.get("name") or (call.name if call is not None else None)
        response_id = message.get("response_id")
        if type(response_id) is str:
            self._tool_responses.add(response_id)
        else:
            response_id = ""
        calls = self._response_calls.setdefault(response_id, [])
        details = {
            "server_event_type": "response.function_call_arguments.done",
            "call_id": call_id,
            "name": name,
            "arguments": _preview(arguments),
        }
        problem: str | None = None
        parsed: Any = None
        if type(name) is not str:
            problem = "has no name"
        else:
            try:
                parsed = loads_bounded(arguments, self._max_depth) if arguments.strip() else {}
            except JSONNestingError:
                problem = f"has arguments nested deeper than {self._max_depth} levels"
            except ValueError as exc:
                problem = f"has malformed JSON arguments ({exc})"
            else:
                if not isinstance(parsed, dict):
                    problem = "has arguments that are not a JSON object"
        if problem is not None:
            calls.append(False)
            text = f"function call {name!r} ({call_id}) {problem}"
            self._answer_with_error(call_id, text)
            logger.warning("call_id=<%s> | %s; answered with an error result", call_id, text)
            error = BidiProtocolError(f"{text}; the model got an error result", raw=message)
            return [BidiErrorEvent(error, details)]
        calls.append(True)
        self._awaiting_results.add(call_id)
        return [
            ToolUseStreamEvent(
                {"toolUse": {"input": arguments}},
                {"toolUseId": call_id, "name": name, "input": parsed},
            )
        ]

    def _answer_with_error(self, call_id: str, problem: str) -> None:
        result: ToolResult = {
            "toolUseId": call_id,
            "status": "error",
            "content": [{"text": f"{problem}. Call the function again with a JSON object."}],
        }
        output = _wire.tool_result_output(result)
        self._outbox.append(
            _wire.encode(_wire.item_create(_wire.function_call_output_item(call_id, output)))
        )

    def _on_speech_started(self, message: dict[str, Any]) -> list[BidiOutputEvent]:
        return [BidiInterruptionEvent("user_speech")]

    def _on_input_delta(self, message: dict[str, Any]) -> list[BidiOutputEvent]:
        delta = message.get("delta") or ""
        if type(delta) is not str:
            raise TypeError(f"delta must be a string, not {type(delta).__name__}")
        key = ("user", message.get("item_id"), message.get("content_index"))
        so_far = self._transcripts.get(key, "") + delta
        self._transcripts[key] = so_far
        return [BidiTranscriptStreamEvent({"text": delta}, delta, "user", False, so_far)]

    def _on_input_completed(self, message: dict[str, Any]) -> list[BidiOutputEvent]:
        return self._final("user", message, message["transcript"])

    def _on_input_segment(self, message: dict[str, Any]) -> list[BidiOutputEvent]:
        text = message["text"]
        if type(text) is not str:
            raise TypeError(f"text must be a string, not {type(text).__name__}")
        return [BidiTranscriptStreamEvent({"text": text}, text, "user", False, None)]

    def _on_input_failed(self, message: dict[str, Any]) -> list[BidiOutputEvent]:
        error = message.get("error") or {}
        provider_error = BidiProviderError(
            "input audio transcription failed: "
            + server_text(error.get("message") or "no details", limit=1000),
            code=error.get("code") or error.get("type"),
            raw=message,
        )
        return [BidiErrorEvent(provider_error, {"item_id": message.get("item_id")})]

    def _on_error(self, message: dict[str, Any]) -> list[BidiOutputEvent]:
        error = message.get("error")
        if not isinstance(error, Mapping):
            error = {}
        code = error.get("code")
        if code in _HARMLESS_ERROR_CODES:
            logger.debug("code=<%s> | ignoring harmless server error", code)
            return _NO_EVENTS
        if code in _EXPIRED_ERROR_CODES:
            logger.info("code=<%s> | the server ended the session at its time limit", code)
            self.expired = True
            return _NO_EVENTS
        text = server_text(error.get("message") or "the server reported an error", limit=1000)
        logger.warning("code=<%s>, message=<%s> | server error", code, text)
        details = {
            key: error.get(key)
            for key in ("type", "code", "param", "event_id")
            if error.get(key) is not None
        }
        provider_error = BidiProviderError(
            text, code=str(code or error.get("type") or "error"), raw=message
        )
        return [BidiErrorEvent(provider_error, details)]


def _response_id(response: Any) -> str:
    response_id = response.get("id") if isinstance(response, Mapping) else None
    return response_id if type(response_id) is str else ""


def _preview(raw: str | bytes, limit: int = 200) -> str:
    text = raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit] + "..."
