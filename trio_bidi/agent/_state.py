"""AgentState: a JSON-serialisable key-value store carried by the agent."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from ._history import copy_json

__all__ = ["AgentState"]


def _check_json(key: str, value: Any) -> None:
    if not isinstance(key, str):
        raise TypeError(f"agent state keys must be str, not {type(key).__name__}")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(
            f"agent state value for {key!r} is not JSON-serialisable ({type(value).__name__}): "
            f"{exc}"
        ) from exc


class AgentState(MutableMapping[str, Any]):
    """A dict-like store whose values must be JSON-serialisable.

    Values are checked and deep-copied on the way in, so the state can always be saved
    with ``json.dumps(state.to_dict())`` and no caller keeps a live reference into it.

    Args:
        initial: Initial contents.

    Raises:
        ValueError: A value is not JSON-serialisable.
    """

    def __init__(self, initial: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = {}
        for key, value in (initial or {}).items():
            self[key] = value

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        _check_json(key, value)
        self._data[key] = copy_json(value)

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"AgentState({self._data!r})"

    def to_dict(self) -> dict[str, Any]:
        """Return a deep copy of the contents as a plain dict."""
        return copy_json(self._data)
