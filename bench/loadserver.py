"""A loopback server that speaks the OpenAI Realtime (GA) WebSocket protocol, for load.

It runs in its own process, shared by the trio_bidi and the Strands drivers, so neither
measured process pays for the server. Every connection picks a scenario with query
parameters on the URL (``/v1/realtime?model=...&scenario=flood&n=20000``)::

    flood    n batch after session.update: one response with n output_audio.delta events
                     (20 ms of 24 kHz PCM16 each), written ``batch`` messages per write
                     (default 64; ``batch=1``: one message per write, as a real-time
                     service sends them).
    sink     n       counts input_audio_buffer.append; at n, answers with a transcript
                     delta ``bench:{...}``.
    tool     n       n function-call round trips; the server times call written ->
                     function_call_output read, and reports the list at the end.
    barge    n       n times: a burst of audio, then input_audio_buffer.speech_started;
                     reports the monotonic write times of each speech_started.
    stream   run     real-time both ways: 50 audio deltas/s out, each carrying the server's
                     monotonic_ns write time in its first 8 bytes; counts the input frames'
                     sequence numbers (first 4 bytes) per ``run`` across connections.
                     A text input ``bench-report`` asks for the report.
    idle             session.created / session.updated only.

Reports are sent as ``response.output_audio_transcript.delta`` whose delta is
``bench:<json>`` so that both clients surface them as transcript events.

Parameters may also be given as path segments (``/bench/scenario=flood/n=20000/v1/realtime``)
for clients whose URL we can only replace up to ``?model=``.

Usage: ``python bench/loadserver.py [--cert PEM]`` prints ``PORT <n>`` on stdout once
listening and serves until killed. With ``--cert`` (a PEM file holding the server's key
and certificate chain, as ``bench/run.py`` makes from a generated test CA) it serves
``wss://``.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import ssl
import struct
import sys
import time
from collections import defaultdict
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trio

from trio_bidi._websocket import WebSocket, WebSocketClosed, serve_websocket

FRAME_MS = 20
RATE = 24000
FRAME_BYTES = RATE * FRAME_MS // 1000 * 2  # 960 bytes of PCM16 mono
SILENCE_B64 = base64.b64encode(bytes(FRAME_BYTES)).decode()
BATCH = 64

_ids = itertools.count(1)

# Input frames seen per stream run (across reconnections): run -> set of sequence numbers.
RUNS: dict[str, set[int]] = defaultdict(set)


def _eid() -> str:
    return f"event_{next(_ids)}"


def session_object(session: dict[str, Any] | None = None) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "realtime",
        "object": "realtime.session",
        "id": "sess_bench",
        "model": "gpt-realtime",
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "audio": {
            "input": {"format": {"type": "audio/pcm", "rate": RATE}, "turn_detection": None},
            "output": {"format": {"type": "audio/pcm", "rate": RATE}, "voice": "alloy"},
        },
    }
    if session:
        base.update(session)
    return base


def response_created(rid: str) -> str:
    return json.dumps(
        {
            "type": "response.created",
            "event_id": _eid(),
            "response": {
                "id": rid,
                "object": "realtime.response",
                "status": "in_progress",
                "status_details": None,
                "output": [],
                "usage": None,
            },
        }
    )


def response_done(rid: str, output: list[dict[str, Any]]) -> str:
    return json.dumps(
        {
            "type": "response.done",
            "event_id": _eid(),
            "response": {
                "id": rid,
                "object": "realtime.response",
                "status": "completed",
                "status_details": None,
                "output": output,
                "usage": {
                    "total_tokens": 30,
                    "input_tokens": 10,
                    "output_tokens": 20,
                    "input_token_details": {
                        "text_tokens": 10,
                        "audio_tokens": 0,
                        "image_tokens": 0,
                        "cached_tokens": 0,
                    },
                    "output_token_details": {"text_tokens": 0, "audio_tokens": 20},
                },
            },
        }
    )


def audio_item(item_id: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_audio", "transcript": ""}],
    }


def audio_delta(rid: str, item_id: str, audio_b64: str) -> str:
    return (
        f'{{"type":"response.output_audio.delta","event_id":"{_eid()}","response_id":"{rid}",'
        f'"item_id":"{item_id}","output_index":0,"content_index":0,"delta":"{audio_b64}"}}'
    )


def audio_response_head(rid: str, item_id: str) -> list[str]:
    return [
        response_created(rid),
        json.dumps(
            {
                "type": "response.output_item.added",
                "event_id": _eid(),
                "response_id": rid,
                "output_index": 0,
                "item": audio_item(item_id, "in_progress"),
            }
        ),
        json.dumps(
            {
                "type": "response.content_part.added",
                "event_id": _eid(),
                "response_id": rid,
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "part": {"type": "audio", "transcript": ""},
            }
        ),
    ]


def audio_response_tail(rid: str, item_id: str) -> list[str]:
    return [
        json.dumps(
            {
                "type": "response.output_audio.done",
                "event_id": _eid(),
                "response_id": rid,
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
            }
        ),
        json.dumps(
            {
                "type": "response.content_part.done",
                "event_id": _eid(),
                "response_id": rid,
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "part": {"type": "audio", "transcript": ""},
            }
        ),
        json.dumps(
            {
                "type": "response.output_item.done",
                "event_id": _eid(),
                "response_id": rid,
                "output_index": 0,
                "item": audio_item(item_id, "completed"),
            }
        ),
        response_done(rid, [audio_item(item_id, "completed")]),
    ]


def report(payload: dict[str, Any]) -> str:
    return json.dumps(
        {
            "type": "response.output_audio_transcript.delta",
            "event_id": _eid(),
            "response_id": "resp_report",
            "item_id": "item_report",
            "output_index": 0,
            "content_index": 0,
            "delta": "bench:" + json.dumps(payload, separators=(",", ":")),
        }
    )


def function_call(rid: str, item_id: str, call_id: str) -> list[str]:
    args = '{"value": 42}'
    item = {
        "id": item_id,
        "object": "realtime.item",
        "type": "function_call",
        "status": "completed",
        "name": "bench_echo",
        "call_id": call_id,
        "arguments": args,
    }
    return [
        response_created(rid),
        json.dumps(
            {
                "type": "response.output_item.added",
                "event_id": _eid(),
                "response_id": rid,
                "output_index": 0,
                "item": {**item, "status": "in_progress", "arguments": ""},
            }
        ),
        json.dumps(
            {
                "type": "response.function_call_arguments.delta",
                "event_id": _eid(),
                "response_id": rid,
                "item_id": item_id,
                "output_index": 0,
                "call_id": call_id,
                "delta": args,
            }
        ),
        json.dumps(
            {
                "type": "response.function_call_arguments.done",
                "event_id": _eid(),
                "response_id": rid,
                "item_id": item_id,
                "output_index": 0,
                "call_id": call_id,
                "name": "bench_echo",
                "arguments": args,
            }
        ),
        json.dumps(
            {
                "type": "response.output_item.done",
                "event_id": _eid(),
                "response_id": rid,
                "output_index": 0,
                "item": item,
            }
        ),
        response_done(rid, [item]),
    ]


class Session:
    """One client connection and its scenario."""

    def __init__(self, ws: WebSocket, params: dict[str, str]) -> None:
        self.ws = ws
        self.params = params
        self.scenario = params.get("scenario", "idle")
        self.n = int(params.get("n", "0"))
        self.batch = max(1, int(params.get("batch", str(BATCH))))
        self.configured = trio.Event()
        self.appends = 0
        self.sink_done = False
        self.call_outputs: dict[str, int] = {}
        self.output_seen = trio.Event()
        self.report_asked = trio.Event()

    async def send(self, *texts: str) -> None:
        await self.ws.send_texts(texts)

    async def run(self) -> None:
        await self.send(
            json.dumps({"type": "session.created", "event_id": _eid(), "session": session_object()})
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.script, nursery.cancel_scope)
            await self.read_loop()
            nursery.cancel_scope.cancel()

    async def read_loop(self) -> None:
        ws = self.ws
        sink = self.scenario == "sink"
        stream = self.scenario == "stream"
        run_set = RUNS[self.params.get("run", "")] if stream else None
        while True:
            try:
                message = await ws.receive()
            except WebSocketClosed:
                return
            if isinstance(message, str) and "input_audio_buffer.append" in message[:64]:
                # The hot path (thousands a second): no JSON parse, only the sequence
                # number in the audio's first 4 bytes when a stream run counts frames.
                self.appends += 1
                if run_set is not None:
                    start = message.index('"', message.index(":", message.index('"audio"') + 7))
                    head = base64.b64decode(message[start + 1 : start + 9])
                    run_set.add(struct.unpack_from("<I", head)[0])
                elif sink and self.appends == self.n:
                    await self.send(report({"appends": self.appends}))
                continue
            event = json.loads(message)
            kind = event.get("type")
            if kind == "input_audio_buffer.append":
                self.appends += 1
                if run_set is not None:
                    head = base64.b64decode(event["audio"][:8])
                    run_set.add(struct.unpack_from("<I", head)[0])
                elif sink and self.appends == self.n:
                    await self.send(report({"appends": self.appends}))
            elif kind == "session.update":
                session = event.get("session") or {}
                await self.send(
                    json.dumps(
                        {
                            "type": "session.updated",
                            "event_id": _eid(),
                            "session": session_object(session),
                        }
                    )
                )
                self.configured.set()
            elif kind == "conversation.item.create":
                item = event.get("item") or {}
                if item.get("type") == "function_call_output":
                    self.call_outputs[str(item.get("call_id"))] = time.perf_counter_ns()
                    self.output_seen.set()
                elif item.get("type") == "message":
                    texts = [c.get("text", "") for c in item.get("content") or []]
                    if "bench-report" in texts:
                        self.report_asked.set()

    async def script(self, cancel_scope: trio.CancelScope) -> None:
        await self.configured.wait()
        if self.scenario == "flood":
            await self.flood()
        elif self.scenario == "tool":
            await self.tools()
        elif self.scenario == "barge":
            await self.barge()
        elif self.scenario == "stream":
            await self.stream()

    async def flood(self) -> None:
        rid, item_id = "resp_flood", "item_flood"
        await self.send(*audio_response_head(rid, item_id))
        left = self.n
        if self.batch == 1:  # one message per write (and per TLS record)
            delta = audio_delta(rid, item_id, SILENCE_B64)
            for _ in range(left):
                await self.ws.send_text(delta)
            left = 0
        while left > 0:
            count = min(self.batch, left)
            await self.send(*(audio_delta(rid, item_id, SILENCE_B64) for _ in range(count)))
            left -= count
        await self.send(*audio_response_tail(rid, item_id))

    async def tools(self) -> None:
        rtts: list[float] = []
        for i in range(self.n):
            call_id = f"call_bench_{i}"
            self.output_seen = trio.Event()
            await self.send(*function_call(f"resp_t{i}", f"item_t{i}", call_id))
            t0 = time.perf_counter_ns()
            while call_id not in self.call_outputs:
                await self.output_seen.wait()
                self.output_seen = trio.Event()
            rtts.append((self.call_outputs[call_id] - t0) / 1e6)
        await self.send(report({"rtt_ms": rtts}))

    async def barge(self) -> None:
        t0s: list[int] = []
        for i in range(self.n):
            rid, item_id = f"resp_b{i}", f"item_b{i}"
            await self.send(
                *audio_response_head(rid, item_id),
                *(audio_delta(rid, item_id, SILENCE_B64) for _ in range(10)),
            )
            await trio.sleep(0.03)
            event = json.dumps(
                {
                    "type": "input_audio_buffer.speech_started",
                    "event_id": _eid(),
                    "audio_start_ms": 1000,
                    "item_id": f"item_user_{i}",
                }
            )
            t0s.append(time.monotonic_ns())
            await self.send(event)
            await trio.sleep(0.05)
        await self.send(report({"speech_started_ns": t0s}))

    async def stream(self) -> None:
        rid, item_id = "resp_stream", "item_stream"
        run_set = RUNS[self.params.get("run", "")]
        await self.send(*audio_response_head(rid, item_id))
        frame = bytearray(FRAME_BYTES)
        start = trio.current_time()
        async with trio.open_nursery() as nursery:

            async def on_report() -> None:
                await self.report_asked.wait()
                await self.send(
                    report({"received": len(run_set), "max_seq": max(run_set, default=-1)})
                )

            nursery.start_soon(on_report)
            for k in itertools.count():
                await trio.sleep_until(start + k * FRAME_MS / 1000)
                struct.pack_into("<Q", frame, 0, time.monotonic_ns())
                await self.send(audio_delta(rid, item_id, base64.b64encode(frame).decode()))


async def handle(ws: WebSocket) -> None:
    assert ws.request is not None
    parts = urlsplit(ws.request.path)
    params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    # Parameters may also be path segments ``/bench/scenario=flood/n=20000/v1/realtime``,
    # for clients that only let us choose the part of the URL before ``?model=``.
    for segment in parts.path.split("/"):
        key, sep, value = segment.partition("=")
        if sep:
            params[key] = value
    # A client that goes away (or misbehaves) ends its session, never the server.
    try:
        await Session(ws, params).run()
    except* WebSocketClosed:
        pass
    except* Exception as group:
        print(f"loadserver: session {params} failed: {group!r}", file=sys.stderr, flush=True)


def server_context(argv: list[str]) -> ssl.SSLContext | None:
    """The TLS context asked for with ``--cert PEM`` (None: plain ``ws://``)."""
    if "--cert" not in argv:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(argv[argv.index("--cert") + 1])
    return context


async def main() -> None:
    context = server_context(sys.argv[1:])
    tls: dict[str, Any] = {} if context is None else {"ssl_context": context}
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            lambda task_status: serve_websocket(
                handle, host="127.0.0.1", task_status=task_status, **tls
            )
        )
        print(f"PORT {server.port}", flush=True)
        await trio.sleep(math.inf)


if __name__ == "__main__":
    try:
        trio.run(main)
    except KeyboardInterrupt:
        sys.exit(0)
