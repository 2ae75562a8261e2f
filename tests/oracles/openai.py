"""Test oracle for the OpenAI Realtime (GA) wire protocol: the official ``openai.types.realtime``.

:func:`client_message_problems` checks one client message (a decoded JSON object) against the
``RealtimeClientEvent`` union and returns the problems found (an empty list when it is valid);
:func:`validate_client_message` raises :class:`OpenAIOracleError` instead. The server-side
twins (:func:`server_event_problems`, :func:`validate_server_event`) check what the emulator
sends against ``RealtimeServerEvent``.

The event unions are discriminated by ``type``, so the oracle picks the one model of that
type and validates against it alone, which keeps the error messages to the point.

The SDK models are pydantic with ``extra="allow"``: a misspelt or invented key validates
silently and is kept in ``model_extra``. So after validation the oracle walks the validated
model tree and reports every key that the matched model does not declare, with its path.
Validation is strict (no ``"5"`` for ``5``), as a JSON wire peer would be.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args, get_origin

import pydantic
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent

__all__ = [
    "OpenAIOracleError",
    "client_message_problems",
    "server_event_problems",
    "validate_client_message",
    "validate_server_event",
]


def _by_type(union: Any) -> dict[str, type[pydantic.BaseModel]]:
    """Map each ``type`` literal of a discriminated event union to its model."""
    members = get_args(get_args(union)[0]) if get_origin(union) is not None else ()
    out: dict[str, type[pydantic.BaseModel]] = {}
    for model in members:
        for literal in get_args(model.model_fields["type"].annotation):
            out[literal] = model
    return out


_CLIENT = _by_type(RealtimeClientEvent)
_SERVER = _by_type(RealtimeServerEvent)


class OpenAIOracleError(AssertionError):
    """A message does not match the official OpenAI Realtime types."""


def _undeclared(value: Any, path: str) -> list[str]:
    """Return the undeclared keys anywhere below a validated value, as dotted paths."""
    problems: list[str] = []
    if isinstance(value, pydantic.BaseModel):
        kind = type(value).__name__
        for key in value.model_extra or {}:
            problems.append(f"{path}.{key}: key not declared by {kind}".lstrip("."))
        for name in type(value).model_fields:
            problems.extend(_undeclared(getattr(value, name), f"{path}.{name}"))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problems.extend(_undeclared(item, f"{path}[{index}]"))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            problems.extend(_undeclared(item, f"{path}.{key}"))
    return problems


def _problems(
    models: Mapping[str, type[pydantic.BaseModel]], message: Any, *, undeclared: bool
) -> list[str]:
    if not isinstance(message, Mapping):
        return [f"not a JSON object: {type(message).__name__}"]
    kind = message.get("type")
    event_model = models.get(kind) if isinstance(kind, str) else None
    if event_model is None:
        return [f"unknown event type {kind!r}"]
    try:
        model = event_model.model_validate(dict(message), strict=True)
    except pydantic.ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        return [f"{kind!r} does not validate: {details}"]
    if not undeclared:
        return []
    return [f"{kind!r} {problem}" for problem in _undeclared(model, "")]


def client_message_problems(message: Any) -> list[str]:
    """Check a client message against ``RealtimeClientEvent``; return the problems found."""
    return _problems(_CLIENT, message, undeclared=True)


def server_event_problems(message: Any) -> list[str]:
    """Check a server event against ``RealtimeServerEvent``; return the problems found.

    Undeclared keys are not reported here: the service itself sends keys the SDK types do
    not declare (``session.id``, ``session.object``, ``obfuscation`` on deltas).
    """
    return _problems(_SERVER, message, undeclared=False)


def validate_client_message(message: Any) -> None:
    """Raise :class:`OpenAIOracleError` unless a client message matches the official types."""
    problems = client_message_problems(message)
    if problems:
        raise OpenAIOracleError("; ".join(problems))


def validate_server_event(message: Any) -> None:
    """Raise :class:`OpenAIOracleError` unless a server event matches the official types."""
    problems = server_event_problems(message)
    if problems:
        raise OpenAIOracleError("; ".join(problems))
