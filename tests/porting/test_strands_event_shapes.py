"""Every event's dict form equals what Strands 1.40 builds for the same arguments.

The expected dicts were written by Strands itself (make_strands_event_fixture.py).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from trio_bidi import events as ev
from trio_bidi.errors import BidiModelTimeoutError

CASES = json.loads(
    (pathlib.Path(__file__).parent / "fixtures" / "strands_event_dicts.json").read_text()
)


def _build(name: str, args: list[Any], kwargs: dict[str, Any]) -> ev.BidiEvent:
    if name == "BidiErrorEvent":
        _kind, message = kwargs["error"]
        return ev.BidiErrorEvent(ValueError(message), kwargs["details"])
    if name == "BidiConnectionRestartEvent":
        message, config = kwargs["timeout_error"]
        return ev.BidiConnectionRestartEvent(BidiModelTimeoutError(message, **config))
    cls = getattr(ev, name)
    event: ev.BidiEvent = cls(*args, **kwargs)
    return event


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c['class']}" for i, c in enumerate(CASES)])
def test_dict_form_matches_strands(case: dict[str, Any]) -> None:
    event = _build(case["class"], case["args"], case["kwargs"])
    expected = case["strands_dict"]
    got = dict(event)
    if case["class"] == "BidiConnectionRestartEvent":
        error = got["timeout_error"]
        assert isinstance(error, BidiModelTimeoutError)
        assert type(error).__name__ == expected["timeout_error"]["exception"]
        assert str(error) == expected["timeout_error"]["message"]
        assert error.restart_config == expected["timeout_error"]["restart_config"]
        return
    assert got == expected
    assert list(event.keys()) == list(expected)  # the same keys in the same order
    assert event.to_dict() == expected
    assert ev.event_from_dict(expected) == event
