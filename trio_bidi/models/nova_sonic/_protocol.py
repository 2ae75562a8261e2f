"""The Nova Sonic session as a sans-IO state machine.

`NovaSonicProtocol` builds the Nova events a connection sends (the opening
sequence, each input, the closing sequence) and maps the service's output messages to
provider-neutral events. It never touches a socket or a clock and never raises on
service input: malformed events become [`BidiErrorEvent`][trio_bidi.events.BidiErrorEvent], and an
exception message makes `NovaSonicProtocol.ending` say how the connection ends.

Block layout: the system prompt and the history are non-interactive TEXT blocks sent
before anything else; the microphone is one long interactive USER AUDIO block opened at
the end of the opening sequence and closed only by the closing sequence. A text input
(Nova 2) or a tool result is a complete TEXT or TOOL block (``contentStart``, content,
``contentEnd``) produced by one ``send`` and written as one unit, so no audio frame ever
lands inside it; the audio block stays open around it, as the service's cross-modal
input expects.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs

from ...errors import (
    BidiAudioFormatError,
    BidiConfigurationError,
    BidiError,
    BidiModelTimeoutError,
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
    BidiUsageEvent,
    StopReason,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from ...types import Message, ToolSpec
from . import _wire
from ._config import is_nova_2
from ._eventstream import Message as WireMessage

__all__ = ["Ending", "NovaSonicProtocol", "is_barge_in_text"]

logger = logging.getLogger(__name__)

_RECOVERABLE_TYPES: Final = frozenset({"modelTimeoutException", "modelStreamErrorException"})
_RECOVERABLE_MARKERS: Final = ("InternalErrorCode=531", "System instability", "InvalidEventBytes")
_STOP_REASONS: Final[dict[str, StopReason]] = {
    "END_TURN": "complete",
    "TOOL_USE": "tool_use",
    "INTERRUPTED": "interrupted",
}
_NO_EVENTS: Final[list[BidiOutputEvent]] = []


def is_barge_in_text(text: str) -> bool:
    """True for the text Nova sends when the user interrupts (``{ "interrupted" : true }``)."""
    stripped = text.strip()
    if not stripped.startswith("{") or "interrupted" not in stripped:
        return False
    try:
        parsed = json.loads(stripped)
    except (ValueError, RecursionError):
        return False
    return isinstance(parsed, dict) and parsed.get("interrupted") is True


@attrs.frozen
class Ending:
    """Why the service ended the connection (an exception message).

    Attributes:
        type: The exception type (``modelTimeoutException``, ``validationException``...).
        message: The service's message.
        recoverable: True when a new connection continues the conversation.
    """

    type: str
    message: str
    recoverable: bool

    def error(self) -> BidiError:
        """A fresh exception for this ending (a timeout when recoverable)."""
        text = f"Nova Sonic {self.type}: {self.message}"
        if self.recoverable:
            return BidiModelTimeoutError(text)
        return BidiProviderError(text, code=self.type, raw={"message": self.message})


@attrs.define
class _Block:
    role: str
    type: str
    stage: str


class NovaSonicProtocol:
    """Maps one Nova Sonic session's events both ways.

    Args:
        model_id: The model (v1 and Nova 2 differ in what they accept).
        config: A resolved provider config.
        new_id: Makes prompt and content names (default: UUID4 strings).
    """

    def __init__(
        self,
        model_id: str,
        config: Mapping[str, Any],
        *,
        new_id: Callable[[], str] | None = None,
    ) -> None:
        self._model_id = model_id
        self._config = config
        audio = config["audio"]
        self._input_rate: int = audio["input_rate"]
        self._output_rate: int = audio["output_rate"]
        self._new_id = new_id or (lambda: str(uuid.uuid4()))
        self.prompt_name = self._new_id()
        self._audio_content: str | None = None
        self._closed = False
        self._blocks: dict[str, _Block] = {}
        self._response_id: str | None = None
        self._response_has_tool = False
        self._interrupted = False
        self._responses = 0
        #: Set when an exception message arrived; the connection ends with its error.
        self.ending: Ending | None = None
        #: Responses completed so far (a turn boundary after each).
        self.completed_responses = 0

    @property
    def response_active(self) -> bool:
        """True while the model is producing a response."""
        return self._response_id is not None

    # ------------------------------------------------------------------ client -> service

    def open_events(
        self,
        system_prompt: str | None,
        tools: Sequence[ToolSpec],
        messages: Sequence[Message],
    ) -> list[dict[str, Any]]:
        """The opening sequence: session, prompt, system prompt, history, audio block.

        Raises:
            BidiConfigurationError: A history message has an unknown role.
        """
        prompt = self.prompt_name
        events = [
            _wire.session_start(self._config["inference"], self._config["turn_detection"]),
            _wire.prompt_start(prompt, self._config["audio"], tools),
        ]
        if system_prompt:
            events.extend(self._text_block("SYSTEM", system_prompt, interactive=False))
        for role, text in self.history_texts(messages):
            events.extend(self._text_block(role, text, interactive=False))
        self._audio_content = self._new_id()
        events.append(_wire.content_start_audio(prompt, self._audio_content, self._input_rate))
        return events

    def history_texts(self, messages: Sequence[Message]) -> list[tuple[str, str]]:
        """The history as ``(ROLE, text)`` within the service's limits.

        Text blocks of each message are joined; tool uses and results are left out (the
        service takes text history only). At most 40 KB in all: the oldest messages are
        dropped first (logged), and the history starts with a USER message.

        Raises:
            BidiConfigurationError: A message has a role other than user or assistant.
        """
        texts: list[tuple[str, str]] = []
        for index, message in enumerate(messages):
            role = message.get("role")
            if role not in ("user", "assistant"):
                raise BidiConfigurationError(
                    f"messages[{index}]: role {role!r} is not 'user' or 'assistant'"
                )
            parts = [block["text"] for block in message.get("content", []) if "text" in block]
            text = "\n".join(p for p in parts if p)
            if text:
                texts.append((role.upper(), text))
        total = sum(len(text.encode()) for _, text in texts)
        dropped = 0
        while texts and (total > _wire.MAX_HISTORY_BYTES or texts[0][0] != "USER"):
            total -= len(texts.pop(0)[1].encode())
            dropped += 1
        if dropped:
            logger.info(
                "dropped=<%d>, kept=<%d>, kept_bytes=<%d> | oldest history messages dropped "
                "(Nova Sonic takes at most 40 KB of history, starting with a user message)",
                dropped,
                len(texts),
                total,
            )
        return texts

    def _text_block(self, role: str, text: str, *, interactive: bool) -> list[dict[str, Any]]:
        prompt, content = self.prompt_name, self._new_id()
        events = [_wire.content_start_text(prompt, content, role, interactive=interactive)]
        events.extend(_wire.text_input(prompt, content, piece) for piece in _wire.split_utf8(text))
        events.append(_wire.content_end(prompt, content))
        return events

    def send(self, event: object) -> list[dict[str, Any]]:
        """The Nova events for one input event or tool result.

        Raises:
            BidiAudioFormatError: Audio that is not 16 kHz mono PCM.
            BidiConfigurationError: An image (Nova Sonic takes none), or text on v1.
            TypeError: Not an event a connection sends.
        """
        kind = type(event)
        if kind is BidiAudioInputEvent:
            assert isinstance(event, BidiAudioInputEvent)
            if (
                event.sample_rate != self._input_rate
                or event.channels != 1
                or event.format != "pcm"
            ):
                raise BidiAudioFormatError(
                    f"audio input is {event.format} {event.sample_rate} Hz, {event.channels} "
                    f"channel(s), but Nova Sonic takes pcm {self._input_rate} Hz mono; "
                    "convert it before sending"
                )
            assert self._audio_content is not None, "open_events() first"
            return [_wire.audio_input(self.prompt_name, self._audio_content, event.audio)]
        if kind is BidiTextInputEvent:
            assert isinstance(event, BidiTextInputEvent)
            if not is_nova_2(self._model_id):
                raise BidiConfigurationError(
                    f"{self._model_id} takes no text input during a session (only Nova 2 "
                    "Sonic does): speak instead, or use amazon.nova-2-sonic-v1:0"
                )
            return self._text_block(event.role.upper(), event.text, interactive=True)
        if kind is ToolResultEvent:
            assert isinstance(event, ToolResultEvent)
            result = event.tool_result
            prompt, content = self.prompt_name, self._new_id()
            return [
                _wire.content_start_tool(prompt, content, result["toolUseId"]),
                _wire.tool_result(prompt, content, _wire.tool_result_text(result)),
                _wire.content_end(prompt, content),
            ]
        if kind is BidiImageInputEvent:
            raise BidiConfigurationError(
                "images are not supported by Nova Sonic (it takes speech and text only)"
            )
        raise TypeError(f"cannot send {kind.__name__} to a Nova Sonic connection")

    def close_events(self) -> list[dict[str, Any]]:
        """The closing sequence (audio ``contentEnd``, ``promptEnd``, ``sessionEnd``); once."""
        if self._closed:
            return []
        self._closed = True
        events = []
        if self._audio_content is not None:
            events.append(_wire.content_end(self.prompt_name, self._audio_content))
        events.append(_wire.prompt_end(self.prompt_name))
        events.append(_wire.session_end())
        return events

    # ------------------------------------------------------------------ service -> client

    def receive_message(self, message: WireMessage) -> list[BidiOutputEvent]:
        """Map one output message (event or exception) to events; never raises."""
        try:
            decoded = _wire.decode_output(message)
        except (ValueError, TypeError, RecursionError) as exc:
            error = BidiProtocolError(f"undecodable Nova Sonic output message: {exc}")
            logger.warning("error=<%s> | undecodable output message", exc)
            return [
                BidiErrorEvent(error, {"headers": {k: str(v) for k, v in message.headers.items()}})
            ]
        if isinstance(decoded, _wire.OutputException):
            return self.receive_exception(decoded.type, decoded.message)
        return self.receive_event(decoded)

    def receive_exception(self, kind: str, message: str) -> list[BidiOutputEvent]:
        """Record the service's exception; the connection ends with `ending`."""
        recoverable = kind in _RECOVERABLE_TYPES or any(m in message for m in _RECOVERABLE_MARKERS)
        if self.ending is None:
            self.ending = Ending(kind or "error", message, recoverable)
        logger.info(
            "type=<%s>, recoverable=<%s>, message=<%s> | Nova Sonic exception",
            kind,
            recoverable,
            message,
        )
        return _NO_EVENTS

    def receive_event(self, event: Mapping[str, Any]) -> list[BidiOutputEvent]:
        """Map one decoded ``{"event": {...}}`` to events; never raises."""
        body = event.get("event")
        if (type(body) is not dict and not isinstance(body, Mapping)) or len(body) != 1:
            return [BidiErrorEvent(BidiProtocolError("a Nova event must have one key", raw=event))]
        ((name, payload),) = body.items()
        handler = self._handlers.get(name)
        if handler is None:
            logger.debug("event=<%s> | ignoring unknown Nova event", name)
            return _NO_EVENTS
        try:
            if type(payload) is not dict and not isinstance(payload, Mapping):
                raise TypeError(f"{name} must be an object")
            return handler(self, payload)
        except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
            error = BidiProtocolError(f"Nova event {name!r} is malformed: {exc!r}", raw=event)
            logger.warning("event=<%s>, error=<%r> | malformed Nova event", name, exc)
            return [BidiErrorEvent(error, {"event": name})]

    def _start_response(self, content_id: str, events: list[BidiOutputEvent]) -> None:
        if self._response_id is None:
            self._responses += 1
            self._response_id = f"{self.prompt_name}:{self._responses}:{content_id}"
            self._response_has_tool = False
            self._interrupted = False
            events.append(BidiResponseStartEvent(self._response_id))

    def _complete(self, stop_reason: StopReason, events: list[BidiOutputEvent]) -> None:
        response_id = self._response_id
        if response_id is None:
            return
        if stop_reason == "complete" and self._response_has_tool:
            stop_reason = "tool_use"
        self._response_id = None
        self.completed_responses += 1
        events.append(BidiResponseCompleteEvent(response_id, stop_reason))

    def _interrupt(self, events: list[BidiOutputEvent]) -> None:
        if not self._interrupted:
            self._interrupted = True
            events.append(BidiInterruptionEvent("user_speech"))

    def _on_content_start(self, payload: Mapping[str, Any]) -> list[BidiOutputEvent]:
        content_id = payload.get("contentId")
        stage = "FINAL"
        fields = payload.get("additionalModelFields")
        if isinstance(fields, str) and fields:
            parsed = json.loads(fields)
            if isinstance(parsed, Mapping) and isinstance(parsed.get("generationStage"), str):
                stage = parsed["generationStage"]
        if isinstance(content_id, str):
            self._blocks[content_id] = _Block(
                str(payload.get("role", "")), str(payload.get("type", "")), stage
            )
        return _NO_EVENTS

    def _block(self, payload: Mapping[str, Any]) -> _Block | None:
        content_id = payload.get("contentId")
        return self._blocks.get(content_id) if isinstance(content_id, str) else None

    def _on_text(self, payload: Mapping[str, Any]) -> list[BidiOutputEvent]:
        text = payload["content"]
        if not isinstance(text, str):
            raise TypeError("textOutput content must be a string")
        block = self._block(payload)
        role = payload.get("role") or (block.role if block else "ASSISTANT")
        events: list[BidiOutputEvent] = []
        if is_barge_in_text(text):
            if self._response_id is not None or not self._interrupted:
                self._interrupt(events)
            return events
        if role == "USER":
            return [BidiTranscriptStreamEvent({"text": text}, text, "user", True, text)]
        self._start_response(str(payload.get("contentId", "")), events)
        final = (block.stage if block else "FINAL") != "SPECULATIVE"
        events.append(BidiTranscriptStreamEvent({"text": text}, text, "assistant", final, text))
        return events

    def _on_audio(self, payload: Mapping[str, Any]) -> list[BidiOutputEvent]:
        audio = payload["content"]
        if not isinstance(audio, str):
            raise TypeError("audioOutput content must be a base64 string")
        audio_event = BidiAudioStreamEvent(audio, "pcm", self._output_rate, 1)  # type: ignore[arg-type]
        if self._response_id is not None:
            return [audio_event]
        events: list[BidiOutputEvent] = []
        self._start_response(str(payload.get("contentId", "")), events)
        events.append(audio_event)
        return events

    def _on_tool_use(self, payload: Mapping[str, Any]) -> list[BidiOutputEvent]:
        name, tool_use_id, content = (
            payload["toolName"],
            payload["toolUseId"],
            payload.get("content"),
        )
        if not isinstance(name, str) or not isinstance(tool_use_id, str):
            raise TypeError("toolUse needs string toolName and toolUseId")
        events: list[BidiOutputEvent] = []
        self._start_response(str(payload.get("contentId", tool_use_id)), events)
        parsed: Any = {} if content in (None, "") else content
        try:
            # The content is a JSON string, seen doubly encoded in the wild.
            for _ in range(2):
                if isinstance(parsed, str):
                    parsed = json.loads(parsed) if parsed.strip() else {}
        except (ValueError, RecursionError) as exc:
            error = BidiProtocolError(
                f"tool call {name!r} ({tool_use_id}) has malformed JSON input: {exc}", raw=payload
            )
            events.append(BidiErrorEvent(error, {"toolUseId": tool_use_id, "name": name}))
            return events
        if not isinstance(parsed, dict):
            error = BidiProtocolError(
                f"tool call {name!r} ({tool_use_id}) input is not a JSON object", raw=payload
            )
            events.append(BidiErrorEvent(error, {"toolUseId": tool_use_id, "name": name}))
            return events
        self._response_has_tool = True
        events.append(
            ToolUseStreamEvent(
                {"toolUse": {"input": content if isinstance(content, str) else json.dumps(parsed)}},
                {"toolUseId": tool_use_id, "name": name, "input": parsed},
            )
        )
        return events

    def _on_content_end(self, payload: Mapping[str, Any]) -> list[BidiOutputEvent]:
        content_id = payload.get("contentId")
        block = self._blocks.pop(content_id, None) if isinstance(content_id, str) else None
        reason = payload.get("stopReason")
        events: list[BidiOutputEvent] = []
        if reason == "INTERRUPTED":
            if self._response_id is not None or not self._interrupted:
                self._interrupt(events)
            self._complete("interrupted", events)
            return events
        stop = _STOP_REASONS.get(reason) if isinstance(reason, str) else None
        if stop is not None and (block is None or block.role in ("ASSISTANT", "TOOL")):
            self._complete(stop, events)
        return events

    def _on_completion_end(self, payload: Mapping[str, Any]) -> list[BidiOutputEvent]:
        events: list[BidiOutputEvent] = []
        reason = payload.get("stopReason")
        stop = _STOP_REASONS.get(reason, "complete") if isinstance(reason, str) else "complete"
        self._complete(stop, events)
        return events

    def _on_usage(self, payload: Mapping[str, Any]) -> list[BidiOutputEvent]:
        def count(key: str) -> int:
            value = payload.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"usageEvent {key} must be a number")
            return int(value)

        details = payload.get("details")
        modality = None
        if isinstance(details, Mapping) and isinstance(details.get("total"), Mapping):
            modality = [dict(details["total"])]
        return [
            BidiUsageEvent(
                count("totalInputTokens"),
                count("totalOutputTokens"),
                count("totalTokens"),
                modality,
            )
        ]

    def _ignore(self, payload: Mapping[str, Any]) -> list[BidiOutputEvent]:
        return _NO_EVENTS

    _handlers: Final[
        dict[str, Callable[[NovaSonicProtocol, Mapping[str, Any]], list[BidiOutputEvent]]]
    ] = {
        "completionStart": _ignore,
        "contentStart": _on_content_start,
        "textOutput": _on_text,
        "audioOutput": _on_audio,
        "toolUse": _on_tool_use,
        "contentEnd": _on_content_end,
        "completionEnd": _on_completion_end,
        "usageEvent": _on_usage,
    }
