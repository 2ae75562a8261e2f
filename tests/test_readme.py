"""The README's code runs as written, and CI runs the README's commands as written."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(README) if lang == language]


def quickstart_commands() -> list[str]:
    return [line for body in blocks("console") for line in body.splitlines() if "nox -s" in line]


async def test_the_readme_program_runs_and_prints_what_the_readme_says(tmp_path: Path) -> None:
    (program,) = blocks("python")
    printed = next(body for body in blocks("text") if body.startswith("tool call:"))
    path = tmp_path / "readme_example.py"
    path.write_text(program, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with trio.fail_after(60):
        result = await trio.run_process(
            [sys.executable, str(path)],
            capture_stdout=True,
            capture_stderr=True,
            env=env,
            cwd=str(tmp_path),
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == printed


def test_the_quickstart_works_with_a_distribution_python() -> None:
    demo, tests, *_development = quickstart_commands()
    for command, session in ((demo, "demo"), (tests, "tests")):
        # A virtual environment first: a distribution's python3 refuses `pip install`
        # outside one (PEP 668).
        assert command.startswith("python3 -m venv .venv && "), command
        assert command.endswith(f"nox -s {session}"), command
        assert "python3 -m pip" not in command


def test_ci_runs_the_readme_commands_exactly() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    demo, tests, *_ = quickstart_commands()
    ci_lines = [line.strip() for line in ci.splitlines()]
    assert tests in ci_lines  # the test command, exactly as a user types it
    assert f"QUICKSTART_DEMO='{demo}'" in ci_lines  # run in a clean clone, /usr/bin/python3
