"""The trio_bidi side of the benchmark: one scenario per process.

``python bench/trio_driver.py SCENARIO URL [key=value ...]`` runs one scenario
(``output``, ``input``, ``tool``, ``barge``, ``restart``, ``memory``, ``scale``) with
``trio_bidi.BidiAgent`` and the OpenAI Realtime provider against ``bench/loadserver.py``
at ``URL`` and prints one JSON line with the result, exactly like
``bench/strands_driver.py`` does for Strands.
"""

from __future__ import annotations

import math
import os
import sys
import time
import uuid
from contextlib import AsyncExitStack
from typing import Any

import trio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common

from trio_bidi import BidiAgent, BidiAudioInputEvent, BidiTextInputEvent, tool
from trio_bidi.models.openai_realtime import BidiOpenAIRealtimeModel


@tool
def bench_echo(value: int) -> int:
    """Return the value it was given.

    Args:
        value: Any integer.
    """
    return value


def make_agent(base: str, timeout_s: float | None = None, **params: Any) -> BidiAgent:
    """A BidiAgent whose OpenAI model talks to the load server."""
    client_config: dict[str, Any] = {
        "api_key": "bench-key",
        "url": common.bench_url(base, **params),
    }
    if timeout_s is not None:
        client_config["timeout_s"] = timeout_s
    model = BidiOpenAIRealtimeModel(model_id="gpt-realtime", client_config=client_config)
    return BidiAgent(model=model, tools=[bench_echo], restart_margin_s=None)


def audio_event(b64: str) -> BidiAudioInputEvent:
    return BidiAudioInputEvent(audio=b64, format="pcm", sample_rate=24000, channels=1)


async def wait_report(agent: BidiAgent) -> dict[str, Any]:
    async for event in agent.receive():
        if event.type == "bidi_transcript_stream":
            report = common.report_of(event.text)  # type: ignore[union-attr]
            if report is not None:
                return report
    raise RuntimeError("the agent stopped before the report")


async def output(base: str, n: int, batch: int) -> dict[str, Any]:
    meter = common.CpuMeter()
    count = 0
    async with make_agent(base, scenario="flood", n=n, batch=batch) as agent:
        async for event in agent.receive():
            if event.type == "bidi_audio_stream":
                if count == 0:
                    meter.start()
                count += 1
                if count == n:
                    meter.stop()
                    break
    return {"n": n - 1, "cpu_s": meter.cpu, "wall_s": meter.wall, "rate": (n - 1) / meter.cpu}


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
    return {"n": n, "cpu_s": meter.cpu, "wall_s": meter.wall, "rate": n / meter.cpu}


async def tool_rtt(base: str, n: int) -> dict[str, Any]:
    async with make_agent(base, scenario="tool", n=n) as agent:
        report = await wait_report(agent)
    return {"n": len(report["rtt_ms"]), "samples_ms": report["rtt_ms"]}


async def barge(base: str, n: int) -> dict[str, Any]:
    cleared: list[int] = []
    playback: list[str] = []  # the output's buffer: what the device has yet to play
    report: dict[str, Any] | None = None
    async with make_agent(base, scenario="barge", n=n) as agent:
        async for event in agent.receive():
            kind = event.type
            if kind == "bidi_audio_stream":
                playback.append(event.audio)  # type: ignore[union-attr]
            elif kind == "bidi_interruption":
                playback.clear()
                cleared.append(time.monotonic_ns())
            elif kind == "bidi_transcript_stream":
                report = common.report_of(event.text)  # type: ignore[union-attr]
                if report is not None:
                    break
    assert report is not None
    written = report["speech_started_ns"]
    samples = [(c - w) / 1e6 for w, c in zip(written, cleared, strict=False)]
    return {"n": len(samples), "samples_ms": samples, "interruptions": len(cleared)}


