"""Gateway tests: each async test runs under a real-time deadline and leaks no sockets.

The browser and load tests (test_browser.py, test_load.py) get a longer deadline: they
start Chromium or worker processes and speak in real time.
"""

from __future__ import annotations

import functools
import gc
import inspect
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

_HERE = Path(__file__).parent
_LIMIT_S = 30.0
_SLOW_LIMIT_S = 120.0


def open_sockets() -> set[str]:
    """The ``socket:[inode]`` targets of this process's open file descriptors."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


def _with_deadline(
    test: Callable[..., Awaitable[Any]], limit_s: float
) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(test)
    async def guarded(**kwargs: Any) -> Any:
        with trio.fail_after(limit_s):
            return await test(**kwargs)

    return guarded


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not isinstance(item, pytest.Function) or _HERE not in Path(item.path).parents:
            continue
        if inspect.iscoroutinefunction(item.obj):
            slow = Path(item.path).name in ("test_browser.py", "test_load.py")
            limit = _SLOW_LIMIT_S if slow else _LIMIT_S
            item.obj = _with_deadline(item.obj, limit)


@pytest.fixture(autouse=True)
def _no_leaked_sockets() -> Iterator[None]:
    before = open_sockets()
    yield
    deadline = time.monotonic() + 2.0
    while True:
        gc.collect()
        leaked = open_sockets() - before
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leaked, f"sockets left open: {sorted(leaked)}"
