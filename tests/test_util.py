"""The package's small concurrency helpers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from trio_bidi._util import (
    CALLS_PER_SCHEDULE_POINT,
    PromptLock,
    open_nursery_unwrapped,
    receive_promptly,
    send_promptly,
)


async def test_prompt_lock_serves_waiters_in_order_and_skips_cancelled_ones() -> None:
    lock = PromptLock()
    order: list[str] = []
    await lock.acquire()

    async def waiter(name: str, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            async with lock:
                order.append(name)
                await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        await nursery.start(waiter, "a")
        cancelled: trio.CancelScope = await nursery.start(waiter, "b")
        await nursery.start(waiter, "c")
        await trio.testing.wait_all_tasks_blocked()
        cancelled.cancel()  # leaves the line without ever holding the lock
        await trio.testing.wait_all_tasks_blocked()
        lock.release()
    assert order == ["a", "c"]
    assert not lock.locked()


async def test_prompt_lock_acquire_is_a_cancel_point_and_release_needs_a_holder() -> None:
    lock = PromptLock()
    with trio.CancelScope() as scope:
        scope.cancel()
        await lock.acquire()
    assert scope.cancelled_caught
    assert not lock.locked()
    with pytest.raises(RuntimeError, match="not held"):
        lock.release()


async def test_prompt_channel_helpers_wait_only_when_they_must() -> None:
    tx, rx = trio.open_memory_channel[int](1)
    await send_promptly(tx, 1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_promptly, tx, 2)  # full: waits for the receiver
        await trio.testing.wait_all_tasks_blocked()
        assert await receive_promptly(rx) == 1
        assert await receive_promptly(rx) == 2  # empty: waits for the sender
    with trio.CancelScope() as scope:
        scope.cancel()
        await receive_promptly(rx)
    assert scope.cancelled_caught


# ---------------------------------------------------------------- checkpoints


async def test_each_call_is_a_cancel_point_and_does_nothing_when_cancelled() -> None:
    tx, rx = trio.open_memory_channel[int](10)
    lock = PromptLock()
    tx.send_nowait(1)
    for _ in range(CALLS_PER_SCHEDULE_POINT * 2):  # whatever the shared counter says
        with trio.CancelScope() as scope:
            scope.cancel()
            await send_promptly(tx, 2)
        assert scope.cancelled_caught
        with trio.CancelScope() as scope:
            scope.cancel()
            await receive_promptly(rx)
        assert scope.cancelled_caught
        with trio.CancelScope() as scope:
            scope.cancel()
            await lock.acquire()
        assert scope.cancelled_caught
    assert rx.receive_nowait() == 1  # nothing sent, nothing taken
    with pytest.raises(trio.WouldBlock):
        rx.receive_nowait()
    assert not lock.locked()


async def test_every_run_of_calls_contains_a_schedule_point() -> None:
    tx, rx = trio.open_memory_channel[int](CALLS_PER_SCHEDULE_POINT * 4)
    lock = PromptLock()
    for _ in range(3):
        with trio.testing.assert_checkpoints():
            for index in range(CALLS_PER_SCHEDULE_POINT):
                await send_promptly(tx, index)
        with trio.testing.assert_checkpoints():
            for _ in range(CALLS_PER_SCHEDULE_POINT):
                await receive_promptly(rx)
        with trio.testing.assert_checkpoints():
            for _ in range(CALLS_PER_SCHEDULE_POINT):
                await lock.acquire()
                lock.release()


async def _starve(loop_body: Callable[[], Awaitable[None]], clock: trio.testing.MockClock) -> None:
    """Loop on ``loop_body`` (which never has to wait) under a deadline; a heartbeat
    task advances the clock each time it gets to run, so the deadline fires only if
    the loop lets the heartbeat run."""
    beats = 0

    async def heartbeat() -> None:
        nonlocal beats
        while True:
            beats += 1
            clock.jump(1)
            await trio.lowlevel.checkpoint()

    iterations = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(heartbeat)
        with trio.move_on_after(10) as scope:
            while iterations < 1_000_000:
                await loop_body()
                iterations += 1
        nursery.cancel_scope.cancel()
    assert scope.cancelled_caught, "the deadline never fired"
    assert beats >= 10
    assert iterations <= 11 * CALLS_PER_SCHEDULE_POINT


async def test_a_loop_that_never_waits_lets_others_run_and_deadlines_fire(
    mock_clock: trio.testing.MockClock,
) -> None:
    tx, rx = trio.open_memory_channel[int](1)

    async def send_then_drain() -> None:
        await send_promptly(tx, 1)
        rx.receive_nowait()

    await _starve(send_then_drain, mock_clock)

    async def refill_then_receive() -> None:
        tx.send_nowait(1)
        await receive_promptly(rx)

    await _starve(refill_then_receive, mock_clock)
    lock = PromptLock()

    async def take_and_give_back() -> None:
        await lock.acquire()
        lock.release()

    await _starve(take_and_give_back, mock_clock)


# ---------------------------------------------------------------- exception groups


def _raise_chained() -> None:
    try:
        raise KeyError("first")
    except KeyError:
        raise ValueError("second") from OSError("cause")


async def test_one_error_comes_out_as_itself_with_context_cause_and_traceback() -> None:
    async def child() -> None:
        _raise_chained()

    with pytest.raises(ValueError, match="second") as info:
        async with open_nursery_unwrapped() as nursery:
            nursery.start_soon(child)
    error = info.value
    assert isinstance(error.__context__, KeyError)
    assert isinstance(error.__cause__, OSError)
    assert error.__suppress_context__
    frames = [entry.name for entry in info.traceback]
    assert "_raise_chained" in frames
    assert "child" in frames


async def test_an_error_without_context_keeps_none() -> None:
    with pytest.raises(KeyError) as info:
        async with open_nursery_unwrapped():
            raise KeyError("body")
    assert info.value.__context__ is None
    assert info.value.__cause__ is None


async def test_several_errors_stay_a_group() -> None:
    async def fail(exc: Exception) -> None:
        raise exc

    with pytest.RaisesGroup(KeyError, ValueError):
        async with open_nursery_unwrapped() as nursery:
            nursery.start_soon(fail, KeyError("a"))
            nursery.start_soon(fail, ValueError("b"))
            await trio.sleep_forever()


async def test_keyboard_interrupt_stays_itself() -> None:
    interrupt = KeyboardInterrupt("stop")
    with pytest.raises(KeyboardInterrupt) as info:
        async with open_nursery_unwrapped():
            raise interrupt
    assert info.value is interrupt

    async def fail_when_cancelled() -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise ValueError("beside")

    async def interrupted_beside_an_error() -> None:
        async with open_nursery_unwrapped() as nursery:
            nursery.start_soon(fail_when_cancelled)
            await trio.testing.wait_all_tasks_blocked()
            raise KeyboardInterrupt("stop")

    with pytest.raises(KeyboardInterrupt) as info:
        await interrupted_beside_an_error()
    group = info.value.__cause__
    assert isinstance(group, BaseExceptionGroup)
    assert {type(e) for e in group.exceptions} == {KeyboardInterrupt, ValueError}


async def test_an_outer_cancel_beside_one_error_gives_way_to_the_error() -> None:
    async def fail_while_cancelled() -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise ValueError("cleanup failed")

    async def cancelled_from_outside(outer: trio.CancelScope) -> None:
        async with open_nursery_unwrapped() as nursery:
            nursery.start_soon(fail_while_cancelled)
            await trio.testing.wait_all_tasks_blocked()
            outer.cancel()
            await trio.sleep_forever()

    with trio.CancelScope() as outer, pytest.raises(ValueError, match="cleanup failed"):
        await cancelled_from_outside(outer)
