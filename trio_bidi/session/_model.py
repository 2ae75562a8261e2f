"""The stored records of a session, in Strands 1.40's JSON shapes.

A session directory (or S3 prefix) holds ``session.json``, one ``agent.json`` per agent and
one ``message_<index>.json`` per message. The field names, their order, the timestamps
(ISO 8601, UTC) and the encoding of ``bytes`` values (``{"__bytes_encoded__": true,
"data": <base64>}``) are Strands', so either library reads what the other wrote.
"""

from __future__ import annotations

import base64
import copy
import datetime
import enum
import json
import os
from collections.abc import Mapping
from typing import Any

import attrs

from ..errors import BidiError
from ..types import Message

__all__ = [
    "Session",
    "SessionAgent",
    "SessionException",
    "SessionMessage",
    "SessionType",
    "decode_bytes_values",
    "encode_bytes_values",
    "validate_id",
]


class SessionException(BidiError):
    """A session store cannot be read or written (the message names the file or key)."""


class SessionType(enum.StrEnum):
    """The kind of session (Strands has one for agents)."""

    AGENT = "AGENT"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def validate_id(value: str, kind: str) -> str:
    """Check a session or agent id is usable as a path segment, as Strands does.

    Raises:
        ValueError: The id is empty, not a str, or contains a path separator.
    """
    if not isinstance(value, str) or not value or os.path.basename(value) != value:
        raise ValueError(f"{kind}_id={value!r} | id cannot be empty or contain path separators")
    if value in (".", ".."):
        raise ValueError(f"{kind}_id={value!r} | id cannot be '.' or '..'")
    return value


def encode_bytes_values(value: Any) -> Any:
    """Replace ``bytes`` anywhere in ``value`` by Strands' base64 marker dict."""
    if isinstance(value, bytes):
        return {"__bytes_encoded__": True, "data": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {k: encode_bytes_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [encode_bytes_values(v) for v in value]
    return value


def decode_bytes_values(value: Any) -> Any:
    """Turn Strands' base64 marker dicts back into ``bytes``."""
    if isinstance(value, dict):
        if value.get("__bytes_encoded__") is True and "data" in value:
            return base64.b64decode(value["data"])
        return {k: decode_bytes_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_bytes_values(v) for v in value]
    return value


def _field(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise SessionException(f"{where}: not a Strands session record (no {key!r} key)")
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise SessionException(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _check_message(message: Any, where: str) -> Message:
    if (
        not isinstance(message, dict)
        or message.get("role") not in ("user", "assistant")
        or not isinstance(message.get("content"), list)
    ):
        raise SessionException(f"{where}: not a message ({{'role', 'content': [...]}})")
    return message  # type: ignore[return-value]


@attrs.define
class Session:
    """``session.json``: the session's id, type and timestamps."""

    session_id: str
    session_type: SessionType = SessionType.AGENT
    created_at: str = attrs.Factory(_now)
    updated_at: str = attrs.Factory(_now)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object, keys in Strands' order."""
        return {
            "session_id": self.session_id,
            "session_type": self.session_type.value,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "session.json") -> Session:
        """Read the JSON object (unknown keys are ignored, as in Strands).

        Raises:
            SessionException: Not a session record.
        """
        if not isinstance(data, dict):
            raise SessionException(f"{where}: not a JSON object")
        kind = _field(data, "session_type", str, where)
        try:
            session_type = SessionType(kind)
        except ValueError:
            raise SessionException(f"{where}: unknown session_type {kind!r}") from None
        return cls(
            session_id=_field(data, "session_id", str, where),
            session_type=session_type,
            created_at=data.get("created_at") or _now(),
            updated_at=data.get("updated_at") or _now(),
        )


def _empty_internal_state() -> dict[str, Any]:
    # What Strands' BidiAgent writes (its interrupt state, never activated in bidi).
    return {"interrupt_state": {"interrupts": {}, "context": {}, "activated": False}}


@attrs.define
class SessionAgent:
    """``agent.json``: an agent's state (``agent.state``) and Strands' bookkeeping."""

    agent_id: str
    state: dict[str, Any]
    conversation_manager_state: dict[str, Any] = attrs.Factory(dict)
    internal_state: dict[str, Any] = attrs.Factory(_empty_internal_state)
    created_at: str = attrs.Factory(_now)
    updated_at: str = attrs.Factory(_now)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object, keys in Strands' order."""
        return {
            "agent_id": self.agent_id,
            "state": copy.deepcopy(self.state),
            "conversation_manager_state": copy.deepcopy(self.conversation_manager_state),
            "_internal_state": copy.deepcopy(self.internal_state),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "agent.json") -> SessionAgent:
        """Read the JSON object.

        Raises:
            SessionException: Not an agent record.
        """
        if not isinstance(data, dict):
            raise SessionException(f"{where}: not a JSON object")
        return cls(
            agent_id=_field(data, "agent_id", str, where),
            state=_field(data, "state", dict, where),
            conversation_manager_state=data.get("conversation_manager_state") or {},
            internal_state=data.get("_internal_state") or {},
            created_at=data.get("created_at") or _now(),
            updated_at=data.get("updated_at") or _now(),
        )


@attrs.define
class SessionMessage:
    """``message_<index>.json``: one message of an agent's history."""

    message: Message
    message_id: int
    redact_message: Message | None = None
    created_at: str = attrs.Factory(_now)
    updated_at: str = attrs.Factory(_now)

    def to_message(self) -> Message:
        """The message the agent sees (the redacted one when there is one)."""
        return self.redact_message if self.redact_message is not None else self.message

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object, keys in Strands' order, ``bytes`` base64-encoded."""
        return encode_bytes_values(  # type: ignore[no-any-return]
            {
                "message": self.message,
                "message_id": self.message_id,
                "redact_message": self.redact_message,
                "created_at": self.created_at,
                "updated_at": self.updated_at,
            }
        )

    @classmethod
    def from_dict(cls, data: Any, where: str = "message") -> SessionMessage:
        """Read the JSON object.

        Raises:
            SessionException: Not a message record.
        """
        if not isinstance(data, dict):
            raise SessionException(f"{where}: not a JSON object")
        data = decode_bytes_values(data)
        redact = data.get("redact_message")
        return cls(
            message=_check_message(_field(data, "message", dict, where), where),
            message_id=_field(data, "message_id", int, where),
            redact_message=None if redact is None else _check_message(redact, where),
            created_at=data.get("created_at") or _now(),
            updated_at=data.get("updated_at") or _now(),
        )


def dumps(data: dict[str, Any]) -> str:
    """Serialise a record as Strands does (two-space indent, UTF-8 kept as is)."""
    return json.dumps(data, indent=2, ensure_ascii=False)


def loads(text: str | bytes, where: str) -> Any:
    """Parse a record.

    Raises:
        SessionException: Not valid JSON (the message names ``where``).
    """
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SessionException(f"{where}: invalid JSON ({exc})") from exc
