"""Oracle for Nova Sonic client events: the AWS docs' event templates as a JSON schema,
plus the order rules of the user guide (checked per session).

Nova has no official types, so :data:`SCHEMA` (``nova_client_events.schema.json``) is
built from the documented templates with every object closed (no unknown keys).
:class:`NovaClientOracle` applies it to each event and tracks each session's order:
``sessionStart``, ``promptStart``, the system prompt and history as non-interactive text
blocks before the audio block, blocks that never interleave (no audio frame inside a
text or tool block), at most 1 KB per ``textInput``, at most 40 KB of history starting
with a USER message, and ``contentEnd`` -> ``promptEnd`` -> ``sessionEnd`` at the end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import attrs
import jsonschema

SCHEMA: dict[str, Any] = json.loads(
    (Path(__file__).with_name("nova_client_events.schema.json")).read_text()
)
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
_TEXT_LIMIT = 1024
_HISTORY_LIMIT = 40 * 1024


class _Session(Protocol):
    index: int
    model_id: str


def schema_problems(event: dict[str, Any]) -> list[str]:
    """The schema violations of one client event (empty when valid)."""
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in _VALIDATOR.iter_errors(event)
    ]


@attrs.define
class _Order:
    step: int = 0
    prompt_name: str | None = None
    blocks: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    used_names: set[str] = attrs.field(factory=set)
    audio_started: bool = False
    history_bytes: int = 0
    history_roles: list[str] = attrs.field(factory=list)
    prompt_ended: bool = False
    session_ended: bool = False


class NovaClientOracle:
    """Validates every client event of every session (call it with session and event)."""

    def __init__(self) -> None:
        self._orders: dict[int, _Order] = {}

    def __call__(self, session: _Session, event: dict[str, Any]) -> list[str]:
        problems = schema_problems(event)
        if problems:
            return problems
        ((name, body),) = event["event"].items()
        order = self._orders.setdefault(session.index, _Order())
        return self._order_problems(order, session, name, body)

    def _order_problems(
        self, order: _Order, session: _Session, name: str, body: dict[str, Any]
    ) -> list[str]:
        problems: list[str] = []
        if order.session_ended:
            return [f"{name} after sessionEnd"]
        if order.step == 0:
            order.step = 1
            if name != "sessionStart":
                return [f"the first event must be sessionStart, not {name}"]
            if "turnDetectionConfiguration" in body and "nova-2" not in session.model_id:
                problems.append("turnDetectionConfiguration is a Nova 2 setting")
            return problems
        if name == "sessionStart":
            return ["sessionStart sent twice"]
        if order.step == 1:
            order.step = 2
            if name != "promptStart":
                return [f"promptStart must follow sessionStart, not {name}"]
            order.prompt_name = body["promptName"]
            return problems
        if name == "promptStart":
            return ["promptStart sent twice"]
        if name == "sessionEnd":
            order.session_ended = True
            if not order.prompt_ended:
                problems.append("sessionEnd before promptEnd")
            return problems
        if body.get("promptName") != order.prompt_name:
            problems.append(f"{name} names prompt {body.get('promptName')!r}, not the session's")
        if order.prompt_ended:
            return [*problems, f"{name} after promptEnd"]
        content = body.get("contentName")
        block = order.blocks.get(content) if isinstance(content, str) else None
        non_audio_open = [b for b in order.blocks.values() if b["type"] != "AUDIO"]
        if name == "contentStart":
            if content in order.used_names:
                problems.append(f"contentName {content!r} reused")
            order.used_names.add(content)
            if non_audio_open:
                problems.append("a content block starts inside an open text or tool block")
            kind, role, interactive = body["type"], body["role"], body["interactive"]
            if kind == "AUDIO":
                if any(b["type"] == "AUDIO" for b in order.blocks.values()):
                    problems.append("a second audio block while one is open")
                order.audio_started = True
            elif kind == "TEXT" and not interactive:
                if order.audio_started:
                    problems.append(
                        "a non-interactive text block (system/history) after audio began"
                    )
                if role in ("USER", "ASSISTANT"):
                    if role == "ASSISTANT" and not order.history_roles:
                        problems.append("the history must start with a USER message")
                    order.history_roles.append(role)
                elif role == "SYSTEM" and order.history_roles:
                    problems.append("the system prompt must come before the history")
            elif kind == "TEXT" and interactive and "nova-2" not in session.model_id:
                problems.append(f"{session.model_id} takes no interactive text input")
            order.blocks[content] = {"type": kind, "role": role, "interactive": interactive}
            return problems
        if name in ("textInput", "toolResult", "audioInput"):
            expected = {"textInput": "TEXT", "toolResult": "TOOL", "audioInput": "AUDIO"}[name]
            if block is None:
                return [*problems, f"{name} for a block that is not open ({content!r})"]
            if block["type"] != expected:
                problems.append(f"{name} in a {block['type']} block")
            if name == "audioInput" and non_audio_open:
                problems.append("an audio frame inside an open text or tool block")
            if name == "textInput":
                size = len(body["content"].encode())
                if size > _TEXT_LIMIT:
                    problems.append(f"textInput of {size} bytes (max {_TEXT_LIMIT})")
                if not block["interactive"] and block["role"] in ("USER", "ASSISTANT"):
                    order.history_bytes += size
                    if order.history_bytes > _HISTORY_LIMIT:
                        problems.append(f"history over {_HISTORY_LIMIT} bytes")
            return problems
        if name == "contentEnd":
            if block is None:
                return [*problems, f"contentEnd for a block that is not open ({content!r})"]
            del order.blocks[content]
            return problems
        if name == "promptEnd":
            order.prompt_ended = True
            if order.blocks:
                problems.append(f"promptEnd with open blocks {sorted(order.blocks)}")
            return problems
        return [*problems, f"unexpected event {name}"]
