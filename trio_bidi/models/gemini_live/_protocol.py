"""Sans-IO state of one Gemini Live connection.

[`GeminiLiveProtocol`][trio_bidi.models.gemini_live.GeminiLiveProtocol] turns decoded server
messages into events and input events into wire messages. It never imports trio and never raises out
of [`receive`][trio_bidi.models.gemini_live.GeminiLiveProtocol.receive]: a malformed message becomes
a [`BidiErrorEvent`][trio_bidi.events.BidiErrorEvent] and the state stays usable.

What it keeps between messages:

- the open response (``BidiResponseStartEvent`` / ``BidiResponseCompleteEvent`` pairing,
  ids ``<connection id>-response-<n>``);
- the user's and the model's transcripts so far (final events at turn end, at a tool
  call, at an interruption, or when the server marks a transcription ``finished``);
- tool names by call id (``toolResponse`` needs the name) and the calls still open;
- the newest resumable session handle, a ``goAway`` notice;
- the input sent but not yet covered by a resumption handle, for replay after resuming.

Unconsumed input: every client message after ``setup`` gets an index (``setup`` is index 0,
the first message after it 1, and so on: the index of the message on this connection).
When a ``sessionResumptionUpdate`` carries ``lastConsumedClientMessageIndex`` (the server
sends it when ``sessionResumption.transparent`` is set) the messages up to that index are
dropped from the buffer; an update without it (the Gemini API's usual form) drops the whole
buffer, as the API documentation suggests (keep what was sent since the last update).
The buffer is bounded in bytes; the oldest messages go first and are counted.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

from ...errors import (
    BidiAudioFormatError,
    BidiConfigurationError,
    BidiProtocolError,
    BidiStateError,
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
    BidiToolCancellationEvent,
    BidiTranscriptStreamEvent,
    BidiUsageEvent,
    ToolResultEvent,
    ToolUseStreamEvent,
)
from ...types import ToolResult
from .._untrusted import BASE64_CHARS, DEFAULT_MAX_DEPTH, nesting_exceeds
from . import _wire

__all__ = ["GeminiLiveProtocol", "parse_duration"]

logger = logging.getLogger(__name__)

_OUTPUT_RATES = frozenset((16000, 24000, 48000))
_IMAGE_TYPES = frozenset(("image/jpeg", "image/png", "image/webp"))
_IGNORED_TOP = frozenset(("setupComplete", "voiceActivityDetectionSignal", "voiceActivity"))
_MAX_REMEMBERED_TOOLS = 4096


def parse_duration(value: Any) -> float | None:
    """Parse a protobuf JSON duration (``"10s"``, ``"1.5s"``) into seconds; None if malformed."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value.endswith("s"):
        try:
            return float(value[:-1])
        except ValueError:
            return None
    return None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


