"""The OpenAI Realtime wire format: JSON text <-> dicts, and builders of client messages.

Pure functions: no clock, no randomness, no I/O. Ids are inputs. Builders return the
GA (``session.type = "realtime"``) shapes the official ``openai.types.realtime`` client
event models declare, and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ...errors import BidiConfigurationError, BidiProtocolError
from ...events import BidiUsageEvent
from ...types import ToolResult, ToolSpec
from .._untrusted import DEFAULT_MAX_DEPTH, exceeds_depth

__all__ = [
    "MAX_CALL_ID_LENGTH",
    "audio_append",
    "audio_duration_ms",
    "base64_size",
    "decode",
    "encode",
    "event_type_of",
    "function_call_item",
    "function_call_output_item",
    "function_tool",
    "image_item",
    "item_create",
    "response_create",
    "session_update",
    "short_call_id",
    "text_item",
    "tool_result_output",
    "truncate",
    "usage_event",
]

MAX_CALL_ID_LENGTH: Final = 32
"""The API rejects ``call_id`` values longer than this."""

_IMAGE_TYPES: Final = frozenset({"image/png", "image/jpeg", "image/jpg"})
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_loads = json.loads
_APPEND_PREFIX: Final = '{"type":"input_audio_buffer.append","audio":"'
#: Bytes that would need escaping inside a JSON string (control characters, quote, backslash).
_JSON_UNSAFE: Final = bytes(range(0x20)) + b'"\\'


_TYPE_FIELD: Final = re.compile(rb'"type"\s*:\s*"([A-Za-z0-9_.]{1,80})"')


def event_type_of(raw: str | bytes) -> str | None:
    """Find the ``type`` of a server message that could not be parsed (for error reports)."""
    head = raw[:512].encode("utf-8", "replace") if isinstance(raw, str) else raw[:512]
    found = _TYPE_FIELD.search(head)
    return found.group(1).decode() if found else None


# Server events whose fields the protocol reads only at the top level (nothing nested is
# passed on): the hot path (50+ a second) skips the depth check for them.
_FLAT_EVENTS: Final = frozenset(
    {
        "response.output_audio.delta",
        "response.output_audio_transcript.delta",
        "response.output_text.delta",
        "response.function_call_arguments.delta",
        "conversation.item.input_audio_transcription.delta",
    }
)


def decode(raw: str | bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> dict[str, Any]:
    """Parse one server message whose JSON nests at most ``max_depth`` levels.

    Events the protocol reads only at the top level (audio and transcript deltas) are
    not walked: their nested content, if any, is never passed on.

    Raises:
        BidiProtocolError: Not JSON, nested too deeply, or not a JSON object with a
            string ``type``.
    """
    try:
        message = _loads(raw)
    except RecursionError as exc:
        raise _too_deep(raw, max_depth) from exc
    except ValueError as exc:  # JSONDecodeError and bad UTF-8
        raise BidiProtocolError(f"server sent malformed JSON: {exc}", raw=raw) from exc
    if type(message) is not dict or type(kind := message.get("type")) is not str:
        raise BidiProtocolError("server message is not a JSON object with a string 'type'", raw=raw)
    if kind not in _FLAT_EVENTS and exceeds_depth(raw, message, max_depth):
        raise _too_deep(raw, max_depth)
    return message


def _too_deep(raw: str | bytes, max_depth: int) -> BidiProtocolError:
    kind = event_type_of(raw)
    return BidiProtocolError(
        f"server event {kind or '(type unknown)'!s} nests deeper than {max_depth} levels",
        raw=raw[:200],
    )


def encode(message: Mapping[str, Any]) -> str:
    """Serialise one client message to compact JSON text."""
    return _dumps(message)


def audio_append(audio_b64: str) -> str:
    """Return the JSON text of ``input_audio_buffer.append`` for base64 audio.

    Base64 needs no JSON escaping, so the text is concatenated rather than serialised;
    anything that could need escaping goes through the JSON encoder instead. The check
    deletes the unsafe bytes from an ASCII copy and compares lengths (a C loop; about
    three times faster than ``str.isprintable`` on a 20 ms frame).
    """
    if audio_b64.isascii():
        raw = audio_b64.encode("ascii")
        if len(raw.translate(None, _JSON_UNSAFE)) == len(raw):
            return _APPEND_PREFIX + audio_b64 + '"}'
    return _dumps({"type": "input_audio_buffer.append", "audio": audio_b64})


def base64_size(data: str) -> int:
    """Return how many bytes a base64 string decodes to (without decoding it)."""
    n = len(data)
    if n == 0:
        return 0
    padding = 2 if data.endswith("==") else 1 if data.endswith("=") else 0
    return (n * 3) // 4 - padding


def audio_duration_ms(num_bytes: int, sample_rate: int, channels: int) -> float:
    """Return the duration of 16-bit PCM audio of ``num_bytes`` bytes, in milliseconds."""
    return num_bytes * 1000.0 / (sample_rate * 2 * channels)


def short_call_id(tool_use_id: str) -> str:
    """Map a tool use id to a ``call_id`` the API accepts (at most 32 characters).

    Ids that fit are kept; longer ones become ``call_`` plus 27 hex digits of their
    SHA-256, so a tool use and its result always map to the same id.
    """
    if len(tool_use_id) <= MAX_CALL_ID_LENGTH:
        return tool_use_id
    digest = hashlib.sha256(tool_use_id.encode()).hexdigest()
    return "call_" + digest[: MAX_CALL_ID_LENGTH - 5]


def function_tool(spec: ToolSpec) -> dict[str, Any]:
    """Convert a Strands tool spec to a flat Realtime function tool.

    Raises:
        BidiConfigurationError: The spec lacks a name or its input schema.
    """
    try:
        name = spec["name"]
        schema = spec["inputSchema"]["json"]
    except (KeyError, TypeError) as exc:
        raise BidiConfigurationError(
            f"tool spec {spec!r} needs 'name' and 'inputSchema': {{'json': <schema>}}"
        ) from exc
    return {
        "type": "function",
        "name": name,
        "description": spec.get("description", ""),
        "parameters": schema,
    }


def session_update(
    config: Mapping[str, Any],
    *,
    instructions: str | None,
    tools: Sequence[ToolSpec],
) -> dict[str, Any]:
    """Build the ``session.update`` for a resolved provider config.

    Args:
        config: The output of ``resolve_provider_config``.
        instructions: The system prompt.
        tools: Tool specs, sent as flat function tools.
    """
    audio = config["audio"]
    audio_format = {"type": "audio/pcm", "rate": audio["input_rate"]}
    audio_input: dict[str, Any] = {
        "format": audio_format,
        "turn_detection": config["turn_detection"],
        "transcription": config["transcription"],
        "noise_reduction": config["noise_reduction"],
    }
    audio_output: dict[str, Any] = {
        "format": {"type": "audio/pcm", "rate": audio["output_rate"]},
        "voice": audio["voice"],
    }
    if audio.get("speed") is not None:
        audio_output["speed"] = audio["speed"]
    session: dict[str, Any] = {
        "type": "realtime",
        "output_modalities": ["audio"],
        "audio": {"input": audio_input, "output": audio_output},
    }
    if instructions is not None:
        session["instructions"] = instructions
    if tools:
        session["tools"] = [function_tool(spec) for spec in tools]
    session.update(config["inference"])
    return {"type": "session.update", "session": session}


def text_item(text: str, role: str) -> dict[str, Any]:
    """Build a message item: ``input_text`` for the user, ``output_text`` for the assistant."""
    kind = "input_text" if role == "user" else "output_text"
    return {
        "type": "message",
        "role": role,
        "content": [{"type": kind, "text": text}],
    }


def image_item(image_b64: str, mime_type: str) -> dict[str, Any]:
    """Build a user message item holding one image as a data URL.

    Raises:
        BidiConfigurationError: The image type is not PNG or JPEG.
    """
    mime = mime_type.lower()
    if mime not in _IMAGE_TYPES:
        raise BidiConfigurationError(
            f"image mime_type {mime_type!r} is not supported by the OpenAI Realtime API "
            "(image/png or image/jpeg)"
        )
    return {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_image", "image_url": f"data:{mime};base64,{image_b64}"}],
    }


def function_call_item(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    """Build a ``function_call`` item (arguments are JSON-encoded unless already a string)."""
    return {
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments if isinstance(arguments, str) else _dumps(arguments),
    }


def tool_result_output(result: ToolResult) -> str:
    """Render a tool result's content blocks as the ``output`` string.

    One ``{"json": ...}`` block becomes its JSON; text blocks are joined with newlines;
    an error result is prefixed so the model knows the call failed.

    Raises:
        BidiConfigurationError: A block is neither text nor JSON (images, documents).
    """
    parts: list[str] = []
    for index, block in enumerate(result.get("content", [])):
        if isinstance(block, Mapping) and isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif isinstance(block, Mapping) and "json" in block:
            parts.append(_dumps(block["json"]))
        else:
            keys = sorted(block) if isinstance(block, Mapping) else type(block).__name__
            raise BidiConfigurationError(
                f"tool result {result.get('toolUseId')!r} content[{index}] ({keys}) is not "
                "supported by the OpenAI Realtime API: use text or json blocks"
            )
    output = "\n".join(parts)
    if result.get("status") == "error":
        return f"Error: {output}" if output else "Error"
    return output


def function_call_output_item(call_id: str, output: str) -> dict[str, Any]:
    """Build a ``function_call_output`` item."""
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def item_create(item: Mapping[str, Any]) -> dict[str, Any]:
    """Wrap an item in ``conversation.item.create``."""
    return {"type": "conversation.item.create", "item": item}


def response_create() -> dict[str, Any]:
    """Build ``response.create`` (the session's settings apply)."""
    return {"type": "response.create"}


def truncate(item_id: str, content_index: int, audio_end_ms: int) -> dict[str, Any]:
    """Build ``conversation.item.truncate``."""
    return {
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": content_index,
        "audio_end_ms": audio_end_ms,
    }


def _int(value: Any) -> int:
    return value if type(value) is int else 0


def _details(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def usage_event(usage: Mapping[str, Any]) -> BidiUsageEvent:
    """Convert a ``response.done`` usage object to a usage event.

    ``modality_details`` lists text, audio and image with their input and output tokens
    (modalities with no tokens either way are left out).
    """
    input_details = _details(usage.get("input_token_details"))
    output_details = _details(usage.get("output_token_details"))
    modality_details: list[dict[str, Any]] = []
    for modality in ("text", "audio", "image"):
        key = f"{modality}_tokens"
        tokens_in = _int(input_details.get(key))
        tokens_out = _int(output_details.get(key))
        if tokens_in or tokens_out:
            modality_details.append(
                {"modality": modality, "input_tokens": tokens_in, "output_tokens": tokens_out}
            )
    input_tokens = _int(usage.get("input_tokens"))
    output_tokens = _int(usage.get("output_tokens"))
    total = usage.get("total_tokens")
    cached = input_details.get("cached_tokens")
    return BidiUsageEvent(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=total if type(total) is int else input_tokens + output_tokens,
        modality_details=modality_details,
        cache_read_input_tokens=cached if type(cached) is int and cached > 0 else None,
    )
