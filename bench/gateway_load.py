"""Load on the browser gateway: N WebSocket clients talking in real time to 2 workers.

Loopback only and bounded in time. It starts ``trio-bidi serve --emulator --workers 2
--session-dir <tmp>`` and N clients that each stream 20 ms audio frames in real time (one
second of speech, then two of silence, over and over), so the emulator's voice activity
detection makes a user turn every three seconds and the reply's audio streams back. Half
way through it kills one worker (SIGKILL): its clients reconnect with their session ids,
land on the surviving (or the replacement) worker, and continue from the session store.

Reported: sessions held at once, turns, the stack's turn latency (the emulator answers at
once, so the time from the end of the emulator's 500 ms silence window to the first reply
audio frame is all gateway + agent + provider, p50/p99), errors, reconnections, and
messages lost by the kill (history the client saw that the store did not give back).

It also measures, per 20 ms frame, what the server side pays for audio as binary frames
versus base64 in JSON (``--codec-only`` for just that)::

    python bench/gateway_load.py --clients 40 --seconds 30
    python bench/gateway_load.py --codec-only
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trio_bidi._websocket import (  # noqa: E402
    WebSocket,
    WebSocketClosed,
    WebSocketHandshakeError,
    open_websocket,
)
from trio_bidi.events import BidiAudioStreamEvent  # noqa: E402
from trio_bidi.server._wire import (  # noqa: E402
    AudioFormat,
    decode_client_message,
    encode_audio_frame,
    encode_server_event,
)

RATE = 24000
FRAME_MS = 20
FRAME_SAMPLES = RATE * FRAME_MS // 1000
SPEECH_FRAMES = 50  # 1 s of speech
SILENCE_FRAMES = 100  # 2 s of silence
EMULATOR_SILENCE_MS = 500  # the emulator's end-of-turn window (server VAD default)
STDERR = None if os.environ.get("GATEWAY_LOAD_SERVER_LOG") else subprocess.DEVNULL


# ---------------------------------------------------------------------- codec micro-benchmark


def codec_costs(repeat: int = 20000) -> dict[str, float]:
    """Server-side microseconds per 20 ms frame, each direction, binary vs base64 JSON."""
    t = np.arange(FRAME_SAMPLES) / RATE
    pcm = (3000 * np.sin(2 * math.pi * 220 * t)).astype("<i2").tobytes()
    b64 = base64.b64encode(pcm).decode()
    fmt = AudioFormat(RATE, 1)
    frame_in = encode_audio_frame(pcm, RATE, 1)
    json_in = json.dumps(
        {
            "type": "bidi_audio_input",
            "audio": b64,
            "format": "pcm",
            "sample_rate": RATE,
            "channels": 1,
        }
    )
    event_out = BidiAudioStreamEvent(b64, "pcm", RATE, 1)
    cases = {
        "in_binary_us": lambda: decode_client_message(frame_in, audio=fmt, max_bytes=1 << 20),
        "in_json_base64_us": lambda: decode_client_message(json_in, audio=fmt, max_bytes=1 << 20),
        "out_binary_us": lambda: encode_server_event(event_out, binary_audio=True),
        "out_json_base64_us": lambda: encode_server_event(event_out, binary_audio=False),
    }
    costs = {}
    for name, case in cases.items():
        best = min(timeit.repeat(case, number=repeat, repeat=5))
        costs[name] = round(best / repeat * 1e6, 2)
    costs["in_binary_bytes"] = len(frame_in)
    costs["in_json_bytes"] = len(json_in)
    costs["out_json_bytes"] = len(encode_server_event(event_out, binary_audio=False))
    return costs


# ---------------------------------------------------------------------- the server process


@attrs.define
class Server:
    process: trio.Process
    lines: list[str] = attrs.Factory(list)
    changed: trio.Event = attrs.Factory(trio.Event)
    ended: bool = False

    async def read(self) -> None:
        assert self.process.stdout is not None
        buffer = b""
        async for chunk in self.process.stdout:
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            self.lines.extend(line.decode(errors="replace") for line in complete)
            self.changed.set()
            self.changed = trio.Event()
        self.ended = True
        self.changed.set()

    async def wait_line(self, pattern: str) -> re.Match[str]:
        while True:
            for line in self.lines:
                found = re.search(pattern, line)
                if found:
                    return found
            if self.ended:
                raise RuntimeError(
                    "the server ended before printing what was awaited "
                    "(GATEWAY_LOAD_SERVER_LOG=1 shows its errors)"
                )
            await self.changed.wait()

    def worker_pids(self) -> list[int]:
        return [
            int(p) for line in self.lines for p in re.findall(r"worker pid=(\d+) started", line)
        ]


@asynccontextmanager
async def serve(workers: int, session_dir: str | None, max_sessions: int) -> AsyncIterator[Server]:
    """Run ``trio-bidi serve --emulator`` with ``workers`` workers; stop it at the end."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "trio_bidi.cli._serve",
        "--emulator",
        "--port",
        "0",
        "--workers",
        str(workers),
        "--max-sessions",
        str(max_sessions),
        "--no-tools",
        *(["--session-dir", session_dir] if session_dir else []),
    ]
    process = await trio.lowlevel.open_process(
        command, stdout=subprocess.PIPE, stderr=STDERR, env=env, cwd=ROOT
    )
    server = Server(process)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.read)
            try:
                yield server
            finally:
                with trio.CancelScope(shield=True):
                    if process.returncode is None:
                        process.send_signal(signal.SIGINT)
                    with trio.move_on_after(20):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
                        await process.wait()
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            assert process.stdout is not None
            await process.stdout.aclose()


