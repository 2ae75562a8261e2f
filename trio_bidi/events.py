"""Provider-neutral events: what goes into a conversation and what comes out.

Every event is a frozen ``attrs`` class named as in the Strands Agents ``bidi`` package.
``event.to_dict()`` gives the Strands dict shape (same ``type`` string and keys) and
:func:`event_from_dict` is its inverse, so events can cross a JSON boundary (a browser, a
log) and come back equal. Audio and images stay base64 ``str`` as on the wire.

Every event is also a read-only :class:`collections.abc.Mapping` over exactly its
``to_dict()`` view, as Strands' events are ``dict`` subclasses: ``"type" in event``,
``event["type"]``, ``event.get("key")``, ``event.keys()``, ``dict(event)``, ``{**event}`` and
iteration all work. The view is built on first use and cached (events are immutable), so
constructing an event costs nothing more.

JSON: ``json.dumps(event.to_json_dict())``. ``to_json_dict()`` equals ``to_dict()`` for every
event but one: Strands puts the exception object itself in ``bidi_connection_restart``'s
``timeout_error`` (and so does ``to_dict()`` here); the JSON form holds it as
``{"message": str(error), "restart_config": {...}}``. :func:`event_from_dict` reads both.
``bidi_error`` holds ``message``, ``code`` (the exception's class name) and ``details``, as in
Strands; the exception itself stays on :attr:`BidiErrorEvent.error`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, Literal, TypeAlias, TypedDict, get_args

import attrs

from . import errors as _errors
from .errors import BidiError, BidiModelTimeoutError, BidiReportedError
from .types import ToolResult

__all__ = [
    "AudioChannel",
    "AudioFormat",
    "AudioSampleRate",
    "BidiAudioInputEvent",
    "BidiAudioStreamEvent",
    "BidiConnectionCloseEvent",
    "BidiConnectionRestartEvent",
    "BidiConnectionStartEvent",
    "BidiErrorEvent",
    "BidiEvent",
    "BidiImageInputEvent",
    "BidiInputEvent",
    "BidiInterruptionEvent",
    "BidiOutputEvent",
    "BidiResponseCompleteEvent",
    "BidiResponseStartEvent",
    "BidiTextInputEvent",
    "BidiToolCancellationEvent",
    "BidiTranscriptStreamEvent",
    "BidiUsageEvent",
    "CloseReason",
    "InterruptionReason",
    "ModalityUsage",
    "Role",
    "StopReason",
    "ToolResultEvent",
    "ToolStreamEvent",
    "ToolUseStreamEvent",
    "event_from_dict",
]

AudioFormat: TypeAlias = Literal["pcm", "wav", "opus", "mp3"]
"""Audio encoding."""
AudioSampleRate: TypeAlias = Literal[16000, 24000, 48000]
"""Audio sample rate in Hz."""
AudioChannel: TypeAlias = Literal[1, 2]
"""Number of audio channels."""
Role: TypeAlias = Literal["user", "assistant"]
"""Who speaks."""
StopReason: TypeAlias = Literal["complete", "error", "interrupted", "tool_use"]
"""Why a response ended."""
InterruptionReason: TypeAlias = Literal["user_speech", "error"]
"""Why the model's output was interrupted."""
CloseReason: TypeAlias = Literal[
    "client_disconnect", "timeout", "error", "complete", "user_request"
]
"""Why a connection closed."""

_FORMATS = frozenset(get_args(AudioFormat))
_RATES = frozenset(get_args(AudioSampleRate))
_CHANNELS = frozenset(get_args(AudioChannel))
_ROLES = frozenset(get_args(Role))
_STOP_REASONS = frozenset(get_args(StopReason))
_INTERRUPTION_REASONS = frozenset(get_args(InterruptionReason))
_CLOSE_REASONS = frozenset(get_args(CloseReason))
_TOOL_STATUSES = frozenset(("success", "error"))


