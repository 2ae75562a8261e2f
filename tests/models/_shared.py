"""Helpers every provider's tests use: a tool spec and event collection."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import trio

from trio_bidi.events import BidiOutputEvent, BidiResponseCompleteEvent
from trio_bidi.models import BidiConnection
from trio_bidi.types import ToolSpec

T = TypeVar("T")

TOOL_SPEC: ToolSpec = {
    "name": "get_weather",
    "description": "Weather for a city.",
    "inputSchema": {
        "json": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        }
    },
}


async def collect_until(
    connection: BidiConnection,
    stop: Callable[[BidiOutputEvent], bool],
    *,
    timeout_s: float = 5.0,
) -> list[BidiOutputEvent]:
    """Receive events until ``stop`` accepts one (included); fail after ``timeout_s``."""
    events: list[BidiOutputEvent] = []
    with trio.fail_after(timeout_s):
        async for event in connection.receive():
            events.append(event)
            if stop(event):
                return events
    raise AssertionError(f"receive() ended before the expected event; got {events}")


def is_complete(event: BidiOutputEvent) -> bool:
    """True for a response complete event."""
    return isinstance(event, BidiResponseCompleteEvent)


def of_type(events: list[BidiOutputEvent], kind: type[T]) -> list[T]:
    """The events of one class, in order."""
    return [event for event in events if isinstance(event, kind)]
