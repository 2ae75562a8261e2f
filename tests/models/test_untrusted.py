"""Checks of server input shared by the providers: JSON depth, base64 audio, safe text."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_bidi.models._untrusted import (
    JSONNestingError,
    loads_bounded,
    looks_like_base64,
    nesting_exceeds,
    server_text,
    url_without_query,
)

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=30,
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


@given(_json_values, st.integers(min_value=1, max_value=8))
def test_nesting_is_measured_exactly(value: Any, limit: int) -> None:
    assert nesting_exceeds(value, limit) == (_depth(value) > limit)
    text = json.dumps(value)
    if _depth(value) > limit:
        with pytest.raises(JSONNestingError):
            loads_bounded(text, limit)
    else:
        assert loads_bounded(text, limit) == value
        assert loads_bounded(text.encode(), limit) == value


@pytest.mark.parametrize("depth", [65, 1_000, 100_000])
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deep_text_is_a_nesting_error_never_a_recursion_error(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    with pytest.raises(JSONNestingError) as info:
        loads_bounded(opener * depth + "1" + closer * depth, 64)
    assert "more than 64 levels" in str(info.value)


def test_openers_inside_strings_do_not_count_as_depth() -> None:
    text = json.dumps({"text": "{[" * 500})
    assert loads_bounded(text, 2) == {"text": "{[" * 500}


@given(st.binary(max_size=400))
def test_real_base64_is_accepted(data: bytes) -> None:
    assert looks_like_base64(base64.b64encode(data).decode())


@pytest.mark.parametrize(
    "text", ["abc", "!!!!", "@@@@" * 100, "AAAA" * 50 + "ÿÿÿÿ", "not base64 text!", "AAA}"]
)
def test_text_that_is_not_base64_is_refused(text: str) -> None:
    assert not looks_like_base64(text)


@pytest.mark.parametrize("text", ["ab=c", "A===", "AA AA AA"])
def test_the_constant_time_check_does_not_look_inside(text: str) -> None:
    # Documented: only the length, ASCII and the last character are checked.
    assert looks_like_base64(text)


def test_server_text_redacts_escapes_and_cuts() -> None:
    text = server_text("key sk-123 rejected\n\x1b[31m" + "x" * 500, ("sk-123", ""))
    assert "sk-123" not in text
    assert "[redacted]" in text
    assert "\n" not in text
    assert "\x1b" not in text
    assert text.endswith("... (329 more characters)")
    assert len(text) < 250


def test_url_without_query_hides_a_key_parameter() -> None:
    assert url_without_query("wss://h/p?key=secret") == "wss://h/p?..."
    assert url_without_query("wss://h/p") == "wss://h/p"
