"""Helpers shared by the drivers (stdlib only: they run in the trio_bidi and Strands envs)."""

from __future__ import annotations

import base64
import json
import math
import struct
import sys
import time
from typing import Any

FRAME_BYTES = 960  # 20 ms of 24 kHz mono PCM16
FRAME_S = 0.020
SILENCE_B64 = base64.b64encode(bytes(FRAME_BYTES)).decode()


def bench_url(base: str, **params: Any) -> str:
    """Return the load server URL with scenario parameters as path segments."""
    segments = "/".join(f"{key}={value}" for key, value in params.items())
    return f"{base}/bench/{segments}/v1/realtime"


def seq_frame_b64(seq: int) -> str:
    """A 20 ms frame of silence whose first 4 bytes hold ``seq`` (for loss counting)."""
    frame = bytearray(FRAME_BYTES)
    struct.pack_into("<I", frame, 0, seq)
    return base64.b64encode(frame).decode()


def stamp_of(audio_b64: str) -> int:
    """The server's monotonic_ns write time carried in an audio delta's first 8 bytes."""
    return int(struct.unpack_from("<Q", base64.b64decode(audio_b64[:12]))[0])


def report_of(text: str) -> dict[str, Any] | None:
    """Decode a server report carried in a transcript delta, or None."""
    if text.startswith("bench:"):
        return dict(json.loads(text[6:]))
    return None


def rss_mb() -> float:
    """This process's resident set size in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of values; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[rank]


class CpuMeter:
    """CPU seconds (process) and wall seconds between start() and stop()."""

    def __init__(self) -> None:
        self.cpu0 = self.wall0 = 0.0
        self.cpu = self.wall = 0.0

    def start(self) -> None:
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()

    def stop(self) -> None:
        self.cpu = time.process_time() - self.cpu0
        self.wall = time.perf_counter() - self.wall0


def emit(result: dict[str, Any]) -> None:
    """Print the driver's result as the last line of stdout."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
