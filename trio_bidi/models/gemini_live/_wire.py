"""The Gemini Live wire codec: pure functions between JSON text and dicts / events.

No clock, no randomness, no I/O. Client messages are built as camelCase JSON exactly as
``google.genai.types.LiveClientMessage`` describes them; the audio path builds its JSON
text directly from a constant prefix and suffix around the (JSON-escaped) base64 payload.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii as _quote
from typing import Any

from ...errors import BidiProtocolError
from ...types import Message, ToolResult, ToolSpec
from .._untrusted import DEFAULT_MAX_DEPTH, exceeds_depth

__all__ = [
    "NestingTooDeep",
    "audio_message",
    "audio_mime_rate",
    "client_content_message",
    "decode",
    "encode",
    "function_declarations",
    "history_turns",
    "message_kind",
    "realtime_message",
    "setup_message",
    "shallow_call_ids",
    "tool_response_message",
]

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_loads = json.loads


def encode(message: dict[str, Any]) -> str:
    """Encode one client message as compact JSON text."""
    return _dumps(message)


_FIRST_KEY = re.compile(rb'^\s*\{\s*"([A-Za-z_]{1,60})"')


def message_kind(data: str | bytes | dict[str, Any]) -> str | None:
    """Name a server message by its first top-level key (``toolCall``, ``serverContent``...)."""
    if isinstance(data, dict):
        return next(iter(data), None)
    head = data[:256].encode("utf-8", "replace") if isinstance(data, str) else data[:256]
    found = _FIRST_KEY.match(head)
    return found.group(1).decode() if found else None


_CALL_HEAD = re.compile(
    rb'\{\s*"(id|name)"\s*:\s*"([^"\\]{1,200})"\s*,\s*"(id|name)"\s*:\s*"([^"\\]{1,200})"'
)
_CALL_SCAN_BYTES = 65536


def shallow_call_ids(data: str | bytes) -> list[tuple[str, str]]:
    """Read ``(id, name)`` of each function call from a ``toolCall`` that cannot be parsed.

    For a message nested too deeply for the JSON parser (the arguments come after the id
    and name, which the service writes first); only its first 64 KiB are searched.
    """
    head = data[:_CALL_SCAN_BYTES]
    raw = head.encode("utf-8", "replace") if isinstance(head, str) else head
    found: list[tuple[str, str]] = []
    for match in _CALL_HEAD.finditer(raw):
        fields = {match.group(1): match.group(2), match.group(3): match.group(4)}
        if set(fields) == {b"id", b"name"}:
            found.append((fields[b"id"].decode(), fields[b"name"].decode()))
    return found


class NestingTooDeep(BidiProtocolError):
    """A server message nests deeper than allowed.

    Args:
        message: What was wrong.
        shallow: The parsed message when the parser could read it (only its top
            levels may be looked at), else None.
    """

    def __init__(self, message: str, shallow: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.shallow = shallow


def decode(data: str | bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> dict[str, Any]:
    """Decode one server message whose JSON nests at most ``max_depth`` levels.

    A message that holds nothing but ``serverContent`` (the audio path, many a second)
    is not walked: the protocol passes on only scalars from it (audio data, texts).

    Raises:
        NestingTooDeep: The message nests too deeply.
        BidiProtocolError: The text is not JSON or is not an object.
    """
    try:
        message = _loads(data)
    except RecursionError as exc:
        raise _too_deep(message_kind(data), max_depth, None) from exc
    except ValueError as exc:  # JSONDecodeError and bad UTF-8
        raise BidiProtocolError(f"Gemini Live sent invalid JSON: {exc}", raw=data) from exc
    if type(message) is not dict:
        raise BidiProtocolError(
            f"Gemini Live sent a JSON {type(message).__name__}, not an object", raw=data
        )
    if (len(message) != 1 or "serverContent" not in message) and exceeds_depth(
        data, message, max_depth
    ):
        raise _too_deep(message_kind(message), max_depth, message)
    return message


def _too_deep(kind: str | None, max_depth: int, shallow: dict[str, Any] | None) -> NestingTooDeep:
    return NestingTooDeep(
        f"Gemini Live message {kind or '(kind unknown)'} nests deeper than {max_depth} levels",
        shallow,
    )


def setup_message(setup: dict[str, Any]) -> str:
    """Return the ``setup`` client message."""
    return encode({"setup": setup})


_AUDIO_SUFFIX: dict[int, str] = {}


def audio_message(audio_b64: str, rate: int) -> str:
    """Return a ``realtimeInput.audio`` message for base64 16-bit PCM at ``rate`` Hz.

    The hot path: one string concatenation around the C JSON-string encoder.
    """
    suffix = _AUDIO_SUFFIX.get(rate)
    if suffix is None:
        suffix = _AUDIO_SUFFIX[rate] = f',"mimeType":"audio/pcm;rate={rate}"}}}}}}'
    return '{"realtimeInput":{"audio":{"data":' + _quote(audio_b64) + suffix


def realtime_message(**fields: Any) -> str:
    """Return a ``realtimeInput`` message with the given (camelCase) fields."""
    return encode({"realtimeInput": fields})


def client_content_message(turns: list[dict[str, Any]], *, turn_complete: bool) -> str:
    """Return a ``clientContent`` message (without ``turns`` when there are none)."""
    if not turns:
        return encode({"clientContent": {"turnComplete": turn_complete}})
    return encode({"clientContent": {"turns": turns, "turnComplete": turn_complete}})


def tool_result_response(result: ToolResult) -> dict[str, Any]:
    """Map a tool result's content to Gemini's ``response`` object.

    Success becomes ``{"output": value}``, failure ``{"error": value}`` (the keys the API
    documents); ``value`` is the text or JSON of a single block, or the list of blocks.
    """
    blocks = result.get("content") or []
    values: list[Any] = []
    for block in blocks:
        if "json" in block:
            values.append(block["json"])
        elif "text" in block:
            values.append(block["text"])
    value: Any = values[0] if len(values) == 1 else values
    key = "error" if result.get("status") == "error" else "output"
    return {key: value}


def tool_response_message(result: ToolResult, name: str | None) -> str:
    """Return a ``toolResponse`` message answering one call."""
    response: dict[str, Any] = {"id": result["toolUseId"]}
    if name is not None:
        response["name"] = name
    response["response"] = tool_result_response(result)
    return encode({"toolResponse": {"functionResponses": [response]}})


def function_declarations(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """Map tool specs to ``functionDeclarations`` (the schema as ``parametersJsonSchema``)."""
    declarations = []
    for spec in tools:
        declaration: dict[str, Any] = {"name": spec["name"], "description": spec["description"]}
        schema = spec.get("inputSchema", {}).get("json")
        if schema:
            declaration["parametersJsonSchema"] = schema
        declarations.append(declaration)
    return declarations


def history_turns(messages: Sequence[Message]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Map Strands messages to ``clientContent`` turns.

    Returns:
        The turns (empty messages are left out) and the tool names by call id found in
        the history's ``toolUse`` blocks.
    """
    turns: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for message in messages:
        parts: list[dict[str, Any]] = []
        for block in message.get("content", []):
            if "text" in block:
                if block["text"]:
                    parts.append({"text": block["text"]})
            elif "toolUse" in block:
                use = block["toolUse"]
                names[use["toolUseId"]] = use["name"]
                parts.append(
                    {
                        "functionCall": {
                            "id": use["toolUseId"],
                            "name": use["name"],
                            "args": use["input"] if isinstance(use["input"], dict) else {},
                        }
                    }
                )
            elif "toolResult" in block:
                result = block["toolResult"]
                call_id = result["toolUseId"]
                response: dict[str, Any] = {"id": call_id}
                if call_id in names:
                    response["name"] = names[call_id]
                response["response"] = tool_result_response(result)
                parts.append({"functionResponse": response})
        if parts:
            role = "model" if message.get("role") == "assistant" else "user"
            turns.append({"role": role, "parts": parts})
    return turns, names


_MIME_RATES: dict[tuple[str, int], int | None] = {}


def audio_mime_rate(mime_type: str, default: int) -> int | None:
    """Return the sample rate of an ``audio/pcm`` MIME type, ``default`` when it names none.

    Returns:
        The rate, or None when the MIME type is not raw PCM audio or the rate is malformed.
    """
    key = (mime_type, default)
    if key in _MIME_RATES:
        return _MIME_RATES[key]
    rate: int | None = None
    base, _, params = mime_type.partition(";")
    if base.strip().lower() in ("audio/pcm", "audio/l16"):
        rate = default
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "rate":
                try:
                    rate = int(value.strip())
                except ValueError:
                    rate = None
    if len(_MIME_RATES) < 64:
        _MIME_RATES[key] = rate
    return rate
