"""The Strands side of the benchmark: one scenario per process, asyncio, Strands 1.40.

``python bench/strands_driver.py SCENARIO URL [key=value ...]`` runs one scenario of
``bench/scenarios.md``-style names (``output``, ``input``, ``tool``, ``barge``, ``restart``,
``memory``, ``scale``) against ``bench/loadserver.py`` at ``URL`` (``ws://127.0.0.1:PORT``)
and prints one JSON line with the result. It runs in the Strands environment (it imports
only the standard library, Strands and ``bench/common.py``).

Strands builds its endpoint as ``OPENAI_REALTIME_URL + "?model=..."``, a module constant:
the driver points that constant at the load server, with the scenario parameters as path
segments.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common
from strands import tool
from strands.experimental.bidi import BidiAgent, BidiAudioInputEvent, BidiTextInputEvent
from strands.experimental.bidi.models import openai_realtime

NO_TURN_DETECTION: dict[str, Any] = {}


@tool
def bench_echo(value: int) -> int:
    """Return the value it was given.

    Args:
        value: Any integer.
    """
    return value


def finish(result: dict[str, Any]) -> None:
    """Print the result and end the process at once.

    Strands 1.40's ``agent.stop()`` can hang when its event queue is full at that moment
    (the model task's cancellation is lost in ``asyncio.wait_for``), so the driver does not
    wait for it: the result is already measured and the server copes with the drop.
    """
    common.emit(result)
    os._exit(0)


def make_agent(base: str, timeout_s: int | None = None, **params: Any) -> BidiAgent:
    """A Strands BidiAgent whose OpenAI model talks to the load server."""
    openai_realtime.OPENAI_REALTIME_URL = common.bench_url(base, **params)
    client_config: dict[str, Any] = {"api_key": "bench-key"}
    if timeout_s is not None:
        client_config["timeout_s"] = timeout_s
    model = openai_realtime.BidiOpenAIRealtimeModel(
        model_id="gpt-realtime", client_config=client_config
    )
    return BidiAgent(model=model, tools=[bench_echo])


def audio_event(b64: str) -> BidiAudioInputEvent:
    return BidiAudioInputEvent(audio=b64, format="pcm", sample_rate=24000, channels=1)


async def wait_report(agent: BidiAgent) -> dict[str, Any]:
    async for event in agent.receive():
        if event.get("type") == "bidi_transcript_stream":
            report = common.report_of(event["text"])
            if report is not None:
                return report
    raise RuntimeError("the agent stopped before the report")


async def output(base: str, n: int, batch: int) -> dict[str, Any]:
    meter = common.CpuMeter()
    count = 0
    async with make_agent(base, scenario="flood", n=n, batch=batch) as agent:
        async for event in agent.receive():
            if event.get("type") == "bidi_audio_stream":
                if count == 0:
                    meter.start()
                count += 1
                if count == n:
                    meter.stop()
                    finish(
                        {
                            "n": n - 1,
                            "cpu_s": meter.cpu,
                            "wall_s": meter.wall,
                            "rate": (n - 1) / meter.cpu,
                        }
                    )
    raise RuntimeError("the agent stopped before the flood ended")


async def input_(base: str, n: int) -> dict[str, Any]:
    meter = common.CpuMeter()
    frame = common.SILENCE_B64
    async with make_agent(base, scenario="sink", n=n) as agent:
        meter.start()
        for _ in range(n):
            await agent.send(audio_event(frame))
        report = await wait_report(agent)
        meter.stop()
        assert report["appends"] == n, report
        finish({"n": n, "cpu_s": meter.cpu, "wall_s": meter.wall, "rate": n / meter.cpu})
    raise AssertionError("unreachable")


async def tool_rtt(base: str, n: int) -> dict[str, Any]:
    async with make_agent(base, scenario="tool", n=n) as agent:
        report = await wait_report(agent)
        finish({"n": len(report["rtt_ms"]), "samples_ms": report["rtt_ms"]})
    raise AssertionError("unreachable")


async def barge(base: str, n: int) -> dict[str, Any]:
    cleared: list[int] = []
    playback: list[str] = []  # the output's buffer: what the device has yet to play
    async with make_agent(base, scenario="barge", n=n) as agent:
        async for event in agent.receive():
            kind = event.get("type")
            if kind == "bidi_audio_stream":
                playback.append(event["audio"])
            elif kind == "bidi_interruption":
                playback.clear()
                cleared.append(time.monotonic_ns())
            elif kind == "bidi_transcript_stream":
                report = common.report_of(event["text"])
                if report is not None:
                    written = report["speech_started_ns"]
                    samples = [(c - w) / 1e6 for w, c in zip(written, cleared, strict=False)]
                    finish(
                        {"n": len(samples), "samples_ms": samples, "interruptions": len(cleared)}
                    )
    raise RuntimeError("the agent stopped before the report")


async def restart(base: str, timeout_s: float, after_s: float) -> dict[str, Any]:
    run = uuid.uuid4().hex
    sent = 0
    gaps: list[float] = []
    restart_at: float | None = None
    last_audio = time.perf_counter()
    stop_sending = asyncio.Event()

    async def stream_input(agent: BidiAgent) -> None:
        nonlocal sent
        start = time.perf_counter()
        while not stop_sending.is_set():
            await agent.send(audio_event(common.seq_frame_b64(sent)))
            sent += 1
            delay = start + sent * common.FRAME_S - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)

    async with make_agent(base, timeout_s=int(timeout_s), scenario="stream", run=run) as agent:
        sender = asyncio.create_task(stream_input(agent))
        deadline: float | None = None
        async for event in agent.receive():
            kind = event.get("type")
            now = time.perf_counter()
            if kind == "bidi_connection_restart":
                restart_at = last_audio
            elif kind == "bidi_audio_stream":
                if restart_at is not None:
                    # Old connection's last audio -> new connection's first: covers the
                    # expiry (within one 20 ms frame of the last audio) and the reconnect.
                    gaps.append((now - restart_at) * 1000)
                    restart_at = None
                    deadline = now + after_s
                last_audio = now
            if deadline is not None and now >= deadline:
                break
        stop_sending.set()
        await sender
        await agent.send(BidiTextInputEvent(text="bench-report", role="user"))
        report = await wait_report(agent)
        finish(
            {
                "gaps_ms": gaps,
                "sent": sent,
                "received": report["received"],
                "lost": sent - report["received"],
            }
        )
    raise AssertionError("unreachable")


async def memory(base: str, sessions: int) -> dict[str, Any]:
    async def open_idle(stack: list[Any]) -> None:
        agent = make_agent(base, scenario="idle")
        await agent.start()
        stack.append(agent)
        async for event in agent.receive():
            if event.get("type") == "bidi_connection_start":
                break

    agents: list[Any] = []
    await open_idle(agents)
    await asyncio.sleep(0.3)
    one = common.rss_mb()
    for _ in range(sessions - 1):
        await open_idle(agents)
    await asyncio.sleep(0.3)
    many = common.rss_mb()
    finish({"rss_one_mb": one, "rss_many_mb": many, "sessions": sessions})
    raise AssertionError("unreachable")


async def scale_step(
    base: str, sessions: int, warmup_s: float, measure_s: float, pacing: str = "timer"
) -> dict[str, Any]:
    """N real-time sessions; input paced by a timer per session or by the server's frames."""
    latencies: list[float] = []
    by_timer = pacing == "timer"
    measuring = False
    done = asyncio.Event()

    async def one(index: int) -> None:
        agent = make_agent(base, scenario="stream", run=f"scale{index}")
        await agent.start()
        try:

            async def feed() -> None:
                start = time.perf_counter()
                k = 0
                while not done.is_set():
                    await agent.send(audio_event(common.SILENCE_B64))
                    k += 1
                    delay = start + k * common.FRAME_S - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)

            feeder = asyncio.create_task(feed()) if by_timer else None
            async for event in agent.receive():
                if event.get("type") == "bidi_audio_stream":
                    if measuring:
                        stamp = common.stamp_of(event["audio"])
                        latencies.append((time.monotonic_ns() - stamp) / 1e6)
                    if done.is_set():
                        break
                    if not by_timer:
                        await agent.send(audio_event(common.SILENCE_B64))
            if feeder is not None:
                await feeder
        finally:
            await agent.stop()

    tasks = [asyncio.create_task(one(i)) for i in range(sessions)]
    await asyncio.sleep(warmup_s)
    meter = common.CpuMeter()
    measuring = True
    meter.start()
    await asyncio.sleep(measure_s)
    meter.stop()
    measuring = False
    finish(
        {
            "sessions": sessions,
            "opened": sum(1 for task in tasks if not task.done()),
            "p99_ms": common.percentile(latencies, 99),
            "p50_ms": common.percentile(latencies, 50),
            "cpu_load": meter.cpu / meter.wall,
            "samples": len(latencies),
        }
    )
    raise AssertionError("unreachable")


SCENARIOS = {
    "output": lambda base, a: output(base, int(a.get("n", "20000")), int(a.get("batch", "64"))),
    "input": lambda base, a: input_(base, int(a.get("n", "20000"))),
    "tool": lambda base, a: tool_rtt(base, int(a.get("n", "200"))),
    "barge": lambda base, a: barge(base, int(a.get("n", "30"))),
    "restart": lambda base, a: restart(
        base, float(a.get("timeout_s", "2")), float(a.get("after_s", "1"))
    ),
    "memory": lambda base, a: memory(base, int(a.get("sessions", "100"))),
    "scale": lambda base, a: scale_step(
        base,
        int(a["sessions"]),
        float(a.get("warmup_s", "1.5")),
        float(a.get("measure_s", "3")),
        a.get("pacing", "timer"),
    ),
}


def main() -> None:
    """Run the scenario named on the command line (it ends the process with its result)."""
    scenario, base = sys.argv[1], sys.argv[2]
    args = dict(arg.split("=", 1) for arg in sys.argv[3:])
    asyncio.run(SCENARIOS[scenario](base, args))


if __name__ == "__main__":
    main()
