"""Run the benchmark suite side by side and print the table (``nox -s bench`` calls this).

``python bench/run.py --strands-python PATH [--rounds N] [--only 1,2,7] [--schemes wss,ws]
[--quick]``

``--only`` takes scenario numbers (1-7) or names (output, input, tool, barge, restart,
memory, scale, convert, transport). ``--schemes`` (default ``wss,ws``): scenarios 1 and 2
and the bare transport run over each scheme given; the others over the first one only.
For ``wss://`` a test CA is generated (``trustme``) in a temporary folder; the load server
serves with its certificate, and both drivers trust it through ``SSL_CERT_FILE``.

One load server process per scheme (``bench/loadserver.py``, run with this interpreter)
serves both sides. Every measurement is one fresh client process (``bench/trio_driver.py`` with this
interpreter, ``bench/strands_driver.py`` with the Strands environment's), and the two
sides alternate run by run (trio_bidi first in even rounds, Strands first in odd ones), so
drifting machine load hits both alike. Results go to ``bench/results/latest.json`` and
``bench/results/latest.md`` (the table) as well as stdout.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common

HERE = os.path.dirname(os.path.abspath(__file__))
SIDES = ("trio_bidi", "strands")
ALL = ("output", "input", "tool", "barge", "restart", "memory", "scale", "convert", "transport")
NUMBERED = dict(zip("1234567", ALL, strict=False))
#: Scenario 1 runs with the server writing this many messages per write (1: one each).
OUTPUT_BATCHES = (64, 1)
SCALE_LADDER = (5, 10, 15, 20, 30, 40, 60, 80, 100, 120, 140, 160, 200, 240, 320, 480)
LATENCY_LIMIT_MS = 20.0


def server_cpus() -> set[int] | None:
    """The CPU the load server is pinned to, or None (fewer than two CPUs, not Linux).

    With two CPUs or more the load server runs on the last one, so its work does not
    land on the core the measured client runs on (scenario 7 especially: at 200 real-time
    sessions the server needs most of a core). The clients are not pinned: the scheduler
    keeps them off the server's busy core, and a client's own threads (a sync tool's
    worker thread) may still run beside its event loop, as they would on a server.
    """
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[-1]}


SERVER_CPUS = server_cpus()


def pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that pins the child to ``cpus`` (None: no pinning)."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


class Runner:
    """Starts client processes for either side and collects their JSON results."""

    def __init__(
        self, base: str, strands_python: str, timeout_s: float, env: dict[str, str]
    ) -> None:
        self.base = base
        self.env = env
        self.python = {"trio_bidi": sys.executable, "strands": strands_python}
        # Strands' Nova Sonic model needs Python 3.12 (its AWS SDK): a second environment.
        self.strands_nova_python: str | None = None
        self.driver = {
            "trio_bidi": os.path.join(HERE, "trio_driver.py"),
            "strands": os.path.join(HERE, "strands_driver.py"),
        }
        self.timeout_s = timeout_s
        self.failures: list[str] = []

    def run(self, side: str, argv: list[str], timeout_s: float | None = None) -> dict[str, Any]:
        cmd = [self.python[side], *argv]
        try:
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=timeout_s or self.timeout_s,
                check=False,
                env=self.env,
            )
        except subprocess.TimeoutExpired:
            self.failures.append(f"{side} {' '.join(argv[1:2])}: timed out")
            return {"error": "timeout"}
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            tail = proc.stderr.strip().splitlines()[-3:]
            self.failures.append(f"{side} {' '.join(argv[:3])}: exit {proc.returncode}: {tail}")
            return {"error": " | ".join(tail) or f"exit {proc.returncode}"}
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    def scenario(self, side: str, name: str, **params: Any) -> dict[str, Any]:
        args = [f"{k}={v}" for k, v in params.items()]
        return self.run(side, [self.driver[side], name, self.base, *args])


def alternate(rounds: int) -> Iterator[tuple[int, str]]:
    for index in range(rounds):
        order = SIDES if index % 2 == 0 else SIDES[::-1]
        for side in order:
            yield index, side


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ok(result: dict[str, Any]) -> bool:
    return "error" not in result


# ---------------------------------------------------------------------- scenarios


def bench_throughput(r: Runner, name: str, rounds: int, n: int, **params: Any) -> dict[str, Any]:
    rates: dict[str, list[float]] = {side: [] for side in SIDES}
    for _, side in alternate(rounds):
        result = r.scenario(side, name, n=n, **params)
        if ok(result):
            rates[side].append(result["rate"])
    return {side: {"median": median(v), "runs": v} for side, v in rates.items()}


def bench_latency(r: Runner, name: str, rounds: int, n: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {side: [] for side in SIDES}
    extra: dict[str, list[Any]] = {side: [] for side in SIDES}
    for _, side in alternate(rounds):
        result = r.scenario(side, name, n=n)
        if ok(result):
            samples[side].extend(result["samples_ms"])
            extra[side].append({k: v for k, v in result.items() if k != "samples_ms"})
    return {
        side: {
            "median": median(v),
            "p99": common.percentile(v, 99),
            "count": len(v),
            "runs": extra[side],
        }
        for side, v in samples.items()
    }


def bench_restart(r: Runner, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    gaps: dict[str, list[float]] = {side: [] for side in SIDES}
    lost: dict[str, list[int]] = {side: [] for side in SIDES}
    for _, side in alternate(rounds):
        result = r.scenario(side, "restart", timeout_s=2, after_s=0.6)
        if ok(result):
            gaps[side].extend(result["gaps_ms"])
            lost[side].append(result["lost"])
    for side in SIDES:
        out[side] = {
            "median": median(gaps[side]),
            "max": max(gaps[side], default=float("nan")),
            "lost": sum(lost[side]) if lost[side] else None,
            "runs": len(lost[side]),
        }
    return out


def bench_memory(r: Runner, rounds: int, sessions: int) -> dict[str, Any]:
    one: dict[str, list[float]] = {side: [] for side in SIDES}
    per: dict[str, list[float]] = {side: [] for side in SIDES}
    for _, side in alternate(rounds):
        result = r.scenario(side, "memory", sessions=sessions)
        if ok(result):
            one[side].append(result["rss_one_mb"])
            per[side].append((result["rss_many_mb"] - result["rss_one_mb"]) / (sessions - 1))
    return {
        side: {"one_mb": median(one[side]), "per_session_mb": median(per[side])} for side in SIDES
    }


def scale_holds(result: dict[str, Any], sessions: int, measure_s: float) -> bool:
    expected = sessions * measure_s / common.FRAME_S
    return (
        ok(result)
        and result["opened"] == sessions
        and result["samples"] >= 0.9 * expected
        and result["p99_ms"] <= LATENCY_LIMIT_MS
        and result["cpu_load"] < 1.0
    )


def bench_scale(r: Runner, measure_s: float, tries: int, pacing: str = "timer") -> dict[str, Any]:
    """Climb the ladder of session counts, both sides in turn, until each stops holding.

    A step gets up to ``tries`` runs and holds if one of them does, so that a burst of
    unrelated load on a shared machine does not end the climb early (for either side).
    ``pacing``: what paces each session's input, a timer of its own (``timer``, scenario
    7) or the server's audio frames, one input frame per frame received (``server``, 7b).
    """
    held: dict[str, int] = dict.fromkeys(SIDES, 0)
    steps: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    active = set(SIDES)
    for index, sessions in enumerate(SCALE_LADDER):
        order = SIDES if index % 2 == 0 else SIDES[::-1]
        for side in order:
            if side not in active:
                continue
            holds = False
            for _ in range(tries):
                argv = [
                    r.driver[side],
                    "scale",
                    r.base,
                    f"sessions={sessions}",
                    f"measure_s={measure_s}",
                    f"pacing={pacing}",
                ]
                result = r.run(side, argv, timeout_s=60 + sessions * 0.2)
                steps[side].append(result)
                holds = scale_holds(result, sessions, measure_s)
                if holds:
                    break
            if holds:
                held[side] = sessions
            else:
                active.discard(side)
        if not active:
            break
    return {side: {"sessions": held[side], "steps": steps[side]} for side in SIDES}


def bench_convert(r: Runner) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for provider in ("openai", "gemini"):
        for side in SIDES:
            result = r.run(side, [os.path.join(HERE, "convert.py"), side, provider, "1.0"])
            out.setdefault(provider, {})[side] = result.get("rate", float("nan"))
    nova = os.path.join(HERE, "convert_nova.py")
    ours = r.run("trio_bidi", [nova, "trio_bidi", "1.0"])
    theirs: dict[str, Any] = {}
    if r.strands_nova_python:
        saved = r.python["strands"]
        r.python["strands"] = r.strands_nova_python
        try:
            theirs = r.run("strands", [nova, "strands", "1.0"])
        finally:
            r.python["strands"] = saved
    # From raw event-stream bytes (both sides decode the framing, base64 and JSON), and
    # the JSON-to-events conversion alone (see bench/convert_nova.py).
    for key, rate in (("nova", "rate"), ("nova_json", "rate_json")):
        out[key] = {
            "trio_bidi": ours.get(rate, float("nan")),
            "strands": theirs.get(rate, float("nan")),
        }
    return out


def bench_transport(r: Runner, rounds: int, n: int) -> dict[str, Any]:
    """Bare WebSockets, no agent: ours (Trio) against the asyncio client Strands uses.

    Receiving runs with the server batching 64 messages per write and with one message
    per write. Beside ours, trio_bidi-only variants: the writer task (send), the floor
    (the same bytes through our wire alone, no parsing) and, over ``wss://``, TLS through
    ``trio.SSLStream`` instead of our own (the A/B of the in-place TLS).
    """
    clients = {"trio_bidi": "trio_bidi", "strands": "websockets_asyncio"}
    script = os.path.join(HERE, "transport.py")
    out: dict[str, Any] = {}

    def ours(client: str, direction: str, batch: int) -> float:
        rates: list[float] = []
        for _ in range(rounds):
            result = r.run("trio_bidi", [script, r.base, client, direction, str(n), str(batch)])
            if ok(result):
                rates.append(result["rate"])
        return median(rates)

    for direction, batch in (("recv", 64), ("recv", 1), ("send", 64)):
        rates: dict[str, list[float]] = {side: [] for side in SIDES}
        for _, side in alternate(rounds):
            argv = [script, r.base, clients[side], direction, str(n), str(batch)]
            result = r.run(side, argv)
            if ok(result):
                rates[side].append(result["rate"])
        label = direction if direction == "send" else f"recv ({_batch_label(batch)})"
        out[label] = {side: median(v) for side, v in rates.items()}
        if direction == "recv":
            strands = out[label]["strands"]
            out[f"recv floor: wire only ({_batch_label(batch)})"] = {
                "trio_bidi": ours("trio_bidi_floor", "recv", batch),
                "strands": strands,
            }
            if r.base.startswith("wss:"):
                out[f"recv via trio.SSLStream ({_batch_label(batch)})"] = {
                    "trio_bidi": ours("trio_bidi_sslstream", "recv", batch),
                    "strands": strands,
                }
    out["send, writer task"] = {
        "trio_bidi": ours("trio_bidi_batched", "send", 64),
        "strands": out["send"]["strands"],
    }
    # The transport decision (docs/performance.md): the Trio WebSocket library the design
    # first named, in the trio_bidi column, against the same asyncio client.
    if importlib.util.find_spec("trio_websocket") is not None:
        for direction, batch in (("recv", 64), ("recv", 1), ("send", 64)):
            label = direction if direction == "send" else f"recv ({_batch_label(batch)})"
            out[f"{label} via trio-websocket"] = {
                "trio_bidi": ours("trio_websocket", direction, batch),
                "strands": out[label]["strands"],
            }
    return out


def _batch_label(batch: int) -> str:
    return "one message per write" if batch == 1 else f"{batch} per write"


# ---------------------------------------------------------------------- table


def fmt(value: Any, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    if isinstance(value, float):
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    else:
        text = f"{value:,}"
    return text + unit


def ratio(a: Any, b: Any) -> float:
    try:
        return float(a) / float(b) if b else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def verdict(passed: bool | None) -> str:
    return "n/a" if passed is None else ("PASS" if passed else "FAIL")


def table(results: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []

    def row(name: str, t: Any, s: Any, unit: str, r: float, target: str, passed: Any) -> None:
        rows.append([name, fmt(t, unit), fmt(s, unit), fmt(r, "x"), target, verdict(passed)])

    def nan(value: float) -> bool:
        return value != value

    for scheme, output in results.get("output", {}).items():
        for batch, values in output.items():
            t, s = values["trio_bidi"]["median"], values["strands"]["median"]
            q = ratio(t, s)
            label = f"1 output audio events/CPU-s, {scheme}://, {_batch_label(int(batch))}"
            row(label, t, s, "", q, ">= 1.5x", None if nan(q) else q >= 1.5)
    for scheme, values in results.get("input", {}).items():
        t, s = values["trio_bidi"]["median"], values["strands"]["median"]
        q = ratio(t, s)
        row(
            f"2 input frames/CPU-s, {scheme}://",
            t,
            s,
            "",
            q,
            ">= 1.5x",
            None if nan(q) else q >= 1.5,
        )
    if "tool" in results:
        t, s = results["tool"]["trio_bidi"], results["tool"]["strands"]
        q = ratio(t["median"], s["median"])
        row(
            "3 tool round trip median",
            t["median"],
            s["median"],
            " ms",
            q,
            "<= 1.0x",
            None if nan(q) else q <= 1.0,
        )
        row("3 tool round trip p99", t["p99"], s["p99"], " ms", ratio(t["p99"], s["p99"]), "", None)
    if "barge" in results:
        t, s = results["barge"]["trio_bidi"], results["barge"]["strands"]
        row(
            "4 barge-in -> buffer cleared, median",
            t["median"],
            s["median"],
            " ms",
            ratio(t["median"], s["median"]),
            "<= 2 ms",
            None if nan(t["median"]) else t["median"] <= 2.0,
        )
        row(
            "4 barge-in -> buffer cleared, p99",
            t["p99"],
            s["p99"],
            " ms",
            ratio(t["p99"], s["p99"]),
            "",
            None,
        )
    if "restart" in results:
        t, s = results["restart"]["trio_bidi"], results["restart"]["strands"]
        row(
            "5 restart gap, median",
            t["median"],
            s["median"],
            " ms",
            ratio(t["median"], s["median"]),
            "<= 250 ms",
            None if nan(t["median"]) else t["median"] <= 250,
        )
        row(
            "5 input frames lost in restart",
            t["lost"],
            s["lost"],
            "",
            float("nan"),
            "0",
            None if t["lost"] is None else t["lost"] == 0,
        )
    if "memory" in results:
        t, s = results["memory"]["trio_bidi"], results["memory"]["strands"]
        row(
            "6 RSS, one idle session",
            t["one_mb"],
            s["one_mb"],
            " MB",
            ratio(t["one_mb"], s["one_mb"]),
            "<= 40 MB",
            None if nan(t["one_mb"]) else t["one_mb"] <= 40,
        )
        row(
            "6 RSS per extra session (100)",
            t["per_session_mb"],
            s["per_session_mb"],
            " MB",
            ratio(t["per_session_mb"], s["per_session_mb"]),
            "",
            None,
        )
    if "scale" in results:
        scale = results["scale"]
        t, s = scale["timer"]["trio_bidi"]["sessions"], scale["timer"]["strands"]["sessions"]
        q = ratio(t, s)
        row("7 real-time sessions held", t, s, "", q, ">= 2x", None if nan(q) else q >= 2.0)
        if "server" in scale:
            t, s = scale["server"]["trio_bidi"]["sessions"], scale["server"]["strands"]["sessions"]
            label = "7b real-time sessions held, input paced by the server's frames"
            row(label, t, s, "", ratio(t, s), "", None)
    for scheme, transport in results.get("transport", {}).items():
        for direction, values in transport.items():
            t, s = values["trio_bidi"], values["strands"]
            label = f"transport {scheme}://: bare WebSocket {direction} + JSON/CPU-s"
            if direction.startswith("recv floor"):
                label = f"transport {scheme}://: {direction}, bytes of the messages/CPU-s"
            row(label, t, s, "", ratio(t, s), "", None)
    if "convert" in results:
        for provider, values in results["convert"].items():
            t, s = values["trio_bidi"], values["strands"]
            label = {
                "nova": "micro: nova event-stream bytes -> events/CPU-s",
                "nova_json": "micro: nova JSON -> events/CPU-s",
            }.get(provider, f"micro: {provider} JSON -> events/CPU-s")
            row(label, t, s, "", ratio(t, s), "", None)
    return rows


def render(rows: list[list[str]]) -> str:
    head = ["scenario", "trio_bidi", "Strands 1.40", "ratio", "target", "result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def machine(strands_python: str) -> dict[str, str]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    strands = subprocess.run(
        [
            strands_python,
            "-c",
            "import importlib.metadata as m; print(m.version('strands-agents'))",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    import websockets

    import trio_bidi

    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores"
        + (f" (load server pinned to CPU {sorted(SERVER_CPUS)})" if SERVER_CPUS else ""),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "trio_bidi": trio_bidi.__version__,
        "strands-agents": strands or "unknown",
        "websockets": websockets.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def make_test_ca(folder: str) -> tuple[str, str]:
    """Issue a test CA and a certificate for 127.0.0.1; return (CA file, server PEM)."""
    try:
        import trustme
    except ImportError as exc:
        raise SystemExit("wss:// needs trustme in this environment (pip install trustme)") from exc
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, server_pem = os.path.join(folder, "ca.pem"), os.path.join(folder, "server.pem")
    ca.cert_pem.write_to_path(ca_file)
    cert.private_key_and_cert_chain_pem.write_to_path(server_pem)
    return ca_file, server_pem


@contextmanager
def load_server(scheme: str, server_pem: str | None) -> Iterator[str]:
    argv = [sys.executable, os.path.join(HERE, "loadserver.py")]
    if scheme == "wss":
        assert server_pem is not None
        argv += ["--cert", server_pem]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=pinned(SERVER_CPUS),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the load server did not start: {line!r}")
        yield f"{scheme}://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strands-python", required=True, help="Python of the Strands env")
    parser.add_argument(
        "--strands-nova-python",
        help="Python 3.12 with strands-agents and aws_sdk_bedrock_runtime (Nova conversion)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="runs per side (throughput)")
    parser.add_argument(
        "--only", default=",".join(ALL), help="comma-separated scenario numbers or names"
    )
    parser.add_argument(
        "--schemes", default="wss,ws", help="wss and/or ws (1, 2, transport: each; rest: first)"
    )
    parser.add_argument("--quick", action="store_true", help="small runs, for a smoke test")
    parser.add_argument(
        "--n", type=int, default=0, help="messages per run for 1, 2, transport (default 20000)"
    )
    parser.add_argument("--out", default=os.path.join(HERE, "results"), help="results folder")
    opts = parser.parse_args()
    chosen = [NUMBERED.get(name.strip(), name.strip()) for name in opts.only.split(",")]
    chosen = [name for name in chosen if name]
    unknown = sorted(set(chosen) - set(ALL))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: 1-7, {', '.join(ALL)}")
    schemes = [scheme.strip() for scheme in opts.schemes.split(",") if scheme.strip()]
    if not schemes or set(schemes) - {"ws", "wss"}:
        parser.error("--schemes takes wss and/or ws")
    quick = opts.quick
    rounds = 1 if quick else opts.rounds
    few = 1 if quick else max(1, (opts.rounds + 1) // 2)
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(opts.strands_python)}
    n = opts.n or (2000 if quick else 20000)
    steps: dict[str, Callable[[Runner], Any]] = {
        "output": lambda r: {
            str(batch): bench_throughput(r, "output", rounds, n, batch=batch)
            for batch in OUTPUT_BATCHES
        },
        "input": lambda r: bench_throughput(r, "input", rounds, n),
        "tool": lambda r: bench_latency(r, "tool", few, 20 if quick else 200),
        "barge": lambda r: bench_latency(r, "barge", few, 5 if quick else 30),
        "restart": lambda r: bench_restart(r, few),
        "memory": lambda r: bench_memory(r, few, 10 if quick else 100),
        "scale": lambda r: {
            pacing: bench_scale(r, 1.0 if quick else 3.0, 1 if quick else 2, pacing)
            for pacing in ("timer", "server")
        },
        "convert": bench_convert,
        "transport": lambda r: bench_transport(r, rounds, n),
    }
    per_scheme = {"output", "input", "transport"}
    results["schemes"] = schemes
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="trio-bidi-bench-ca-") as folder:
        env = dict(os.environ)
        server_pem = None
        if "wss" in schemes:
            ca_file, server_pem = make_test_ca(folder)
            env["SSL_CERT_FILE"] = ca_file
        for index, scheme in enumerate(schemes):
            todo = [name for name in chosen if name in per_scheme or index == 0]
            if not todo:
                continue
            with load_server(scheme, server_pem) as base:
                runner = Runner(base, opts.strands_python, timeout_s=120, env=env)
                runner.strands_nova_python = opts.strands_nova_python
                for name in todo:
                    t0 = time.perf_counter()
                    print(f"bench: {name} over {scheme}:// ...", flush=True)
                    outcome = steps[name](runner)
                    if name in per_scheme:
                        results.setdefault(name, {})[scheme] = outcome
                    else:
                        results[name] = outcome
                    print(f"bench: {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
                failures += runner.failures
    results["failures"] = failures
    results["elapsed_s"] = time.perf_counter() - started
    rows = table(results)
    text = render(rows)
    info = results["machine"]
    header = (
        f"Machine: {info['cpu']}, {info['os']}, Python {info['python']}; "
        f"trio_bidi {info['trio_bidi']}, strands-agents {info['strands-agents']}, "
        f"websockets {info['websockets']}; {info['date']}; "
        f"{rounds} run(s) per side for 1-2, {few} for 3-6; scenarios 3-7 over "
        f"{schemes[0]}://; {results['elapsed_s']:.0f} s."
    )
    print()
    print(header)
    print(text)
    for failure in failures:
        print(f"driver failure: {failure}")
    os.makedirs(opts.out, exist_ok=True)
    with open(os.path.join(opts.out, "latest.json"), "w") as fh:
        json.dump(results, fh, indent=1, default=str)
    with open(os.path.join(opts.out, "latest.md"), "w") as fh:
        fh.write(header + "\n\n" + text + "\n")


if __name__ == "__main__":
    main()