async def restart(base: str, timeout_s: float, after_s: float) -> dict[str, Any]:
    run = uuid.uuid4().hex
    sent = 0
    gaps: list[float] = []
    restart_at: float | None = None
    last_audio = time.perf_counter()

    async def stream_input(agent: BidiAgent, cancel: trio.CancelScope) -> None:
        nonlocal sent
        with cancel:
            start = trio.current_time()
            while True:
                await agent.send(audio_event(common.seq_frame_b64(sent)))
                sent += 1
                await trio.sleep_until(start + sent * common.FRAME_S)

    async with (
        make_agent(base, timeout_s=timeout_s, scenario="stream", run=run) as agent,
        trio.open_nursery() as nursery,
    ):
        sending = trio.CancelScope()
        nursery.start_soon(stream_input, agent, sending)
        deadline: float | None = None
        async for event in agent.receive():
            kind = event.type
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
        sending.cancel()
        await agent.send(BidiTextInputEvent(text="bench-report", role="user"))
        report = await wait_report(agent)
    return {
        "gaps_ms": gaps,
        "sent": sent,
        "received": report["received"],
        "lost": sent - report["received"],
    }


async def memory(base: str, sessions: int) -> dict[str, Any]:
    async with AsyncExitStack() as stack:

        async def open_idle() -> None:
            agent = await stack.enter_async_context(make_agent(base, scenario="idle"))
            async for event in agent.receive():
                if event.type == "bidi_connection_start":
                    break

        await open_idle()
        await trio.sleep(0.3)
        one = common.rss_mb()
        for _ in range(sessions - 1):
            await open_idle()
        await trio.sleep(0.3)
        many = common.rss_mb()
    return {"rss_one_mb": one, "rss_many_mb": many, "sessions": sessions}


async def scale_step(
    base: str, sessions: int, warmup_s: float, measure_s: float, pacing: str = "timer"
) -> dict[str, Any]:
    """N real-time sessions; input paced by a timer per session or by the server's frames.

    ``pacing="timer"``: each session sends a frame every 20 ms from its own task (as a
    microphone's clock would). ``pacing="server"``: each session sends one frame for every
    audio frame the server sent it (input arriving from the network at the network's
    rate, as in a gateway), so no application timer runs.
    """
    latencies: list[float] = []
    by_timer = pacing == "timer"
    measuring = False
    opened = 0

    async def one(index: int) -> None:
        nonlocal opened
        async with (
            make_agent(base, scenario="stream", run=f"scale{index}") as agent,
            trio.open_nursery() as nursery,
        ):
            opened += 1

            async def feed() -> None:
                start = trio.current_time()
                k = 0
                while True:
                    await agent.send(audio_event(common.SILENCE_B64))
                    k += 1
                    await trio.sleep_until(start + k * common.FRAME_S)

            if by_timer:
                nursery.start_soon(feed)
            async for event in agent.receive():
                if event.type == "bidi_audio_stream":
                    if measuring:
                        stamp = common.stamp_of(event.audio)  # type: ignore[union-attr]
                        latencies.append((time.monotonic_ns() - stamp) / 1e6)
                    if not by_timer:
                        await agent.send(audio_event(common.SILENCE_B64))

    async with trio.open_nursery() as nursery:
        for index in range(sessions):
            nursery.start_soon(one, index)
        await trio.sleep(warmup_s)
        meter = common.CpuMeter()
        measuring = True
        meter.start()
        await trio.sleep(measure_s)
        meter.stop()
        measuring = False
        nursery.cancel_scope.cancel()
    return {
        "sessions": sessions,
        "opened": opened,
        "p99_ms": common.percentile(latencies, 99),
        "p50_ms": common.percentile(latencies, 50),
        "cpu_load": meter.cpu / meter.wall,
        "samples": len(latencies),
    }


SCENARIOS: dict[str, Any] = {
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
    """Run the scenario named on the command line and print its result."""
    scenario, base = sys.argv[1], sys.argv[2]
    args = dict(arg.split("=", 1) for arg in sys.argv[3:])

    async def run() -> dict[str, Any]:
        result: dict[str, Any] = await SCENARIOS[scenario](base, args)
        return result

    result = trio.run(run)
    common.emit(
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in result.items()}
    )


if __name__ == "__main__":
    main()
