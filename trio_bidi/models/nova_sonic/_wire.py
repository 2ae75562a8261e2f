"""Nova Sonic wire format: event builders and the event-stream payload codec.

Pure functions: no clock, no randomness, no I/O; names (``promptName``,
``contentName``) are inputs. A Nova event is the JSON ``{"event": {<name>: {...}}}``; on
the wire it travels base64-encoded inside ``{"bytes": ...}`` in an event-stream message
with ``:message-type=event``, ``:event-type=chunk``, ``:content-type=application/json``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from ...types import ToolResult, ToolSpec
from ._eventstream import Message, encode_message

__all__ = [
    "MAX_HISTORY_BYTES",
    "MAX_TEXT_INPUT_BYTES",
    "OutputException",
    "audio_input",
    "content_end",
    "content_start_audio",
    "content_start_text",
    "content_start_tool",
    "decode_output",
    "encode_event",
    "encode_output_event",
    "prompt_end",
    "prompt_start",
    "session_end",
    "session_start",
    "split_utf8",
    "text_input",
    "tool_result",
    "tool_result_text",
]

MAX_TEXT_INPUT_BYTES: Final = 1024
MAX_HISTORY_BYTES: Final = 40 * 1024
_EVENT_HEADERS: Final = {
    ":message-type": "event",
    ":event-type": "chunk",
    ":content-type": "application/json",
}


def _event(name: str, body: Mapping[str, Any]) -> dict[str, Any]:
    return {"event": {name: dict(body)}}


def session_start(
    inference: Mapping[str, Any], turn_detection: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``sessionStart`` with the inference settings (and Nova 2 turn detection)."""
    body: dict[str, Any] = {"inferenceConfiguration": dict(inference)}
    if turn_detection is not None:
        body["turnDetectionConfiguration"] = dict(turn_detection)
    return _event("sessionStart", body)


def prompt_start(
    prompt_name: str, audio: Mapping[str, Any], tools: Sequence[ToolSpec]
) -> dict[str, Any]:
    """``promptStart``: text, audio and tool-use output settings, and the tools.

    Each tool's JSON schema goes as a JSON *string* in ``inputSchema.json``.
    """
    body: dict[str, Any] = {
        "promptName": prompt_name,
        "textOutputConfiguration": {"mediaType": "text/plain"},
        "audioOutputConfiguration": {
            "mediaType": "audio/lpcm",
            "sampleRateHertz": audio["output_rate"],
            "sampleSizeBits": 16,
            "channelCount": 1,
            "voiceId": audio["voice"],
            "encoding": "base64",
            "audioType": "SPEECH",
        },
        "toolUseOutputConfiguration": {"mediaType": "application/json"},
    }
    if tools:
        body["toolConfiguration"] = {
            "tools": [
                {
                    "toolSpec": {
                        "name": spec["name"],
                        "description": spec["description"],
                        "inputSchema": {"json": json.dumps(spec["inputSchema"]["json"])},
                    }
                }
                for spec in tools
            ]
        }
    return _event("promptStart", body)


def content_start_text(
    prompt_name: str, content_name: str, role: str, *, interactive: bool
) -> dict[str, Any]:
    """``contentStart`` of a TEXT block (role SYSTEM, USER or ASSISTANT)."""
    return _event(
        "contentStart",
        {
            "promptName": prompt_name,
            "contentName": content_name,
            "type": "TEXT",
            "interactive": interactive,
            "role": role,
            "textInputConfiguration": {"mediaType": "text/plain"},
        },
    )


def text_input(prompt_name: str, content_name: str, text: str) -> dict[str, Any]:
    """``textInput`` (at most 1 KB of text each; split longer texts)."""
    return _event(
        "textInput", {"promptName": prompt_name, "contentName": content_name, "content": text}
    )


def content_end(prompt_name: str, content_name: str) -> dict[str, Any]:
    """``contentEnd`` of a block."""
    return _event("contentEnd", {"promptName": prompt_name, "contentName": content_name})


def content_start_audio(prompt_name: str, content_name: str, rate: int) -> dict[str, Any]:
    """``contentStart`` of the interactive USER AUDIO block (the microphone)."""
    return _event(
        "contentStart",
        {
            "promptName": prompt_name,
            "contentName": content_name,
            "type": "AUDIO",
            "interactive": True,
            "role": "USER",
            "audioInputConfiguration": {
                "mediaType": "audio/lpcm",
                "sampleRateHertz": rate,
                "sampleSizeBits": 16,
                "channelCount": 1,
                "audioType": "SPEECH",
                "encoding": "base64",
            },
        },
    )


def audio_input(prompt_name: str, content_name: str, audio_b64: str) -> dict[str, Any]:
    """``audioInput`` with base64 PCM."""
    return _event(
        "audioInput",
        {"promptName": prompt_name, "contentName": content_name, "content": audio_b64},
    )


def content_start_tool(prompt_name: str, content_name: str, tool_use_id: str) -> dict[str, Any]:
    """``contentStart`` of a TOOL block answering ``tool_use_id``."""
    return _event(
        "contentStart",
        {
            "promptName": prompt_name,
            "contentName": content_name,
            "interactive": False,
            "type": "TOOL",
            "role": "TOOL",
            "toolResultInputConfiguration": {
                "toolUseId": tool_use_id,
                "type": "TEXT",
                "textInputConfiguration": {"mediaType": "text/plain"},
            },
        },
    )


