"""Write the dict form Strands 1.40 gives each bidi event (run with Strands' own Python).

    python3 -m venv /work/strands140 && /work/strands140/bin/pip install strands-agents==1.40.0
    /work/strands140/bin/python tests/porting/make_strands_event_fixture.py

Each entry names the event class, the constructor arguments (JSON) and ``dict(event)`` as
Strands builds it; tests/porting/test_strands_event_shapes.py builds the same events here
and compares. The restart event's exception is written as its class, message and restart config.
"""

import json
import pathlib
import sys

from strands.experimental.bidi.models.model import BidiModelTimeoutError
from strands.experimental.bidi.types import events as bidi
from strands.types import _events as core

CASES = [
    ("BidiTextInputEvent", ["hi"], {}),
    ("BidiTextInputEvent", ["hi", "assistant"], {}),
    ("BidiAudioInputEvent", ["QUJD", "pcm", 16000, 1], {}),
    ("BidiImageInputEvent", ["QUJD", "image/png"], {}),
    ("BidiConnectionStartEvent", ["c1", "gpt-realtime"], {}),
    ("BidiResponseStartEvent", ["r1"], {}),
    ("BidiAudioStreamEvent", ["QUJD", "pcm", 24000, 1], {}),
    ("BidiTranscriptStreamEvent", [{"text": "he"}, "he", "assistant", False], {}),
    ("BidiTranscriptStreamEvent", [{"text": "hello"}, "hello", "user", True, "hello"], {}),
    ("BidiInterruptionEvent", ["user_speech"], {}),
    ("BidiResponseCompleteEvent", ["r1", "tool_use"], {}),
    ("BidiUsageEvent", [10, 20, 30], {}),
    (
        "BidiUsageEvent",
        [1, 2, 3, [{"modality": "audio", "input_tokens": 1, "output_tokens": 2}], 4, 5],
        {},
    ),
    ("BidiUsageEvent", [1, 2, 3], {"cache_read_input_tokens": 7}),
    ("BidiConnectionCloseEvent", ["c1", "user_request"], {}),
    ("BidiErrorEvent", [], {"error": ["ValueError", "bad"], "details": {"k": 1}}),
    (
        "ToolUseStreamEvent",
        [
            {"toolUse": {"toolUseId": "t1", "name": "calc", "input": {"x": 1}}},
            {"toolUseId": "t1", "name": "calc", "input": {"x": 1}},
        ],
        {},
    ),
    (
        "ToolResultEvent",
        [{"toolUseId": "t1", "status": "success", "content": [{"text": "4"}]}],
        {},
    ),
    ("ToolStreamEvent", [{"toolUseId": "t1", "name": "calc", "input": {}}, {"step": 1}], {}),
    ("BidiConnectionRestartEvent", [], {"timeout_error": ["limit reached", {"handle": "h1"}]}),
]


def build(name, args, kwargs):
    if name == "BidiErrorEvent":
        kind, message = kwargs["error"]
        return bidi.BidiErrorEvent({"ValueError": ValueError}[kind](message), kwargs["details"])
    if name == "BidiConnectionRestartEvent":
        message, config = kwargs["timeout_error"]
        return bidi.BidiConnectionRestartEvent(BidiModelTimeoutError(message, **config))
    cls = getattr(bidi, name, None) or getattr(core, name)
    return cls(*args, **kwargs)


def as_json(name, event):
    data = dict(event)
    if name == "BidiConnectionRestartEvent":
        error = data["timeout_error"]
        data["timeout_error"] = {
            "exception": type(error).__name__,
            # Strands passes (self, message) to Exception, so str() shows a tuple.
            "message": error.args[-1],
            "restart_config": error.restart_config,
        }
    return data


def main():
    out = [
        {"class": n, "args": a, "kwargs": k, "strands_dict": as_json(n, build(n, a, k))}
        for n, a, k in CASES
    ]
    path = pathlib.Path(__file__).parent / "fixtures" / "strands_event_dicts.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {len(out)} events to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
