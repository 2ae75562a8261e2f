"""JSON from a peer, with its nesting depth bounded.

A server (or a model writing function arguments) can send JSON nested thousands of levels
deep. Python's parser then raises ``RecursionError``, and a structure that parses but nests
hundreds of levels breaks later recursive code (``copy.deepcopy`` of the history, printing).
:func:`loads_bounded` turns both into a :class:`JSONNestingError` (a ``ValueError``).

The check costs next to nothing on the hot path: counting ``{`` and ``[`` runs at C speed,
and only text with more openers than the limit (never an audio message) is walked.
"""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = ["DEFAULT_MAX_DEPTH", "JSONNestingError", "loads_bounded", "nesting_exceeds"]

DEFAULT_MAX_DEPTH: Final = 64
"""The nesting a provider accepts unless configured otherwise."""

_loads = json.loads


class JSONNestingError(ValueError):
    """JSON nested more deeply than allowed."""


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Return True when ``value`` (parsed JSON) nests objects/arrays deeper than ``limit``.

    Iterative, so it is safe on any depth. The outermost container is level 1.
    """
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if type(item) is dict:
            children: Any = item.values()
        elif type(item) is list:
            children = item
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children if type(child) in (dict, list))
    return False


def loads_bounded(raw: str | bytes, limit: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse JSON text whose containers nest at most ``limit`` levels.

    Args:
        raw: The JSON text (bytes are UTF-8).
        limit: The deepest nesting accepted.

    Returns:
        The parsed value.

    Raises:
        JSONNestingError: The text nests deeper than ``limit``.
        ValueError: The text is not JSON (``json.JSONDecodeError``, bad UTF-8).
    """
    try:
        value = _loads(raw)
    except RecursionError as exc:
        raise JSONNestingError(f"JSON nested more than {limit} levels deep") from exc
    if type(value) in (dict, list):
        openers = (
            raw.count("{") + raw.count("[")
            if isinstance(raw, str)
            else raw.count(b"{") + raw.count(b"[")
        )
        if openers > limit and nesting_exceeds(value, limit):
            raise JSONNestingError(f"JSON nested more than {limit} levels deep")
    return value
