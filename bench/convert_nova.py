"""Micro-benchmark: Nova Sonic output -> events, no I/O.

``python bench/convert_nova.py SIDE [SECONDS]`` with SIDE ``trio_bidi`` or ``strands``
converts a realistic mix of Nova output events (one spoken response: completionStart,
SPECULATIVE text, 50 audio chunks, FINAL text, a tool use, usage; 63 messages) many
times and prints one JSON line: ``{"rate": ..., "rate_json": ...}`` in messages per
CPU-second. Strands' Nova model needs Python 3.12: run its side with a 3.12 interpreter
that has ``strands-agents==1.40.0`` and ``aws_sdk_bedrock_runtime``.

Two rows, each from the same starting point on both sides:

``rate`` (the headline): from the raw event-stream bytes as the HTTP/2 stream delivers
them (one DATA chunk per message; identical bytes on both sides, built here with the
stdlib). trio_bidi: :class:`EventStreamDecoder` (prelude and message CRCs, headers) and
``NovaSonicProtocol.receive_message`` (payload ``{"bytes": ...}``, base64, the Nova
JSON, the events) -- what ``_model._on_body`` does per chunk, minus the awaits. Strands:
its real ``BidiNovaSonicModel.receive()`` async generator, driven without an event loop
(nothing in it suspends), reading from the official SDK's ``AWSEventReceiver`` built as
``RestJsonClientProtocol.create_event_receiver`` builds it (same payload codec and
output deserializer) over an async-iterable body like the CRT response's. So it counts
the SDK's ``Event.decode_async`` (CRCs, headers), its shape deserialization of the
chunk (JSON payload, base64 blob), and Strands' per-chunk loop: ``json.loads``,
``_log_event_type`` (which base64-decodes every audio chunk and ``json.dumps`` most other
events even with debug logging off; that is Strands' own code on its receive path) and
``_convert_nova_event``. Only the transport and the awaits are left out on both sides.
Every chunk carries the same three headers, as Nova's output does, so trio_bidi's
decoder decodes them once (its header cache); the SDK decodes them per message.

``rate_json``: conversion alone, from the inner Nova event JSON bytes (what the SDK hands
Strands): both sides parse it the way their receive path does (Strands: ``decode`` +
``json.loads``; trio_bidi: ``_wire._load_json``, which ``decode_output`` uses) and run
their own mapping (trio_bidi: ``NovaSonicProtocol.receive_event``; Strands:
``_convert_nova_event`` only, without ``_log_event_type``). Neither side counts
event-stream framing or base64 here.

Where the time goes (cProfile, 2026-12): on Strands' side about 80% of ``rate`` is the
SDK's receive (``AsyncBytesReader.read`` runtime-checkable ``isinstance`` checks on every
one of its four reads per message, header decoding, the smithy shape deserializers); on
trio_bidi's side a little over half is C work (base64 of the payload, CRC32, the JSON
scanner) and the rest the decoder's and protocol's Python.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import sys
import time
import zlib
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


_EVENT_HEADERS = {
    ":message-type": "event",
    ":event-type": "chunk",
    ":content-type": "application/json",
}


def event_json(event: dict[str, Any]) -> bytes:
    """The inner Nova event JSON (compact, as trio_bidi's encoder writes it)."""
    return json.dumps(event, separators=(",", ":")).encode()


def wire_message(event: dict[str, Any]) -> bytes:
    """One output event-stream message carrying ``event`` (string headers only)."""
    payload = json.dumps({"bytes": base64.b64encode(event_json(event)).decode()}).encode()
    headers = b"".join(
        bytes((len(name),))
        + name.encode()
        + b"\x07"
        + struct.pack(">H", len(value))
        + value.encode()
        for name, value in _EVENT_HEADERS.items()
    )
    total = 16 + len(headers) + len(payload)
    prelude = struct.pack(">II", total, len(headers))
    head = prelude + struct.pack(">I", zlib.crc32(prelude))
    body = head + headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def trio_bidi_protocol() -> Any:
    from trio_bidi.models.nova_sonic._config import resolve_provider_config
    from trio_bidi.models.nova_sonic._protocol import NovaSonicProtocol

    return NovaSonicProtocol("amazon.nova-2-sonic-v1:0", resolve_provider_config(None))


def trio_bidi_wire() -> tuple[Callable[[], int], int]:
    from trio_bidi.models.nova_sonic._eventstream import EventStreamDecoder
    from trio_bidi.models.nova_sonic._wire import encode_output_event

    events = nova_events()
    chunks = [wire_message(event) for event in events]
    if chunks != [encode_output_event(event) for event in events]:
        raise AssertionError("the bench's event-stream bytes differ from trio_bidi's encoder")
    decoder = EventStreamDecoder()
    receive = trio_bidi_protocol().receive_message

    def one_pass() -> int:
        for chunk in chunks:
            decoder.feed(chunk)
            for message in decoder:
                receive(message)
        return len(chunks)

    return one_pass, len(chunks)


def trio_bidi_json() -> tuple[Callable[[], int], int]:
    from trio_bidi.models.nova_sonic._wire import _load_json as loads

    raws = [event_json(event) for event in nova_events()]
    receive = trio_bidi_protocol().receive_event

    def one_pass() -> int:
        for raw in raws:
            receive(loads(raw))
        return len(raws)

    return one_pass, len(raws)


def strands_wire() -> tuple[Callable[[], int], int]:
    from aws_sdk_bedrock_runtime.config import Config
    from aws_sdk_bedrock_runtime.models import (
        _InvokeModelWithBidirectionalStreamOutputDeserializer,
    )
    from smithy_aws_event_stream.aio import AWSEventReceiver
    from smithy_core.aio.types import AsyncBytesReader
    from strands.experimental.bidi.models.nova_sonic import BidiNovaSonicModel

    chunks = [wire_message(event) for event in nova_events()]
    delivered = [0]

    async def body() -> Any:  # the HTTP/2 response body: one chunk per message, forever
        while True:
            for chunk in chunks:
                delivered[0] += 1
                yield chunk

    receiver = AWSEventReceiver(
        payload_codec=Config().protocol.payload_codec,
        source=AsyncBytesReader(body()),
        deserializer=_InvokeModelWithBidirectionalStreamOutputDeserializer().deserialize,
    )

    class Stream:
        async def await_output(self) -> tuple[None, Any]:
            return None, receiver

    model = BidiNovaSonicModel()
    model._stream = Stream()
    model._connection_id = "bench"
    events = model.receive()

    def next_event() -> Any:
        try:
            events.__anext__().send(None)
        except StopIteration as done:
            return done.value
        raise AssertionError("Strands' receive() suspended; the bench cannot drive it")

    next_event()  # BidiConnectionStartEvent

    def one_pass() -> int:
        start = delivered[0]
        while delivered[0] - start < len(chunks):
            next_event()
        return delivered[0] - start

    return one_pass, len(chunks)


def strands_json() -> tuple[Callable[[], int], int]:
    from strands.experimental.bidi.models.nova_sonic import BidiNovaSonicModel

    convert = BidiNovaSonicModel()._convert_nova_event
    loads = json.loads
    raws = [event_json(event) for event in nova_events()]

    def one_pass() -> int:
        for raw in raws:
            convert(loads(raw.decode("utf-8"))["event"])
        return len(raws)

    return one_pass, len(raws)


SIDES: dict[str, dict[str, Callable[[], tuple[Callable[[], int], int]]]] = {
    "trio_bidi": {"wire": trio_bidi_wire, "json": trio_bidi_json},
    "strands": {"wire": strands_wire, "json": strands_json},
}


def measure(setup: Callable[[], tuple[Callable[[], int], int]], seconds: float) -> dict[str, Any]:
    one_pass, _ = setup()
    one_pass()  # warm up (and fail early if a message is refused)
    count = 0
    t0 = time.process_time()
    while time.process_time() - t0 < seconds:
        count += one_pass()
    cpu = time.process_time() - t0
    return {"n": count, "cpu_s": cpu, "rate": count / cpu}


def run(side: str, seconds: float = 1.0) -> dict[str, Any]:
    wire = measure(SIDES[side]["wire"], seconds)
    plain = measure(SIDES[side]["json"], seconds)
    return {**wire, "rate_json": plain["rate"], "n_json": plain["n"], "cpu_s_json": plain["cpu_s"]}


if __name__ == "__main__":
    common.emit(run(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 1.0))
