"""Helpers every provider's tests use: a tool spec and event collection."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


class ReaderSteps(trio.abc.Instrument):
    """Counts the steps a connection's reader task (`ConnectionBase._reader`) takes.

    A connection read in its consumer's task (``_read_step``) leaves its reader task
    asleep while the consumer keeps asking; a reader handing events over would take at
    least one step per event.
    """

    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith("ConnectionBase._reader"):
            self.steps += 1


@contextmanager
def counting_reader_steps() -> Iterator[ReaderSteps]:
    """Count the reader task's steps while the block runs."""
    instrument = ReaderSteps()
    trio.lowlevel.add_instrument(instrument)
    try:
        yield instrument
    finally:
        trio.lowlevel.remove_instrument(instrument)
