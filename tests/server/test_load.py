"""A small run of bench/gateway_load.py: clients streaming audio both ways to 2 workers,
one worker killed half way; its clients reconnect and continue from the session store."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench" / "gateway_load.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gateway_load", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_a_killed_worker_loses_no_conversation() -> None:
    bench = load_bench()
    report = await bench.run_load(clients=4, seconds=9, workers=2, kill=True, store=True)
    assert report["failures"] == []
    assert report["error_events"] == 0, report["error_samples"]
    assert report["sessions_held_max"] == 4
    assert report["turns"] >= 4, report
    assert report["sessions_on_killed_worker"] >= 1, report
    assert report["reconnections"] == report["sessions_on_killed_worker"], report
    assert report["restored_sessions"] == report["reconnections"], report
    assert report["lost_messages"] == 0, report
    assert report["turn_latency_p99_ms"] < 2000, report


def test_the_codec_benchmark_measures_both_audio_forms() -> None:
    costs = load_bench().codec_costs(repeat=2000)
    assert costs["in_binary_bytes"] < costs["in_json_bytes"]
    assert set(costs) >= {
        "in_binary_us",
        "in_json_base64_us",
        "out_binary_us",
        "out_json_base64_us",
    }
