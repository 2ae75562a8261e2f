"""Micro-benchmark: Nova Sonic output messages -> events, no I/O.

``python bench/convert_nova.py SIDE [SECONDS]`` with SIDE ``trio_bidi`` or ``strands``
converts a realistic mix of Nova output events (one spoken response: completionStart,
SPECULATIVE text, 50 audio chunks, FINAL text, a tool use, usage) many times and prints
one JSON line: ``{"rate": messages per CPU-second, ...}``.

What counts as conversion is what each library does per received message. trio_bidi's
protocol takes the decoded event-stream message (``{"bytes": <base64>}`` payload): base64
and both JSON decodes are included. Strands' model gets the JSON bytes from the official
SDK, which already did the event-stream and base64 work, and does ``json.loads`` and
``_convert_nova_event``; that SDK work is not counted on its side. Strands' Nova model
needs Python 3.12 (run this side with a 3.12 interpreter that has
``strands-agents==1.40.0`` and ``aws_sdk_bedrock_runtime``).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common

AUDIO = base64.b64encode(bytes(common.FRAME_BYTES)).decode()
IDS = {"sessionId": "s", "promptName": "p", "completionId": "c"}


def nova_events() -> list[dict[str, Any]]:
    def ev(name: str, **body: Any) -> dict[str, Any]:
        return {"event": {name: {**IDS, **body}}}

    stage = json.dumps
    events = [
        ev("completionStart"),
        ev(
            "contentStart",
            contentId="t1",
            type="TEXT",
            role="ASSISTANT",
            additionalModelFields=stage({"generationStage": "SPECULATIVE"}),
        ),
        ev("textOutput", contentId="t1", role="ASSISTANT", content="word " * 10),
        ev("contentEnd", contentId="t1", type="TEXT", stopReason="PARTIAL_TURN"),
        ev("contentStart", contentId="a1", type="AUDIO", role="ASSISTANT"),
    ]
    events += [ev("audioOutput", contentId="a1", content=AUDIO) for _ in range(50)]
    events += [
        ev("contentEnd", contentId="a1", type="AUDIO", stopReason="PARTIAL_TURN"),
        ev(
            "contentStart",
            contentId="t2",
            type="TEXT",
            role="ASSISTANT",
            additionalModelFields=stage({"generationStage": "FINAL"}),
        ),
        ev("textOutput", contentId="t2", role="ASSISTANT", content="word " * 10),
        ev("contentEnd", contentId="t2", type="TEXT", stopReason="END_TURN"),
        ev("contentStart", contentId="u1", type="TOOL", role="TOOL"),
        ev(
            "toolUse",
            contentId="u1",
            toolName="bench_echo",
            toolUseId="tool-1",
            content='{"value": 42}',
        ),
        ev("contentEnd", contentId="u1", type="TOOL", stopReason="TOOL_USE"),
        ev(
            "usageEvent",
            totalInputTokens=10,
            totalOutputTokens=20,
            totalTokens=30,
            details={"total": {"output": {"speechTokens": 20}}},
        ),
    ]
    return events


def trio_bidi_converter() -> tuple[Callable[[Any], Any], list[Any]]:
    from trio_bidi.models.nova_sonic._config import resolve_provider_config
    from trio_bidi.models.nova_sonic._eventstream import EventStreamDecoder
    from trio_bidi.models.nova_sonic._protocol import NovaSonicProtocol
    from trio_bidi.models.nova_sonic._wire import encode_output_event

    decoder = EventStreamDecoder()
    for event in nova_events():
        decoder.feed(encode_output_event(event))
    messages = list(decoder)
    protocol = NovaSonicProtocol("amazon.nova-2-sonic-v1:0", resolve_provider_config(None))
    return protocol.receive_message, messages


def strands_converter() -> tuple[Callable[[Any], Any], list[Any]]:
    from strands.experimental.bidi.models.nova_sonic import BidiNovaSonicModel

    model = BidiNovaSonicModel()
    convert = model._convert_nova_event
    loads = json.loads
    raws = [json.dumps(event).encode() for event in nova_events()]

    def one(raw: bytes) -> Any:
        event = loads(raw)["event"]
        return convert(event)

    return one, raws


def run(side: str, seconds: float = 1.0) -> dict[str, Any]:
    convert, messages = trio_bidi_converter() if side == "trio_bidi" else strands_converter()
    for message in messages:  # warm up (and fail early if a message is refused)
        convert(message)
    count = 0
    t0 = time.process_time()
    while time.process_time() - t0 < seconds:
        for message in messages:
            convert(message)
        count += len(messages)
    cpu = time.process_time() - t0
    return {"n": count, "cpu_s": cpu, "rate": count / cpu}


if __name__ == "__main__":
    common.emit(run(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 1.0))