def tool_result(prompt_name: str, content_name: str, content: str) -> dict[str, Any]:
    """``toolResult`` (the result as a string)."""
    return _event(
        "toolResult", {"promptName": prompt_name, "contentName": content_name, "content": content}
    )


def prompt_end(prompt_name: str) -> dict[str, Any]:
    """``promptEnd``."""
    return _event("promptEnd", {"promptName": prompt_name})


def session_end() -> dict[str, Any]:
    """``sessionEnd``."""
    return _event("sessionEnd", {})


def tool_result_text(result: ToolResult) -> str:
    """A tool result's content as the string ``toolResult`` carries.

    A single JSON block is sent as its JSON; otherwise text blocks are joined and JSON
    blocks serialised; an error result is prefixed with ``Error:``.
    """
    content = list(result.get("content") or [])
    if len(content) == 1 and "json" in content[0]:
        text = json.dumps(content[0]["json"])
    else:
        text = "\n".join(
            block["text"] if "text" in block else json.dumps(block.get("json")) for block in content
        )
    return f"Error: {text}" if result.get("status") == "error" else text


def split_utf8(text: str, limit: int = MAX_TEXT_INPUT_BYTES) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` UTF-8 bytes, never inside a character."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for char in text:
        width = len(char.encode())
        if size + width > limit and current:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    if current:
        pieces.append("".join(current))
    return pieces


def encode_event(event: Mapping[str, Any]) -> bytes:
    """Encode one Nova event as the inner event-stream message the client signs."""
    raw = json.dumps(event, separators=(",", ":")).encode()
    payload = json.dumps({"bytes": base64.b64encode(raw).decode()}).encode()
    return encode_message(_EVENT_HEADERS, payload)


def encode_output_event(event: Mapping[str, Any]) -> bytes:
    """Encode one server event (what the service and the emulator send; not signed)."""
    return encode_event(event)


@attrs.frozen
class OutputException:
    """An ``exception`` or ``error`` message of the output stream.

    Attributes:
        kind: ``exception`` or ``error``.
        type: The ``:exception-type`` (or ``:error-code``).
        message: The service's message.
    """

    kind: str
    type: str
    message: str


def decode_output(message: Message) -> dict[str, Any] | OutputException:
    """Decode an output message to its Nova event dict (``{"event": {...}}``) or exception.

    Raises:
        ValueError: The message is not a chunk event with a base64 JSON payload.
    """
    headers = message.headers
    kind = headers.get(":message-type")
    if kind == "exception":
        text = _exception_message(message.payload)
        return OutputException("exception", str(headers.get(":exception-type", "")), text)
    if kind == "error":
        return OutputException(
            "error", str(headers.get(":error-code", "")), str(headers.get(":error-message", ""))
        )
    if kind != "event":
        raise ValueError(f"unknown :message-type {kind!r}")
    event = _load_json(_payload_bytes(message.payload))
    if not isinstance(event, dict) or not isinstance(event.get("event"), dict):
        raise ValueError("a Nova event must be {'event': {...}}")
    return event


_JSON: Final = json.JSONDecoder()
_PREFIX: Final = b'{"bytes": "'
_COMPACT_PREFIX: Final = b'{"bytes":"'


def _load_json(raw: bytes) -> Any:
    """``json.loads(raw)``, skipping its encoding detection when that would say UTF-8.

    ``json.loads`` picks UTF-8 for any text whose first two bytes are not NUL; a Nova
    event starts with ``{``. Text that does not end where its JSON value ends (trailing
    whitespace, extra data) goes through the full decode, so errors read the same.
    """
    if raw[:1] == b"{" and len(raw) >= 4 and raw[1]:
        text = raw.decode("utf-8", "surrogatepass")
        value, end = _JSON.raw_decode(text)
        return value if end == len(text) else _JSON.decode(text)
    return json.loads(raw)


def _payload_bytes(payload: bytes) -> bytes:
    """The decoded ``bytes`` of a ``{"bytes": "<base64>"}`` payload.

    The common exact shapes are sliced without a JSON parse: strict base64 accepts none
    of the characters JSON escapes, so a slice it decodes is the JSON string's value.
    A slice with a backslash or a quote in it (an escaped slash, more members) goes to
    the parser; any other invalid base64 fails as it would after parsing.
    """
    if payload[-2:] == b'"}':
        encoded: bytes | None = None
        if payload.startswith(_PREFIX) and len(payload) >= 13:
            encoded = payload[11:-2]
        elif payload.startswith(_COMPACT_PREFIX) and len(payload) >= 12:
            encoded = payload[10:-2]
        if encoded is not None:
            try:
                return binascii.a2b_base64(encoded, strict_mode=True)
            except binascii.Error:
                if b"\\" not in encoded and b'"' not in encoded:
                    raise
    outer = json.loads(payload)
    if not isinstance(outer, dict) or not isinstance(outer.get("bytes"), str):
        raise ValueError("an event payload must be {'bytes': <base64>}")
    return binascii.a2b_base64(outer["bytes"].encode("ascii"), strict_mode=True)


def _exception_message(payload: bytes) -> str:
    try:
        body = json.loads(payload)
    except ValueError:
        return payload.decode("utf-8", errors="replace")
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return payload.decode("utf-8", errors="replace")
