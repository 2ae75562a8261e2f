"""Record what the Strands 1.40 version of the usage example prints (run by hand).

    python3 -m venv /work/strands140
    /work/strands140/bin/pip install strands-agents==1.40.0 websockets
    PYTHONPATH=. /work/venv/bin/python tests/porting/record_strands_output.py

Starts the OpenAI Realtime emulator with the same replies as test_ported_example.py, runs
strands_example.py with Strands' interpreter (STRANDS_PYTHON) against it and writes what
it printed to fixtures/strands_example_output.txt, once it printed the close event.

Strands 1.40 races the service: it sends ``response.create`` with a tool result as soon
as the tool returns, possibly before the function call's response is done, and the
service (like the emulator) refuses it ("conversation_already_has_active_response"). A run
where that happened (its log says so) replies out of turn and often never exits; such runs
are discarded and retried (up to 10 runs). The process is ended once it printed the close
line.
"""

import os
import pathlib
import subprocess
import sys
import tempfile
from typing import IO

import trio

from tests.porting.test_ported_example import STRANDS_OUTPUT, script_replies
from trio_bidi.testing import OpenAIRealtimeEmulator

HERE = pathlib.Path(__file__).parent
STRANDS_PYTHON = os.environ.get("STRANDS_PYTHON", "/work/strands140/bin/python")


async def run_once() -> list[str] | None:
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
    try:
        return await _run(log)
    finally:
        log.close()


def _raced(log: IO[bytes]) -> bool:
    log.seek(0)
    return b"conversation_already_has_active_response" in log.read()


async def _run(log: IO[bytes]) -> list[str] | None:
    async with OpenAIRealtimeEmulator() as emulator:
        script_replies(emulator)
        process = await trio.lowlevel.open_process(
            [STRANDS_PYTHON, "-u", str(HERE / "strands_example.py")],
            stdout=subprocess.PIPE,
            stderr=log,
            cwd="/",
            env={
                "PATH": os.environ.get("PATH", ""),
                "STRANDS_OPENAI_URL": emulator.url,
                "OPENAI_API_KEY": emulator.api_key or "",
            },
        )
        assert process.stdout is not None
        output = b""
        try:
            with trio.move_on_after(20):
                while b"closed: " not in output or not output.endswith(b"\n"):
                    chunk = await process.stdout.receive_some()
                    if not chunk:
                        break
                    output += chunk
        finally:
            process.kill()
            await process.wait()
            await process.stdout.aclose()
        lines = output.decode().splitlines()
        if _raced(log) or not lines or not lines[-1].startswith("closed: "):
            return None
        return lines


async def main() -> None:
    for attempt in range(1, 11):
        lines = await run_once()
        if lines is not None:
            STRANDS_OUTPUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
            print(f"recorded {len(lines)} lines (run {attempt})", file=sys.stderr)
            return
        print(f"run {attempt}: Strands raced or did not finish, retrying", file=sys.stderr)
    sys.exit("Strands never finished")


if __name__ == "__main__":
    trio.run(main)