class GeminiLiveProtocol:
    """The state machine of one connection (see the module docstring).

    Args:
        connection_id: Prefix of response ids and synthesized call ids.
        input_rate: The sample rate input audio must have.
        output_rate: The sample rate assumed for output audio whose MIME type names none.
        text_input: ``"client_content"`` (a user turn) or ``"realtime"`` (``realtimeInput.text``).
        max_unconsumed_input_bytes: Bound of the replay buffer.
        max_json_depth: How deeply a server message's JSON may nest.
        tool_names: Tool names by call id known from earlier connections or history.
        open_tool_calls: Calls of an earlier connection of this session still unanswered.
    """

    def __init__(
        self,
        connection_id: str,
        *,
        input_rate: int = 16000,
        output_rate: int = 24000,
        text_input: str = "client_content",
        max_unconsumed_input_bytes: int = 8 * 1024 * 1024,
        tool_names: Mapping[str, str] | None = None,
        open_tool_calls: Mapping[str, str] | None = None,
        max_json_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self._connection_id = connection_id
        self._max_depth = max_json_depth
        self._outbox: list[str] = []
        #: Resumable handles received so far (tells a handle newer than ``goAway``).
        self.handle_count = 0
        #: ``handle_count`` when the last turn completed (a handle issued mid-turn does
        #: not cover the rest of that turn).
        self.handles_at_turn_end = 0
        self._input_rate = input_rate
        self._output_rate = output_rate
        self._text_input = text_input
        self._response_id: str | None = None
        self._response_count = 0
        self._last_was_tool = False
        self._input_text = ""
        self._output_text = ""
        self._model_text = ""
        self._tool_names: dict[str, str] = dict(tool_names or {})
        self._open_calls: dict[str, str] = dict(open_tool_calls or {})
        self._tool_names.update(self._open_calls)
        self._call_count = 0
        self._warned: set[str] = set()
        #: The newest resumable session handle, or None.
        self.session_handle: str | None = None
        #: True once the server sent ``goAway``.
        self.go_away = False
        #: The ``goAway.timeLeft`` in seconds, when given.
        self.go_away_time_left: float | None = None
        self._next_index = 1
        self._unconsumed: deque[tuple[int, str]] = deque()
        self._unconsumed_bytes = 0
        self._max_unconsumed = max_unconsumed_input_bytes
        #: Messages dropped from the replay buffer because it was full.
        self.unconsumed_dropped = 0
        self._audio_prefix_rate = input_rate

    # ------------------------------------------------------------------ state

    @property
    def response_id(self) -> str | None:
        """The id of the open response, or None."""
        return self._response_id

    @property
    def open_tool_calls(self) -> dict[str, str]:
        """Tool calls not yet answered or cancelled: name by call id."""
        return dict(self._open_calls)

    def unconsumed_input(self) -> list[str]:
        """The client messages sent but not yet covered by a resumption handle, in order."""
        return [text for _, text in self._unconsumed]

    # ------------------------------------------------------------------ outbound

    def sent(self, text: str) -> None:
        """Record a client message (other than ``setup``) as sent, for replay after resuming."""
        index = self._next_index
        self._next_index = index + 1
        if self._max_unconsumed <= 0:
            return
        size = len(text)
        self._unconsumed.append((index, text))
        self._unconsumed_bytes += size
        while self._unconsumed_bytes > self._max_unconsumed and self._unconsumed:
            _, dropped = self._unconsumed.popleft()
            self._unconsumed_bytes -= len(dropped)
            self.unconsumed_dropped += 1
            if self.unconsumed_dropped == 1 or self.unconsumed_dropped % 100 == 0:
                logger.warning(
                    "connection_id=<%s>, dropped=<%d> | replay buffer full, oldest input dropped",
                    self._connection_id,
                    self.unconsumed_dropped,
                )

    def encode_audio(self, event: BidiAudioInputEvent) -> str:
        """Encode an audio input event.

        Raises:
            BidiAudioFormatError: The audio is not mono 16-bit PCM at the configured rate.
        """
        if event.sample_rate != self._input_rate or event.channels != 1 or event.format != "pcm":
            raise BidiAudioFormatError(
                f"Gemini Live connection takes mono pcm at {self._input_rate} Hz, got "
                f"{event.format} at {event.sample_rate} Hz with {event.channels} channel(s)"
            )
        return _wire.audio_message(event.audio, self._input_rate)

    def encode(self, event: object) -> str:
        """Encode an input event or a tool result as one client message.

        Raises:
            BidiAudioFormatError: Audio that does not match the configuration.
            BidiConfigurationError: An image type the API does not take.
            BidiStateError: A tool result for a call this session never saw, or an
                unsupported event type.
        """
        if isinstance(event, BidiAudioInputEvent):
            return self.encode_audio(event)
        if isinstance(event, BidiTextInputEvent):
            if event.role == "user" and self._text_input == "realtime":
                return _wire.realtime_message(text=event.text)
            role = "user" if event.role == "user" else "model"
            return _wire.client_content_message(
                [{"role": role, "parts": [{"text": event.text}]}],
                turn_complete=event.role == "user",
            )
        if isinstance(event, BidiImageInputEvent):
            mime = event.mime_type.lower()
            if mime not in _IMAGE_TYPES:
                raise BidiConfigurationError(
                    "Gemini Live takes image/jpeg, image/png or image/webp images, "
                    f"not {event.mime_type!r}"
                )
            return _wire.realtime_message(video={"data": event.image, "mimeType": mime})
        if isinstance(event, ToolResultEvent):
            result = event.tool_result
            call_id = result["toolUseId"]
            name = self._tool_names.get(call_id)
            if name is None:
                raise BidiStateError(
                    f"tool result for unknown call id {call_id!r}: Gemini Live needs the name "
                    "of the function the call was for"
                )
            self._open_calls.pop(call_id, None)
            return _wire.tool_response_message(result, name)
        raise BidiStateError(f"Gemini Live cannot send {type(event).__name__}")

    def remember_tool_names(self, names: Mapping[str, str]) -> None:
        """Learn tool names by call id (from replayed history)."""
        self._tool_names.update(names)

    # ------------------------------------------------------------------ inbound

    def receive(self, data: str | bytes) -> list[BidiOutputEvent]:
        """Convert one server message (JSON text) into events; never raises."""
        try:
            message = _wire.decode(data, self._max_depth)
        except BidiProtocolError as exc:
            logger.warning("error=<%s> | malformed Gemini Live message", exc)
            if isinstance(exc, _wire.NestingTooDeep):
                if exc.shallow is not None:
                    self._refuse_tool_calls(exc.shallow, str(exc))
                elif _wire.message_kind(data) == "toolCall":
                    # Too deep for the parser itself: read the calls' ids from the text.
                    calls = [{"id": i, "name": n} for i, n in _wire.shallow_call_ids(data)]
                    self._refuse_tool_calls({"toolCall": {"functionCalls": calls}}, str(exc))
            return [BidiErrorEvent(exc, {"server_message": _wire.message_kind(data)})]
        return self.receive_message(message)

    def _refuse_tool_calls(self, message: dict[str, Any], problem: str) -> None:
        """Answer the calls of a ``toolCall`` that cannot be used with error results.

        Without an answer the model would wait for them forever. Only the shallow fields
        (``id``, ``name``) of a message that parsed are read.
        """
        tool_call = message.get("toolCall")
        calls = tool_call.get("functionCalls") if isinstance(tool_call, dict) else None
        for call in calls if isinstance(calls, list) else ():
            if not isinstance(call, dict):
                continue
            call_id, name = call.get("id"), call.get("name")
            if isinstance(call_id, str) and call_id and isinstance(name, str) and name:
                result: ToolResult = {
                    "toolUseId": call_id,
                    "status": "error",
                    "content": [{"text": f"{problem}. Call the function again."}],
                }
                self._outbox.append(_wire.tool_response_message(result, name))

    def take_outbox(self) -> list[str]:
        """Return (and forget) the client messages the protocol needs sent on its own.

        When a ``toolCall`` had to be refused (nested too deeply), its calls get error
        results here so the model's turn goes on.
        """
        texts, self._outbox = self._outbox, []
        return texts

    @property
    def has_outbox(self) -> bool:
        """True when messages wait to be sent.

        [`take_outbox`][trio_bidi.models.gemini_live.GeminiLiveProtocol.take_outbox] takes them.
        """
        return bool(self._outbox)

    def receive_message(self, message: dict[str, Any]) -> list[BidiOutputEvent]:
        """Convert one decoded server message into events; never raises."""
        out: list[BidiOutputEvent] = []
        try:
            self._convert(message, out)
        except Exception as exc:  # a field of the wrong shape: report it, keep going
            kind = _wire.message_kind(message)
            # A serverContent message was not walked for depth: keep it only when shallow.
            raw = None if nesting_exceeds(message, self._max_depth) else message
            error = BidiProtocolError(
                f"Gemini Live sent a malformed {kind} message ({type(exc).__name__}: {exc})",
                raw=raw,
            )
            out.append(BidiErrorEvent(error, {"server_message": kind}))
        return out

    def _convert(self, message: dict[str, Any], out: list[BidiOutputEvent]) -> None:
        content = message.get("serverContent")
        if content is not None:
            self._server_content(_as_dict(content, "serverContent"), out)
        tool_call = message.get("toolCall")
        if tool_call is not None:
            self._tool_call(_as_dict(tool_call, "toolCall"), out)
        cancellation = message.get("toolCallCancellation")
        if cancellation is not None:
            self._cancellation(_as_dict(cancellation, "toolCallCancellation"), out)
        usage = message.get("usageMetadata")
        if usage is not None:
            out.append(self._usage(_as_dict(usage, "usageMetadata")))
        if content is not None and _truthy(content.get("turnComplete")):
            self._turn_complete(out)
        update = message.get("sessionResumptionUpdate")
        if update is not None:
            self._resumption_update(_as_dict(update, "sessionResumptionUpdate"))
        go_away = message.get("goAway")
        if go_away is not None:
            self.go_away = True
            self.go_away_time_left = parse_duration(_as_dict(go_away, "goAway").get("timeLeft"))
        if len(message) > 1 or content is None:
            for key in message:
                if key not in _KNOWN_TOP and key not in self._warned:
                    self._warned.add(key)
                    logger.warning("key=<%s> | ignoring unknown Gemini Live server message", key)

    def _open_response(self, out: list[BidiOutputEvent]) -> None:
        if self._response_id is None:
            self._response_count += 1
            self._response_id = f"{self._connection_id}-response-{self._response_count}"
            self._last_was_tool = False
            out.append(BidiResponseStartEvent(self._response_id))

    def _close_response(self, reason: str, out: list[BidiOutputEvent]) -> None:
        if self._response_id is not None:
            out.append(BidiResponseCompleteEvent(self._response_id, reason))  # type: ignore[arg-type]
            self._response_id = None
            self._last_was_tool = False

    def _server_content(self, content: dict[str, Any], out: list[BidiOutputEvent]) -> None:
        transcription = content.get("inputTranscription")
        if transcription is not None:
            self._transcript("user", _as_dict(transcription, "inputTranscription"), out)
        turn = content.get("modelTurn")
        if turn is not None:
            parts = _as_dict(turn, "modelTurn").get("parts")
            if parts is None:
                parts = []
            if not isinstance(parts, list):
                raise TypeError("modelTurn.parts is not a list")
            for part in parts:
                self._part(_as_dict(part, "modelTurn.parts[]"), out)
        transcription = content.get("outputTranscription")
        if transcription is not None:
            self._transcript("assistant", _as_dict(transcription, "outputTranscription"), out)
        if _truthy(content.get("interrupted")):
            out.append(BidiInterruptionEvent("user_speech"))
            self._finish_assistant(out)
            self._close_response("interrupted", out)
        if _truthy(content.get("generationComplete")):
            self._finish_assistant(out)

    def _part(self, part: dict[str, Any], out: list[BidiOutputEvent]) -> None:
        inline = part.get("inlineData")
        if inline is not None:
            inline = _as_dict(inline, "inlineData")
            data = inline.get("data")
            mime = inline.get("mimeType") or "audio/pcm"
            if not isinstance(data, str) or not isinstance(mime, str):
                raise TypeError("inlineData needs str data and mimeType")
            rate = _wire.audio_mime_rate(mime, self._output_rate)
            if rate is None:
                if mime.startswith("audio/"):
                    raise ValueError(f"unsupported audio mimeType {mime!r}")
                logger.debug("mime_type=<%s> | ignoring non-audio inline data", mime)
                return
            if rate not in _OUTPUT_RATES:
                raise ValueError(f"unsupported output sample rate {rate} in {mime!r}")
            # looks_like_base64, inlined: constant time, on the hot path.
            if data and (len(data) & 3 or not data.isascii() or data[-1] not in BASE64_CHARS):
                raise ValueError("inlineData.data is not base64 audio")
            self._open_response(out)
            self._last_was_tool = False
            out.append(BidiAudioStreamEvent(data, "pcm", rate, 1))  # type: ignore[arg-type]
            return
        text = part.get("text")
        if text is not None:
            if not isinstance(text, str):
                raise TypeError("part text is not a str")
            if part.get("thought"):
                logger.debug("connection_id=<%s> | skipping a thought part", self._connection_id)
                return
            if text:
                self._open_response(out)
                self._last_was_tool = False
                self._model_text += text
                out.append(
                    BidiTranscriptStreamEvent(
                        {"text": text}, text, "assistant", False, self._model_text
                    )
                )
            return
        logger.debug("keys=<%s> | ignoring a model part of another kind", sorted(part))

    def _transcript(
        self, role: str, transcription: dict[str, Any], out: list[BidiOutputEvent]
    ) -> None:
        text = transcription.get("text") or ""
        if not isinstance(text, str):
            raise TypeError(f"{role} transcription text is not a str")
        if text:
            if role == "user":
                self._input_text += text
                current = self._input_text
            else:
                self._open_response(out)
                self._last_was_tool = False
                self._output_text += text
                current = self._output_text
            out.append(BidiTranscriptStreamEvent({"text": text}, text, role, False, current))  # type: ignore[arg-type]
        if _truthy(transcription.get("finished")):
            if role == "user":
                self._finish_user(out)
            else:
                self._finish_assistant(out)

    def _finish_user(self, out: list[BidiOutputEvent]) -> None:
        text = self._input_text
        if text:
            self._input_text = ""
            out.append(BidiTranscriptStreamEvent({"text": text}, text, "user", True, text))

    def _finish_assistant(self, out: list[BidiOutputEvent]) -> None:
        for attr in ("_output_text", "_model_text"):
            text = getattr(self, attr)
            if text:
                setattr(self, attr, "")
                out.append(BidiTranscriptStreamEvent({"text": text}, text, "assistant", True, text))

    def _turn_complete(self, out: list[BidiOutputEvent]) -> None:
        self.handles_at_turn_end = self.handle_count
        if self._response_id is None:
            # The tail of an interrupted turn, or a turn without output: no response to end.
            self._finish_assistant(out)
            return
        self._finish_user(out)
        self._finish_assistant(out)
        self._close_response("tool_use" if self._last_was_tool else "complete", out)

    def _tool_call(self, tool_call: dict[str, Any], out: list[BidiOutputEvent]) -> None:
        calls = tool_call.get("functionCalls") or ()
        if not isinstance(calls, list):
            raise TypeError("toolCall.functionCalls is not a list")
        for raw in calls:
            call = _as_dict(raw, "functionCalls[]")
            name = call.get("name")
            if not isinstance(name, str) or not name:
                raise ValueError("a function call has no name")
            call_id = call.get("id")
            if not isinstance(call_id, str) or not call_id:
                self._call_count += 1
                call_id = f"{self._connection_id}-call-{self._call_count}"
            args = call.get("args")
            if args is None:
                args = {}
            if not isinstance(args, dict):
                # Answer it with an error result: the model would otherwise wait for it.
                problem = f"function call {name!r} ({call_id}) has args that are not an object"
                self._refuse_tool_calls(
                    {"toolCall": {"functionCalls": [{"id": call_id, "name": name}]}}, problem
                )
                error = BidiProtocolError(f"{problem}; the model got an error result")
                details = {"server_message": "toolCall", "call_id": call_id, "name": name}
                out.append(BidiErrorEvent(error, details))
                continue
            self._finish_user(out)
            self._open_response(out)
            self._finish_assistant(out)
            self._remember(call_id, name)
            self._last_was_tool = True
            out.append(
                ToolUseStreamEvent(
                    {"toolUse": {"input": json.dumps(args)}},
                    {"toolUseId": call_id, "name": name, "input": args},
                )
            )

    def _remember(self, call_id: str, name: str) -> None:
        self._open_calls[call_id] = name
        names = self._tool_names
        names[call_id] = name
        if len(names) > _MAX_REMEMBERED_TOOLS:
            for old in list(names)[: len(names) - _MAX_REMEMBERED_TOOLS]:
                if old not in self._open_calls:
                    del names[old]

    def _cancellation(self, cancellation: dict[str, Any], out: list[BidiOutputEvent]) -> None:
        ids = cancellation.get("ids") or []
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise TypeError("toolCallCancellation.ids is not a list of str")
        for call_id in ids:
            self._open_calls.pop(call_id, None)
        if ids:
            out.append(BidiToolCancellationEvent(tuple(ids)))

    def _usage(self, usage: dict[str, Any]) -> BidiUsageEvent:
        prompt = _count(usage, "promptTokenCount")
        response = _count(usage, "responseTokenCount") or _count(usage, "candidatesTokenCount")
        total = _count(usage, "totalTokenCount") or prompt + response
        details: dict[str, dict[str, Any]] = {}
        output_key = (
            "responseTokensDetails"
            if "responseTokensDetails" in usage
            else "candidatesTokensDetails"
        )
        for key, side in (("promptTokensDetails", "input_tokens"), (output_key, "output_tokens")):
            entries = usage.get(key) or []
            if not isinstance(entries, list):
                raise TypeError(f"usageMetadata.{key} is not a list")
            for raw in entries:
                entry = _as_dict(raw, f"usageMetadata.{key}[]")
                modality = str(entry.get("modality") or "MODALITY_UNSPECIFIED")
                detail = details.setdefault(
                    modality, {"modality": modality, "input_tokens": 0, "output_tokens": 0}
                )
                detail[side] += _count(entry, "tokenCount")
        cached = usage.get("cachedContentTokenCount")
        return BidiUsageEvent(
            input_tokens=prompt,
            output_tokens=response,
            total_tokens=total,
            modality_details=list(details.values()) if details else None,
            cache_read_input_tokens=_count(usage, "cachedContentTokenCount")
            if cached is not None
            else None,
        )

    def _resumption_update(self, update: dict[str, Any]) -> None:
        handle = update.get("newHandle")
        if not (_truthy(update.get("resumable")) and isinstance(handle, str) and handle):
            return
        self.session_handle = handle
        self.handle_count += 1
        index = update.get("lastConsumedClientMessageIndex")
        if index is None:
            self._unconsumed.clear()
            self._unconsumed_bytes = 0
            return
        consumed = int(index)
        buffer = self._unconsumed
        while buffer and buffer[0][0] <= consumed:
            self._unconsumed_bytes -= len(buffer.popleft()[1])


_KNOWN_TOP = frozenset(
    (
        "serverContent",
        "toolCall",
        "toolCallCancellation",
        "usageMetadata",
        "sessionResumptionUpdate",
        "goAway",
        *_IGNORED_TOP,
    )
)


def _as_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{what} is a {type(value).__name__}, not an object")
    return value


def _count(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if value is None:
        return 0
    if isinstance(value, bool):
        raise TypeError(f"{key} is not a number")
    return int(value)
