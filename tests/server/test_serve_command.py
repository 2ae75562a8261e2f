"""``trio-bidi serve`` as a real process: one worker in-process, or two worker processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio

from trio_bidi._websocket import open_websocket

from ._helpers import receive_json, receive_until, ws_url

ROOT = Path(__file__).resolve().parents[2]


class ServerProcess:
    """The command's process and the lines it printed."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._buffer = b""
        self._changed = trio.Event()

    async def read_lines(self) -> None:
        assert self.process.stdout is not None
        async for chunk in self.process.stdout:
            self._buffer += chunk
            *complete, self._buffer = self._buffer.split(b"\n")
            self.lines.extend(line.decode() for line in complete)
            self._changed.set()
            self._changed = trio.Event()

    async def wait_line(self, pattern: str, after: int = 0) -> re.Match[str]:
        while True:
            for line in self.lines[after:]:
                found = re.search(pattern, line)
                if found:
                    return found
            await self._changed.wait()


@asynccontextmanager
async def serve_command(*args: str) -> AsyncIterator[ServerProcess]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "trio_bidi.cli._serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    server = ServerProcess(process)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.read_lines)
            try:
                yield server
            finally:
                with trio.CancelScope(shield=True):
                    if process.returncode is None:
                        process.send_signal(signal.SIGINT)
                    with trio.move_on_after(15):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
                        await process.wait()
                nursery.cancel_scope.cancel()
    finally:
        assert process.stdout is not None
        with trio.CancelScope(shield=True):
            await process.stdout.aclose()


async def one_turn(base: str) -> dict[str, object]:
    async with open_websocket(ws_url(base)) as ws:
        hello = await receive_json(ws)
        await ws.send_text(json.dumps({"type": "bidi_text_input", "text": "hi", "role": "user"}))
        reply = await receive_until(
            ws, lambda m: m["type"] == "bidi_transcript_stream" and m["is_final"]
        )
        assert reply["text"] == "You said: hi"
        return hello


async def test_serve_emulator_serves_the_page_offline() -> None:
    async with serve_command("--emulator", "--port", "0") as server:
        base = (await server.wait_line(r"Serving on (http://\S+)/")).group(1)
        assert any("127.0.0.1 only" in line for line in server.lines), server.lines
        async with httpx.AsyncClient(base_url=base) as client:
            assert "trio_bidi" in (await client.get("/")).text
        await one_turn(base)
    assert server.process.returncode in (0, 130)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (its parent reaps it).
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


async def test_two_workers_and_a_killed_worker_is_replaced() -> None:
    async with serve_command("--emulator", "--port", "0", "--workers", "2") as server:
        base = (await server.wait_line(r"Serving on (http://\S+)/")).group(1)
        pids = [int(p) for line in server.lines for p in re.findall(r"worker pid=(\d+)", line)]
        assert len(set(pids)) == 2, server.lines  # both started before "Serving on"
        await one_turn(base)
        os.kill(pids[0], signal.SIGKILL)
        await server.wait_line(rf"worker pid={pids[0]} exited with -9; restarting")
        replacement = await server.wait_line(r"worker pid=(\d+) started", 4)
        assert int(replacement.group(1)) not in pids
        for _ in range(4):  # both workers answer (the kernel spreads the connections)
            await one_turn(base)
        every_pid = [*pids, int(replacement.group(1))]
    assert server.process.returncode == 0
    for pid in every_pid:
        assert not alive(pid), f"worker {pid} outlived the server"


@pytest.mark.parametrize("args", [["--workers", "0"], ["--certfile", "cert.pem"]])
async def test_bad_options_are_refused(args: list[str]) -> None:
    result = await trio.run_process(
        [sys.executable, "-m", "trio_bidi.cli._serve", "--emulator", *args],
        capture_stderr=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 1
    assert b"trio-bidi: error:" in result.stderr
