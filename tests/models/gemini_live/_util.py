"""Helpers shared by the Gemini Live tests."""

from __future__ import annotations

import base64
from collections.abc import Callable

import trio

from trio_bidi.models import BidiConnection

from .._shared import TOOL_SPEC as TOOL_SPEC
from .._shared import collect_until as collect_until
from .._shared import is_complete as is_complete
from .._shared import of_type as of_type


def pcm(samples: int, value: int = 100) -> str:
    """Base64 16-bit PCM of ``samples`` equal samples."""
    return base64.b64encode(value.to_bytes(2, "little", signed=True) * samples).decode()


async def wait_for(condition: Callable[[], bool], *, timeout_s: float = 5.0) -> None:
    """Wait until ``condition()`` is true (state another task updates), polling briefly."""
    with trio.fail_after(timeout_s):
        while not condition():  # noqa: ASYNC110 - the state has no event to wait on
            await trio.sleep(0.005)


async def drain(connection: BidiConnection, *, timeout_s: float = 5.0) -> None:
    """Receive until the connection's events end (or raise); fail after ``timeout_s``."""
    with trio.fail_after(timeout_s):
        async for _event in connection.receive():
            pass
