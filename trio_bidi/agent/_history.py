"""Copying the conversation history without recursion.

The history holds what the model sent (tool arguments included), so its depth is chosen
by the peer: a recursive copy (``copy.deepcopy``) of arguments nested a few hundred levels
deep raises RecursionError. :func:`copy_json` copies the containers with an explicit stack
and shares every other value (strings, numbers, bytes... are immutable).
"""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["copy_json"]

T = TypeVar("T")


def copy_json(value: T) -> T:
    """Return a copy of a JSON-shaped value: new dicts and lists, shared leaves.

    Dicts (TypedDicts included) and lists are copied at every depth; any other object
    (strings, numbers, bytes, tuples...) is shared. Works at any nesting depth.
    """
    if not isinstance(value, dict | list):
        return value
    root: list[Any] = [None]
    # Each entry: a source container, and where its copy goes (parent container, key).
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        source, parent, key = stack.pop()
        copied: Any = dict(source) if isinstance(source, dict) else list(source)
        parent[key] = copied
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for item_key, item in items:
            if isinstance(item, dict | list):
                stack.append((item, copied, item_key))
    return root[0]  # type: ignore[no-any-return]