def _one_of(allowed: frozenset[Any], what: str) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    choices = ", ".join(sorted(repr(a) for a in allowed))

    def check(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        # bool is an int: keep True from passing as channels=1.
        if isinstance(value, bool) or value not in allowed:
            raise ValueError(f"{attribute.name}={value!r} is not a supported {what} ({choices})")

    return check


class BidiEvent(Mapping[str, Any]):
    """Base of every event: a read-only mapping over its Strands dict form.

    ``to_dict()`` returns a new dict each call; the mapping methods read a cached view of
    it (built on first use), so ``event["type"]`` and ``"text" in event`` are cheap.
    """

    __slots__ = ("_view",)
    type: ClassVar[str]

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Return the event in its Strands dict shape."""

    def to_json_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict form (``json.dumps(event.to_json_dict())``).

        The same as :meth:`to_dict` except for :class:`BidiConnectionRestartEvent`.
        """
        return self.to_dict()

    def as_dict(self) -> dict[str, Any]:
        """Return a plain dict copy of the event (as Strands' ``TypedEvent.as_dict()``)."""
        return self.to_dict()

    def _mapping(self) -> dict[str, Any]:
        try:
            return self._view  # type: ignore[attr-defined,no-any-return]
        except AttributeError:
            view = self.to_dict()
            object.__setattr__(self, "_view", view)
            return view

    def __getitem__(self, key: str) -> Any:
        if key == "type":
            return self.type
        return self._mapping()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __contains__(self, key: object) -> bool:
        return key in self._mapping()

    def get(self, key: str, default: Any = None) -> Any:
        """Return ``self[key]``, or ``default`` when the dict form has no such key."""
        return self._mapping().get(key, default)


# --------------------------------------------------------------------------- inputs


@attrs.frozen
class BidiTextInputEvent(BidiEvent):
    """Text sent to the model.

    Attributes:
        text: The text.
        role: Who says it (default ``"user"``).
    """

    type: ClassVar[str] = "bidi_text_input"
    text: str
    role: Role = attrs.field(default="user", validator=_one_of(_ROLES, "role"))

    def to_dict(self) -> dict[str, Any]:
        """Return the event in its Strands dict shape."""
        return {"type": self.type, "text": self.text, "role": self.role}


@attrs.frozen
class BidiAudioInputEvent(BidiEvent):
    """Audio sent to the model.

    Attributes:
        audio: Base64-encoded audio.
        format: Encoding (``"pcm"`` is 16-bit little-endian signed PCM).
        sample_rate: Samples per second.
        channels: 1 (mono) or 2 (stereo).
    """

    type: ClassVar[str] = "bidi_audio_input"
    audio: str
    format: AudioFormat = attrs.field(validator=_one_of(_FORMATS, "audio format"))
    sample_rate: AudioSampleRate = attrs.field(validator=_one_of(_RATES, "sample rate"))
    channels: AudioChannel = attrs.field(validator=_one_of(_CHANNELS, "channel count"))

    def to_dict(self) -> dict[str, Any]:
        """Return the event in its Strands dict shape."""
        return {
            "type": self.type,
            "audio": self.audio,
            "format": self.format,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
        }


@attrs.frozen
class BidiImageInputEvent(BidiEvent):
    """An image (or a video frame) sent to the model.

    Attributes:
        image: Base64-encoded image.
        mime_type: For example ``"image/jpeg"`` or ``"image/png"``.
    """

    type: ClassVar[str] = "bidi_image_input"
    image: str
    mime_type: str

    def to_dict(self) -> dict[str, Any]:
        """Return the event in its Strands dict shape."""
        return {"type": self.type, "image": self.image, "mime_type": self.mime_type}


# --------------------------------------------------------------------------- outputs


@attrs.frozen
class BidiConnectionStartEvent(BidiEvent):
    """A connection to the model is open and ready.

    Attributes:
        connection_id: Identifies the connection.
        model: The model id.
    """

    type: ClassVar[str] = "bidi_connection_start"
    connection_id: str
    model: str

    def to_dict(self) -> dict[str, Any]:
        """Return the event in its Strands dict shape."""
        return {"type": self.type, "connection_id": self.connection_id, "model": self.model}


def _timeout_error_key(error: BidiModelTimeoutError) -> tuple[str, str]:
    return (str(error), repr(sorted(error.restart_config.items(), key=lambda kv: kv[0])))


@attrs.frozen
class BidiConnectionRestartEvent(BidiEvent):
    """The agent is replacing the model connection (time limit, disconnect).

    Attributes:
        timeout_error: The error that ended the old connection; its ``restart_config``
            is what the new connection was opened with.
    """

    type: ClassVar[str] = "bidi_connection_restart"
    timeout_error: BidiModelTimeoutError = attrs.field(eq=_timeout_error_key)

    def to_dict(self) -> dict[str, Any]:
        """Return the Strands dict form: ``timeout_error`` is the exception object."""
        return {"type": self.type, "timeout_error": self.timeout_error}

    def to_json_dict(self) -> dict[str, Any]:
        """Return the JSON form: the error as ``{"message", "restart_config"}``."""
        return {
            "type": self.type,
            "timeout_error": {
                "message": str(self.timeout_error),
                "restart_config": dict(self.timeout_error.restart_config),
            },
        }


@attrs.frozen
class BidiResponseStartEvent(BidiEvent):
    """The model started a response.

    Attributes:
        response_id: Identifies the response; the matching complete event repeats it.
    """

    type: ClassVar[str] = "bidi_response_start"
    response_id: str

    def to_dict(self) -> dict[str, Any]:
        """Return the event in its Strands dict shape."""
        return {"type": self.type, "response_id": self.response_id}


@attrs.frozen
class BidiAudioStreamEvent(BidiEvent):
    """A chunk of the model's audio.

    Attributes:
        audio: Base64-encoded audio.
        format: Encoding.
        sample_rate: Samples per second.
        channels: 1 or 2.
    """

    type: ClassVar[str] = "bidi_audio_stream"
    audio: str
    format: AudioFormat = attrs.field(validator=_one_of(_FORMATS, "audio format"))
    sample_rate: AudioSampleRate = attrs.field(validator=_one_of(_RATES, "sample rate"))
    channels: AudioChannel = attrs.field(validator=_one_of(_CHANNELS, "channel count"))

    def to_dict(self) -> dict[str, Any]:
        """Return the event in its Strands dict shape."""
        return {
            "type": self.type,
            "audio": self.audio,
            "format": self.format,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
        }


@attrs.frozen
class BidiTranscriptStreamEvent(BidiEvent):
    """A piece of transcript of the user's or the model's speech (or the model's text).

    Attributes:
        delta: The change, as a Strands content block delta (``{"text": ...}``).
        text: The text of this piece.
        role: Who spoke.
        is_final: True when this is the final text of the utterance.
        current_transcript: The whole utterance so far, when the provider gives it.
    """

    type: ClassVar[str] = "bidi_transcript_stream"
    delta: dict[str, Any]
    text: str
    role: Role = attrs.field(validator=_one_of(_ROLES, "role"))
    is_final: bool
    current_transcript: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the event in its Strands dict shape."""
        return {
            "type": self.type,
            "delta": self.delta,
            "text": self.text,
            "role": self.role,
            "is_final": self.is_final,
            "current_transcript": self.current_transcript,
        }


@attrs.frozen
class BidiInterruptionEvent(BidiEvent):
    """The model's output was interrupted; stop playback now.

    Attributes:
        reason: ``"user_speech"`` (barge-in) or ``"error"``.
    """

    type: ClassVar[str] = "bidi_interruption"
    reason: InterruptionReason = attrs.field(
        validator=_one_of(_INTERRUPTION_REASONS, "interruption reason")
    )

    def to_dict(self) -> dict[str, Any]:
        """Return the event in its Strands dict shape."""
        return {"type": self.type, "reason": self.reason}


@attrs.frozen
class BidiResponseCompleteEvent(BidiEvent):
    """The model finished a response.

    Attributes:
        response_id: The id from the matching start event.
        stop_reason: Why it ended.
    """

    type: ClassVar[str] = "bidi_response_complete"
    response_id: str
    stop_reason: StopReason = attrs.field(validator=_one_of(_STOP_REASONS, "stop reason"))

    def to_dict(self) -> dict[str, Any]:
        """Return the event in its Strands dict shape."""
        return {"type": self.type, "response_id": self.response_id, "stop_reason": self.stop_reason}


class ModalityUsage(TypedDict):
    """Token usage of one modality (an item of :attr:`BidiUsageEvent.modality_details`).

    Attributes:
        modality: ``"text"``, ``"audio"``, ``"image"`` or ``"cached"`` (Gemini may name
            others, such as ``"MODALITY_UNSPECIFIED"``).
        input_tokens: Input tokens of this modality.
        output_tokens: Output tokens of this modality.
    """

    modality: str
    input_tokens: int
    output_tokens: int


_Details: TypeAlias = list[ModalityUsage] | list[dict[str, Any]] | None


def _details_or_none(value: _Details) -> _Details:
    # An empty breakdown is no breakdown: the dict form omits the key either way.
    return value or None


@attrs.frozen
class BidiUsageEvent(BidiEvent):
    """Token usage of a response.

    The dict form has ``modality_details`` only when there is a breakdown, and the cache
    keys only when the provider reported them, as in Strands.

    Attributes:
        input_tokens: Input tokens over all modalities.
        output_tokens: Output tokens over all modalities.
        total_tokens: Their sum as the provider reports it.
        modality_details: Per-modality usage (:class:`ModalityUsage` dicts), or None
            (an empty list is stored as None).
        cache_read_input_tokens: Input tokens served from the provider's cache.
        cache_write_input_tokens: Input tokens written to the provider's cache.
    """

    type: ClassVar[str] = "bidi_usage"
    input_tokens: int
    output_tokens: int
    total_tokens: int
    modality_details: _Details = attrs.field(default=None, converter=_details_or_none)
    cache_read_input_tokens: int | None = None
    cache_write_input_tokens: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the event in its Strands dict shape (optional keys only when set)."""
        data: dict[str, Any] = {
            "type": self.type,
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "totalTokens": self.total_tokens,
        }
        if self.modality_details is not None:
            data["modality_details"] = self.modality_details
        if self.cache_read_input_tokens is not None:
            data["cacheReadInputTokens"] = self.cache_read_input_tokens
        if self.cache_write_input_tokens is not None:
            data["cacheWriteInputTokens"] = self.cache_write_input_tokens
        return data


@attrs.frozen
class BidiConnectionCloseEvent(BidiEvent):
    """The conversation's connection closed for good.

    Attributes:
        connection_id: The connection that closed.
        reason: Why.
    """

    type: ClassVar[str] = "bidi_connection_close"
    connection_id: str
    reason: CloseReason = attrs.field(validator=_one_of(_CLOSE_REASONS, "close reason"))

    def to_dict(self) -> dict[str, Any]:
        """Return the event in its Strands dict shape."""
        return {"type": self.type, "connection_id": self.connection_id, "reason": self.reason}


def error_code(error: BaseException) -> str:
    """Return the code a ``bidi_error`` dict gives an exception: its class name.

    Args:
        error: The exception.

    Returns:
        The class name, or the original name for a :class:`BidiReportedError`.
    """
    if isinstance(error, BidiReportedError):
        return error.code
    return type(error).__name__


def _error_key(error: BaseException) -> tuple[str, str]:
    return (error_code(error), str(error))


@attrs.frozen
class BidiErrorEvent(BidiEvent):
    """Something went wrong; the conversation may go on.

    Attributes:
        error: The exception (kept on the event, not in the dict form).
        details: Extra JSON-serialisable context.
    """

    type: ClassVar[str] = "bidi_error"
    error: BaseException = attrs.field(eq=_error_key)
    details: dict[str, Any] | None = None

    @property
    def message(self) -> str:
        """The exception's message."""
        return str(self.error)

    @property
    def code(self) -> str:
        """The exception's class name."""
        return error_code(self.error)

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"type", "message", "code", "details"}``."""
        return {
            "type": self.type,
            "message": self.message,
            "code": self.code,
            "details": self.details,
        }


def _full_delta(delta: dict[str, Any], current_tool_use: dict[str, Any]) -> dict[str, Any]:
    inner = delta.get("toolUse")
    if isinstance(inner, dict) and "toolUseId" in inner:
        return delta
    # The streaming form ({"toolUse": {"input": "<json>"}}): Strands' bidi providers put
    # the whole call in the delta, so complete it from current_tool_use.
    return {**delta, "toolUse": dict(current_tool_use)}


@attrs.frozen
class ToolUseStreamEvent(BidiEvent):
    """The model asks for a tool call.

    Attributes:
        delta: ``{"toolUse": <the whole call>}`` as in Strands' bidi providers; a partial
            delta given to the constructor (``{"toolUse": {"input": "<json>"}}``) is
            completed from ``current_tool_use``.
        current_tool_use: The whole call: ``{"toolUseId", "name", "input"}`` with the
            input parsed.
    """

    type: ClassVar[str] = "tool_use_stream"
    delta: dict[str, Any]
    current_tool_use: dict[str, Any]

    def __attrs_post_init__(self) -> None:
        full = _full_delta(self.delta, self.current_tool_use)
        if full is not self.delta:
            object.__setattr__(self, "delta", full)

    @classmethod
    def from_tool_use(cls, tool_use: Mapping[str, Any]) -> ToolUseStreamEvent:
        """Build the event for a complete call ``{"toolUseId", "name", "input"}``."""
        return cls({"toolUse": dict(tool_use)}, dict(tool_use))

    def to_dict(self) -> dict[str, Any]:
        """Return the event in its Strands dict shape."""
        return {"type": self.type, "delta": self.delta, "current_tool_use": self.current_tool_use}


@attrs.frozen
class ToolResultEvent(BidiEvent):
    """The result of a tool call (sent to the model and shown to the application).

    Attributes:
        tool_result: ``{"toolUseId", "status", "content"}``.
        exception: What the tool raised, when it raised (not in the dict form).
    """

    type: ClassVar[str] = "tool_result"
    tool_result: ToolResult
    exception: Exception | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def tool_use_id(self) -> str:
        """The ``toolUseId`` of the call this result answers."""
        return self.tool_result["toolUseId"]

    def to_dict(self) -> dict[str, Any]:
        """Return the event in its Strands dict shape."""
        return {"type": self.type, "tool_result": self.tool_result}


@attrs.frozen
class ToolStreamEvent(BidiEvent):
    """Something a tool reported while it runs (Strands' streaming tools).

    Attributes:
        tool_use: The call producing it: ``{"toolUseId", "name", "input"}``.
        data: What the tool reported (JSON-serialisable for the JSON form).
    """

    type: ClassVar[str] = "tool_stream"
    tool_use: dict[str, Any]
    data: Any

    @property
    def tool_use_id(self) -> str:
        """The ``toolUseId`` of the call."""
        return str(self.tool_use["toolUseId"])

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"type", "tool_stream_event": {"tool_use", "data"}}``."""
        return {
            "type": self.type,
            "tool_stream_event": {"tool_use": self.tool_use, "data": self.data},
        }


def _str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


@attrs.frozen
class BidiToolCancellationEvent(BidiEvent):
    """The provider withdrew tool calls (Gemini's ``toolCallCancellation``).

    Not in Strands. The agent cancels the matching tool tasks.

    Attributes:
        tool_use_ids: The ids of the withdrawn calls.
    """

    type: ClassVar[str] = "bidi_tool_cancellation"
    tool_use_ids: tuple[str, ...] = attrs.field(converter=_str_tuple)

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"type", "tool_use_ids": [...]}``."""
        return {"type": self.type, "tool_use_ids": list(self.tool_use_ids)}


BidiInputEvent: TypeAlias = BidiTextInputEvent | BidiAudioInputEvent | BidiImageInputEvent
"""What an application sends to the model."""

BidiOutputEvent: TypeAlias = (
    BidiConnectionStartEvent
    | BidiConnectionRestartEvent
    | BidiResponseStartEvent
    | BidiAudioStreamEvent
    | BidiTranscriptStreamEvent
    | BidiInterruptionEvent
    | BidiResponseCompleteEvent
    | BidiUsageEvent
    | BidiConnectionCloseEvent
    | BidiErrorEvent
    | ToolUseStreamEvent
    | BidiToolCancellationEvent
)
"""What comes out of a model connection or an agent."""


# --------------------------------------------------------------------------- from dicts


class _Reader:
    """Reads typed fields out of an event dict, naming the offending key on error."""

    __slots__ = ("data", "kind")

    def __init__(self, data: Mapping[str, Any], kind: str) -> None:
        self.data = data
        self.kind = kind

    def fail(self, key: str, problem: str) -> ValueError:
        return ValueError(f"{self.kind} event: key {key!r} {problem}")

    def raw(self, key: str) -> Any:
        try:
            return self.data[key]
        except KeyError:
            raise self.fail(key, "is missing") from None

    def typed(self, key: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
        if optional and self.data.get(key) is None:
            return None
        value = self.raw(key)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise self.fail(key, f"must be {names}, not {type(value).__name__}")
        return value

    def string(self, key: str) -> str:
        return self.typed(key, str)  # type: ignore[no-any-return]

    def integer(self, key: str, *, optional: bool = False) -> Any:
        return self.typed(key, int, optional=optional)

    def mapping(self, key: str, *, optional: bool = False) -> Any:
        return self.typed(key, dict, optional=optional)

    def choice(self, key: str, allowed: frozenset[Any]) -> Any:
        value = self.raw(key)
        if isinstance(value, bool) or value not in allowed:
            choices = ", ".join(sorted(repr(a) for a in allowed))
            raise self.fail(key, f"has unsupported value {value!r} (expected one of {choices})")
        return value


def _tool_result(r: _Reader, key: str) -> ToolResult:
    value = r.mapping(key)
    inner = _Reader(value, f"{r.kind}.{key}")
    inner.string("toolUseId")
    inner.choice("status", _TOOL_STATUSES)
    content = inner.typed("content", list)
    for index, block in enumerate(content):
        if not isinstance(block, dict) or not (block.keys() & {"text", "json"}):
            raise inner.fail(f"content[{index}]", 'must be a {"text": ...} or {"json": ...} block')
        if "text" in block and not isinstance(block["text"], str):
            raise inner.fail(f"content[{index}].text", "must be str")
    return value  # type: ignore[no-any-return]


def _rebuild_error(message: str, code: str) -> BaseException:
    cls = getattr(_errors, code, None)
    if isinstance(cls, type) and issubclass(cls, BidiError) and cls.__name__ == code:
        try:
            error: BaseException = cls(message)
        except TypeError:
            return BidiReportedError(message, code)
        if str(error) == message:
            return error
    return BidiReportedError(message, code)


def _modality_details(r: _Reader) -> list[ModalityUsage] | None:
    details = r.typed("modality_details", list, optional=True)
    if details is not None:
        for index, item in enumerate(details):
            if not isinstance(item, dict):
                raise r.fail(f"modality_details[{index}]", "must be a dict")
    return details  # type: ignore[no-any-return]


def _parse_tool_stream(r: _Reader) -> ToolStreamEvent:
    inner = _Reader(r.mapping("tool_stream_event"), "tool_stream.tool_stream_event")
    tool_use = inner.mapping("tool_use")
    _Reader(tool_use, "tool_stream.tool_stream_event.tool_use").string("toolUseId")
    return ToolStreamEvent(tool_use, inner.raw("data"))


def _parse_usage(r: _Reader) -> BidiUsageEvent:
    return BidiUsageEvent(
        input_tokens=r.integer("inputTokens"),
        output_tokens=r.integer("outputTokens"),
        total_tokens=r.integer("totalTokens"),
        modality_details=_modality_details(r),
        cache_read_input_tokens=r.integer("cacheReadInputTokens", optional=True),
        cache_write_input_tokens=r.integer("cacheWriteInputTokens", optional=True),
    )


def _parse_restart(r: _Reader) -> BidiConnectionRestartEvent:
    error = r.raw("timeout_error")
    if isinstance(error, BidiModelTimeoutError):  # the Strands dict form
        return BidiConnectionRestartEvent(error)
    inner = _Reader(r.mapping("timeout_error"), "bidi_connection_restart.timeout_error")
    message = inner.string("message")
    restart_config = inner.mapping("restart_config", optional=True) or {}
    if not all(isinstance(k, str) for k in restart_config):
        raise inner.fail("restart_config", "must have str keys")
    return BidiConnectionRestartEvent(BidiModelTimeoutError(message, **restart_config))


def _parse_tool_cancellation(r: _Reader) -> BidiToolCancellationEvent:
    ids = r.typed("tool_use_ids", list)
    if not all(isinstance(i, str) for i in ids):
        raise r.fail("tool_use_ids", "must be a list of str")
    return BidiToolCancellationEvent(tuple(ids))


_PARSERS: dict[str, Callable[[_Reader], BidiEvent]] = {
    "bidi_text_input": lambda r: BidiTextInputEvent(r.string("text"), r.choice("role", _ROLES)),
    "bidi_audio_input": lambda r: BidiAudioInputEvent(
        r.string("audio"),
        r.choice("format", _FORMATS),
        r.choice("sample_rate", _RATES),
        r.choice("channels", _CHANNELS),
    ),
    "bidi_image_input": lambda r: BidiImageInputEvent(r.string("image"), r.string("mime_type")),
    "bidi_connection_start": lambda r: BidiConnectionStartEvent(
        r.string("connection_id"), r.string("model")
    ),
    "bidi_connection_restart": _parse_restart,
    "bidi_response_start": lambda r: BidiResponseStartEvent(r.string("response_id")),
    "bidi_audio_stream": lambda r: BidiAudioStreamEvent(
        r.string("audio"),
        r.choice("format", _FORMATS),
        r.choice("sample_rate", _RATES),
        r.choice("channels", _CHANNELS),
    ),
    "bidi_transcript_stream": lambda r: BidiTranscriptStreamEvent(
        delta=r.mapping("delta"),
        text=r.string("text"),
        role=r.choice("role", _ROLES),
        is_final=r.typed("is_final", bool),
        current_transcript=r.typed("current_transcript", str, optional=True),
    ),
    "bidi_interruption": lambda r: BidiInterruptionEvent(r.choice("reason", _INTERRUPTION_REASONS)),
    "bidi_response_complete": lambda r: BidiResponseCompleteEvent(
        r.string("response_id"), r.choice("stop_reason", _STOP_REASONS)
    ),
    "bidi_usage": _parse_usage,
    "bidi_connection_close": lambda r: BidiConnectionCloseEvent(
        r.string("connection_id"), r.choice("reason", _CLOSE_REASONS)
    ),
    "bidi_error": lambda r: BidiErrorEvent(
        _rebuild_error(r.string("message"), r.string("code")),
        r.mapping("details", optional=True),
    ),
    "tool_use_stream": lambda r: ToolUseStreamEvent(
        r.mapping("delta"), r.mapping("current_tool_use")
    ),
    "tool_result": lambda r: ToolResultEvent(_tool_result(r, "tool_result")),
    "bidi_tool_cancellation": _parse_tool_cancellation,
    "tool_stream": _parse_tool_stream,
}


def event_from_dict(data: Mapping[str, Any]) -> BidiEvent:
    """Build an event from its dict form; the inverse of ``event.to_dict()``.

    Args:
        data: A dict with a ``type`` key, as produced by ``to_dict()`` or sent by a
            browser over JSON.

    Returns:
        The event.

    Raises:
        ValueError: For anything malformed: not a dict, an unknown ``type``, a missing
            key or a bad value. The message names the key and the value.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"event must be a dict, not {type(data).__name__}")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ValueError(f"event: key 'type' must be a str, got {kind!r}")
    parser = _PARSERS.get(kind)
    if parser is None:
        raise ValueError(f"event: unknown type {kind!r} (known: {', '.join(sorted(_PARSERS))})")
    reader = _Reader(data, kind)
    try:
        return parser(reader)
    except ValueError:
        raise
    except (TypeError, AttributeError) as exc:  # a value of the wrong shape deeper inside
        raise ValueError(f"{kind} event: malformed ({exc})") from exc