# ---------------------------------------------------------------------- clients


@attrs.define
class Totals:
    connected: int = 0
    max_connected: int = 0
    connections: int = 0
    reconnections: int = 0
    restored_sessions: int = 0
    lost_messages: int = 0
    turns: int = 0
    latencies_ms: list[float] = attrs.Factory(list)
    audio_frames_in: int = 0
    audio_frames_out: int = 0
    error_events: list[str] = attrs.Factory(list)
    failures: list[str] = attrs.Factory(list)
    disconnects: int = 0


def speech_frame(index: int) -> bytes:
    t = (np.arange(FRAME_SAMPLES) + index * FRAME_SAMPLES) / RATE
    pcm = 4000 * np.sin(2 * math.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * math.pi * 3 * t))
    return encode_audio_frame(pcm.astype("<i2").tobytes(), RATE, 1)


SILENT_FRAME = encode_audio_frame(bytes(FRAME_SAMPLES * 2), RATE, 1)


@attrs.define
class Conversation:
    """One client's view of its conversation across reconnections."""

    session_id: str
    final_transcripts: int = 0
    worker: int | None = None  # the worker process serving it now
    turn_end: float | None = None  # time.monotonic() when the emulator's turn window closed


async def talk(ws: WebSocket, conv: Conversation, totals: Totals, stop_at: float) -> None:
    async def send() -> None:
        start = trio.current_time()
        frame = 0
        while trio.current_time() < stop_at:
            in_cycle = frame % (SPEECH_FRAMES + SILENCE_FRAMES)
            if in_cycle < SPEECH_FRAMES:
                await ws.send_bytes(speech_frame(frame))
            else:
                if in_cycle == SPEECH_FRAMES + EMULATOR_SILENCE_MS // FRAME_MS - 1:
                    conv.turn_end = time.monotonic()  # this frame closes the turn window
                await ws.send_bytes(SILENT_FRAME)
            totals.audio_frames_out += 1
            frame += 1
            await trio.sleep_until(start + frame * FRAME_MS / 1000)

    async def receive() -> None:
        while True:
            message = await ws.receive()
            if isinstance(message, bytes):
                totals.audio_frames_in += 1
                if conv.turn_end is not None and message[:1] == b"A":
                    totals.latencies_ms.append((time.monotonic() - conv.turn_end) * 1000)
                    totals.turns += 1
                    conv.turn_end = None
                continue
            event = json.loads(message)
            if event["type"] == "bidi_transcript_stream" and event["is_final"]:
                conv.final_transcripts += 1
            elif event["type"] == "bidi_error":
                totals.error_events.append(f"{event['code']}: {event['message']}")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive)
        await send()
        nursery.cancel_scope.cancel()


