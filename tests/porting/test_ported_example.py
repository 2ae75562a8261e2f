"""The Strands usage example, ported, prints what Strands prints (OpenAI Realtime emulator).

strands_example.py is the program as a Strands 1.40 user writes it; ported_example.py is
the port. Both run against the same emulator script. What Strands printed is kept in
fixtures/strands_example_output.txt (recorded by running Strands itself); when Strands'
interpreter is at hand (STRANDS_PYTHON, default /work/strands140/bin/python) the test runs
it again live.
"""

from __future__ import annotations

import os
import pathlib
import sys

import pytest
import trio

from trio_bidi.models import BidiOpenAIRealtimeModel
from trio_bidi.testing import FunctionCallReply, OpenAIRealtimeEmulator, SpokenReply

from . import ported_example

HERE = pathlib.Path(__file__).parent
DOC = HERE.parents[1] / "docs" / "porting.md"
STRANDS_OUTPUT = HERE / "fixtures" / "strands_example_output.txt"
STRANDS_PYTHON = pathlib.Path(os.environ.get("STRANDS_PYTHON", "/work/strands140/bin/python"))


def _script(emulator: OpenAIRealtimeEmulator) -> None:
    emulator.queue(FunctionCallReply("calculator", {"expression": "25 * 48"}))
    emulator.queue(SpokenReply(text="25 times 48 is 1200."))
    emulator.queue(FunctionCallReply("stop_conversation", {}))


async def test_the_ported_example_prints_what_strands_prints() -> None:
    printed: list[str] = []
    async with OpenAIRealtimeEmulator() as emulator:
        _script(emulator)
        model = BidiOpenAIRealtimeModel(
            model_id="gpt-realtime",
            client_config={"api_key": emulator.api_key, "url": emulator.url},
        )
        await ported_example.main(model, show=printed.append)
    assert printed == STRANDS_OUTPUT.read_text(encoding="utf-8").splitlines()


async def test_strands_itself_prints_the_recorded_lines() -> None:
    if not STRANDS_PYTHON.exists():  # noqa: ASYNC240 (a stat before the test starts)
        pytest.skip(f"Strands 1.40 interpreter not found at {STRANDS_PYTHON} (STRANDS_PYTHON)")
    async with OpenAIRealtimeEmulator() as emulator:
        _script(emulator)
        result = await trio.run_process(
            [str(STRANDS_PYTHON), str(HERE / "strands_example.py")],
            capture_stdout=True,
            capture_stderr=True,
            cwd="/",
            env={
                "PATH": os.environ.get("PATH", ""),
                "STRANDS_OPENAI_URL": emulator.url,
                "OPENAI_API_KEY": emulator.api_key or "",
            },
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    lines = result.stdout.decode().splitlines()
    if os.environ.get("RECORD_STRANDS_OUTPUT"):
        STRANDS_OUTPUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert lines == STRANDS_OUTPUT.read_text(encoding="utf-8").splitlines()


def test_the_guide_shows_this_code() -> None:
    source = pathlib.Path(ported_example.__file__).read_text(encoding="utf-8")
    body = source[source.index("from typing import Any") :]
    assert body.strip() in DOC.read_text(encoding="utf-8")
    assert sys.modules[ported_example.__name__] is ported_example
