"""Test oracle for the Gemini Live wire protocol: the official ``google.genai.types`` models.

:func:`validate_client_message` checks one client message (a decoded JSON object) against
``LiveClientMessage`` and :func:`validate_server_message` one server message against
``LiveServerMessage``. Both raise :class:`GeminiOracleError` naming the path of the first
problem.

The SDK models are pydantic with ``extra="forbid"`` and camelCase aliases, but they also
accept snake_case field names (``populate_by_name``), which the wire does not. So besides
``model_validate_json`` the oracle walks the JSON next to the model's field annotations and
rejects every key that is not the camelCase alias of a declared field, down to the
free-form parts (function ``args``, ``response``, JSON schemas), which it leaves alone.

One gap of the SDK types is bridged explicitly: ``LiveClientSetup`` (google-genai 3.4) does
not declare ``realtimeInputConfig``, although the SDK's own ``live.connect`` sends it
(``_live_converters``: ``setv(parent, ['setup', 'realtimeInputConfig'], ...)``). The oracle
validates that key against ``types.RealtimeInputConfig`` instead and the rest of ``setup``
against ``LiveClientSetup``.
"""

from __future__ import annotations

import json
import types as pytypes
from typing import Annotated, Any, Union, get_args, get_origin

import pydantic
from google.genai import types as gt

__all__ = ["GeminiOracleError", "validate_client_message", "validate_server_message"]


class GeminiOracleError(AssertionError):
    """A message does not match the official Gemini Live types."""


def _aliases(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    by_alias: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        alias = field.alias or name
        by_alias[alias] = field.annotation
    return by_alias


def _members(annotation: Any) -> list[Any]:
    """Flatten Optional / Union / Annotated into candidate annotations."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _members(get_args(annotation)[0])
    if origin is Union or origin is pytypes.UnionType:
        out: list[Any] = []
        for arg in get_args(annotation):
            if arg is not type(None):
                out.extend(_members(arg))
        return out
    return [annotation]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)


def _check_keys(value: Any, annotation: Any, path: str) -> None:
    """Reject keys that are not camelCase aliases of declared fields (recursively)."""
    candidates = _members(annotation)
    if isinstance(value, dict):
        models = [c for c in candidates if _is_model(c)]
        if models:
            model = models[0]
            fields = _aliases(model)
            for key, item in value.items():
                if key not in fields:
                    snake = key in model.model_fields and key != (
                        model.model_fields[key].alias or key
                    )
                    problem = (
                        "is a snake_case name; the wire uses camelCase"
                        if snake
                        else (f"is not a field of {model.__name__}")
                    )
                    raise GeminiOracleError(f"{path}.{key} {problem}")
                _check_keys(item, fields[key], f"{path}.{key}")
            return
        for candidate in candidates:
            if get_origin(candidate) is dict:
                args = get_args(candidate)
                if len(args) == 2:
                    for key, item in value.items():
                        _check_keys(item, args[1], f"{path}[{key!r}]")
                return
        return  # free-form (Any, dict without a model): nothing to check
    if isinstance(value, list):
        for candidate in candidates:
            if get_origin(candidate) is list:
                (item_type,) = get_args(candidate) or (Any,)
                for index, item in enumerate(value):
                    _check_keys(item, item_type, f"{path}[{index}]")
                return


def _validate(
    model: type[pydantic.BaseModel], message: Any, path: str, *, camel_case: bool = True
) -> None:
    if not isinstance(message, dict):
        raise GeminiOracleError(f"{path} must be a JSON object, not {type(message).__name__}")
    try:
        model.model_validate_json(json.dumps(message))
    except pydantic.ValidationError as exc:
        raise GeminiOracleError(f"{path} does not validate as {model.__name__}: {exc}") from exc
    if camel_case:
        _check_keys(message, model, path)


def _exactly_one(message: dict[str, Any], what: str) -> None:
    set_keys = [key for key, value in message.items() if value is not None]
    if len(set_keys) != 1:
        raise GeminiOracleError(f"a {what} carries exactly one message kind, got {set_keys}")


def validate_client_message(message: Any, *, camel_case: bool = True) -> gt.LiveClientMessage:
    """Validate one client message as sent on the wire.

    Args:
        message: The decoded JSON object.
        camel_case: Reject proto field names (snake_case). The service parses JSON as
            protobuf does and takes both spellings, and the official SDK sends some
            snake_case keys; trio_bidi's own client must send camelCase only.

    Returns:
        The parsed ``LiveClientMessage``.

    Raises:
        GeminiOracleError: The message is not a valid camelCase ``LiveClientMessage``
            (unknown or snake_case keys, wrong types, not exactly one kind).
    """
    if not isinstance(message, dict):
        raise GeminiOracleError(f"client message must be an object, not {type(message).__name__}")
    _exactly_one(message, "client message")
    checked = message
    setup = message.get("setup")
    config_keys = (
        ("realtimeInputConfig",) if camel_case else ("realtimeInputConfig", "realtime_input_config")
    )
    if isinstance(setup, dict) and any(key in setup for key in config_keys):
        setup = dict(setup)
        for key in config_keys:
            if key in setup:
                _validate(
                    gt.RealtimeInputConfig,
                    setup.pop(key),
                    f"setup.{key}",
                    camel_case=camel_case,
                )
        checked = {"setup": setup}
    _validate(gt.LiveClientMessage, checked, "client message", camel_case=camel_case)
    realtime = message.get("realtimeInput", message.get("realtime_input"))
    if isinstance(realtime, dict):
        _exactly_one(realtime, "realtimeInput")
    return gt.LiveClientMessage.model_validate_json(json.dumps(checked))


def validate_server_message(message: Any) -> gt.LiveServerMessage:
    """Validate one server message as sent on the wire.

    Args:
        message: The decoded JSON object.

    Returns:
        The parsed ``LiveServerMessage``.

    Raises:
        GeminiOracleError: The message is not a valid camelCase ``LiveServerMessage``.
    """
    _validate(gt.LiveServerMessage, message, "server message")
    return gt.LiveServerMessage.model_validate_json(json.dumps(message))
