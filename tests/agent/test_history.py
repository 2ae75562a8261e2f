"""copy_json: copies the history's containers at any depth, without recursion."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from trio_bidi.agent._history import copy_json

_leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_json = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(), inner, max_size=4)
    ),
    max_leaves=30,
)


def _containers(value: Any) -> list[Any]:
    found: list[Any] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            found.append(item)
            stack.extend(item)
    return found


@given(_json)
def test_the_copy_is_equal_and_shares_no_container(value: Any) -> None:
    copied = copy_json(value)
    assert copied == value
    originals = {id(c) for c in _containers(value) if not isinstance(c, tuple)}
    assert not originals & {id(c) for c in _containers(copied)}


def test_depth_beyond_the_recursion_limit() -> None:
    value: Any = "bottom"
    for level in range(5000):
        value = {"next": value} if level % 2 else [value]
    copied = copy_json(value)
    depth = 0
    while not isinstance(copied, str):
        copied = copied["next"] if isinstance(copied, dict) else copied[0]
        depth += 1
    assert depth == 5000


def test_leaves_and_other_objects_are_shared() -> None:
    payload = b"\x00\x01"
    marker = object()
    inner = [2]
    copied = copy_json({"bytes": payload, "object": marker, "tuple": (1, inner, ({"a": 1},))})
    assert copied["bytes"] is payload
    assert copied["object"] is marker
    assert copied["tuple"] == (1, [2], ({"a": 1},))
    assert copied["tuple"][1] is not inner  # containers inside tuples are copied too
