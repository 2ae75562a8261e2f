"""The package's small concurrency helpers."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_bidi._util import PromptLock, receive_promptly, send_promptly


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
