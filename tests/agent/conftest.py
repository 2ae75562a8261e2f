"""Every agent test runs under a deadline, so a regression fails instead of hanging.

With the autojump clock the deadline is virtual (a day: reached at once when every task
is blocked); otherwise it is real time.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

_HERE = Path(__file__).parent
_VIRTUAL_LIMIT_S = 24 * 3600.0
_REAL_LIMIT_S = 30.0


def _with_deadline(test: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(test)
    async def guarded(**kwargs: Any) -> Any:
        virtual = any(isinstance(v, trio.abc.Clock) for v in kwargs.values())
        with trio.fail_after(_VIRTUAL_LIMIT_S if virtual else _REAL_LIMIT_S):
            return await test(**kwargs)

    return guarded


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not isinstance(item, pytest.Function) or _HERE not in Path(item.path).parents:
            continue
        if inspect.iscoroutinefunction(item.obj):
            item.obj = _with_deadline(item.obj)
