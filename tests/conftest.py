"""Shared pytest setup: every module in tests/fixtures/ is loaded as a plugin.

Each provider keeps its fixtures (emulators wired to the official type oracles) in its own
module there, so test files anywhere can use them.
"""

from __future__ import annotations

from pathlib import Path

pytest_plugins = sorted(
    f"tests.fixtures.{path.stem}"
    for path in (Path(__file__).parent / "fixtures").glob("*.py")
    if path.stem != "__init__"
)
