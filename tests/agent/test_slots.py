"""Tool slots are handed out in reservation order, whatever order the tasks run in."""

from __future__ import annotations

import pytest
import trio

from trio_bidi.agent._slots import OrderedSlots


async def test_waiters_are_served_in_reservation_order_and_can_leave_the_line() -> None:
    slots = OrderedSlots(1)
    first, second, third, fourth = (slots.reserve() for _ in range(4))
    assert first.is_set()
    assert not second.is_set()
    slots.release(third)  # leaves the line before its turn
    served: list[str] = []

    async def run(name: str, turn: trio.Event) -> None:
        await turn.wait()
        served.append(name)
        await trio.lowlevel.checkpoint()
        slots.release(turn)

    async with trio.open_nursery() as nursery:
        # Started in reverse: the order still follows the reservations.
        nursery.start_soon(run, "fourth", fourth)
        nursery.start_soon(run, "second", second)
        nursery.start_soon(run, "first", first)
    assert served == ["first", "second", "fourth"]
    assert slots.reserve().is_set()  # every slot came back


def test_at_least_one_slot() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        OrderedSlots(0)