async def client(url: str, conv: Conversation, totals: Totals, stop_at: float) -> None:
    first = True
    while trio.current_time() < stop_at - 1:
        dropped = False
        try:
            async with open_websocket(f"{url}?session={conv.session_id}") as ws:
                hello = json.loads(await ws.receive())
                if hello.get("type") != "gateway_session":
                    totals.failures.append(f"{conv.session_id}: first message {hello.get('type')}")
                    return
                totals.connections += 1
                if not first:
                    totals.reconnections += 1
                    restored = int(hello["restored_messages"])
                    if restored:
                        totals.restored_sessions += 1
                    totals.lost_messages += max(0, conv.final_transcripts - restored)
                first = False
                conv.worker = hello.get("worker")
                totals.connected += 1
                totals.max_connected = max(totals.max_connected, totals.connected)
                try:
                    await talk(ws, conv, totals, stop_at)
                finally:
                    totals.connected -= 1
        except* (WebSocketClosed, WebSocketHandshakeError, trio.BrokenResourceError, OSError):
            dropped = True
        if not dropped:
            return
        totals.disconnects += 1
        conv.turn_end = None
        await trio.sleep(0.2)  # then reconnect: the session continues from the store
    if first:
        totals.failures.append(f"{conv.session_id}: never connected")


async def run_load(
    clients: int, seconds: float, workers: int = 2, kill: bool = True, store: bool = True
) -> dict[str, Any]:
    """Run the load; return the report (see the module docstring).

    ``store=False`` serves without a session store (then a reconnection starts over).
    """
    totals = Totals()
    killed: list[int] = []
    sessions_on_victim = 0
    with tempfile.TemporaryDirectory(prefix="gateway-load-") as session_dir:
        store_dir = session_dir if store else None
        async with serve(workers, store_dir, max_sessions=clients + 10) as server:
            base = (await server.wait_line(r"Serving on (http://\S+)/")).group(1)
            url = base.replace("http://", "ws://") + "/ws"
            stop_at = trio.current_time() + seconds
            conversations = [Conversation(f"load-{i:05d}-session") for i in range(clients)]
            async with trio.open_nursery() as nursery:
                for conv in conversations:
                    nursery.start_soon(client, url, conv, totals, stop_at)
                    await trio.sleep(0.01)  # a ramp, not a thundering herd
                if kill and workers > 1:
                    await trio.sleep(seconds / 2)
                    # The worker serving the most conversations.
                    busy = [c.worker for c in conversations if c.worker is not None]
                    victim = max(set(busy), key=busy.count) if busy else server.worker_pids()[0]
                    sessions_on_victim = busy.count(victim)
                    os.kill(victim, signal.SIGKILL)
                    killed.append(victim)
    latencies = sorted(totals.latencies_ms)

    def pct(p: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1)

    return {
        "clients": clients,
        "seconds": seconds,
        "workers": workers,
        "killed_worker": killed[0] if killed else None,
        "sessions_on_killed_worker": sessions_on_victim,
        "sessions_held_max": totals.max_connected,
        "connections": totals.connections,
        "reconnections": totals.reconnections,
        "restored_sessions": totals.restored_sessions,
        "lost_messages": totals.lost_messages,
        "disconnects": totals.disconnects,
        "turns": totals.turns,
        "turn_latency_p50_ms": pct(0.50),
        "turn_latency_p99_ms": pct(0.99),
        "audio_frames_sent": totals.audio_frames_out,
        "audio_frames_received": totals.audio_frames_in,
        "error_events": len(totals.error_events),
        "error_samples": totals.error_events[:5],
        "failures": totals.failures[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-kill", action="store_true", help="do not kill a worker")
    parser.add_argument(
        "--no-store", action="store_true", help="no session store (reconnections start over)"
    )
    parser.add_argument("--codec-only", action="store_true", help="only the per-frame costs")
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args()
    if args.clients > 500 or args.seconds > 300:
        parser.error("bounded: at most 500 clients and 300 seconds")
    report: dict[str, Any] = {"codec_per_20ms_frame": codec_costs()}
    if not args.codec_only:
        report["load"] = trio.run(
            run_load, args.clients, args.seconds, args.workers, not args.no_kill, not args.no_store
        )
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
