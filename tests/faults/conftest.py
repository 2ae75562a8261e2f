"""The hostile-peer suite: every test runs under a deadline and is checked for leaks.

Each test in this directory gets, without asking:

- a real-time deadline (``_REAL_LIMIT_S``), so a stall fails instead of hanging CI;
- a leak check around it: sockets open in this process (``/proc/self/fd``), threads other
  than Trio's idle worker cache, and (inside the test's own run) Trio tasks that are still
  alive when the test body returns.

Hostile servers live in the test modules themselves (raw sockets on 127.0.0.1, port 0), so
each file shows the exact bytes it sends.
"""

from __future__ import annotations

import functools
import gc
import inspect
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

_HERE = Path(__file__).parent
_REAL_LIMIT_S = 30.0
_THREAD_GRACE_S = 5.0


def open_sockets() -> set[str]:
    """Return the ``socket:[inode]`` targets of this process's open file descriptors."""
    found: set[str] = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


def _live_threads() -> set[threading.Thread]:
    # Trio keeps finished worker threads idle for a while for reuse; they are not leaks.
    return {
        t for t in threading.enumerate() if t.is_alive() and not t.name.startswith("Trio thread")
    }


def all_tasks() -> list[trio.lowlevel.Task]:
    """Return every task of the current Trio run (walks the tree from the root task)."""
    found: list[trio.lowlevel.Task] = []
    pending = [trio.lowlevel.current_root_task()]
    while pending:
        task = pending.pop()
        if task is None:
            continue
        found.append(task)
        for nursery in task.child_nurseries:
            pending.extend(nursery.child_tasks)
    return found


def _with_deadline_and_task_check(
    test: Callable[..., Awaitable[Any]],
) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(test)
    async def guarded(**kwargs: Any) -> Any:
        before = len(all_tasks())
        with trio.fail_after(_REAL_LIMIT_S):
            result = await test(**kwargs)
        # Let tasks that are ending on their own finish their last step.
        for _ in range(10):
            await trio.lowlevel.checkpoint()
        after = len(all_tasks())
        assert after <= before, f"{after - before} Trio task(s) outlived the test body"
        return result

    return guarded


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not isinstance(item, pytest.Function) or _HERE not in Path(item.path).parents:
            continue
        if inspect.iscoroutinefunction(item.obj):
            item.obj = _with_deadline_and_task_check(item.obj)


@pytest.fixture(autouse=True)
def _no_leaked_sockets_or_threads() -> Iterator[None]:
    sockets_before = open_sockets()
    threads_before = _live_threads()
    yield
    gc.collect()
    leaked_sockets = open_sockets() - sockets_before
    assert not leaked_sockets, f"sockets left open: {sorted(leaked_sockets)}"
    deadline = time.monotonic() + _THREAD_GRACE_S
    while (extra := _live_threads() - threads_before) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not extra, f"threads left running: {sorted(t.name for t in extra)}"
