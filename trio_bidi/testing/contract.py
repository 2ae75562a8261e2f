"""A reusable pytest suite that checks a provider keeps the model contract.

Subclass [`BidiModelContract`][trio_bidi.testing.contract.BidiModelContract] in a test module (the
subclass's name must start with ``Test``) and implement
[`harness`][trio_bidi.testing.contract.BidiModelContract.harness], an async context manager that
starts whatever the provider talks to (an emulator) and yields a
[`ContractHarness`][trio_bidi.testing.contract.ContractHarness]::

    class TestMyProviderContract(BidiModelContract):
        @asynccontextmanager
        async def harness(self, *, time_limit_s=None):
            async with run_my_emulator() as emulator:
                yield MyHarness(model=MyModel(url=emulator.url, time_limit_s=time_limit_s),
                                emulator=emulator)

The suite needs ``pytest-trio`` with ``trio_mode = true``.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

import trio
import trio.testing

from ..errors import BidiConnectionError, BidiModelTimeoutError, BidiStateError
from ..events import BidiConnectionStartEvent, BidiTextInputEvent
from ..models._base import BidiConnection, BidiModel

__all__ = ["BidiModelContract", "ContractHarness"]


class ContractHarness(Protocol):
    """What a provider's test gives the contract suite."""

    @property
    def model(self) -> BidiModel:
        """A model pointed at the running peer."""
        ...

    async def drop_connection(self) -> None:
        """Make the peer end the current connection abruptly (no clean close)."""
        ...


def _child_task_count() -> int:
    task = trio.lowlevel.current_task()
    return sum(len(nursery.child_tasks) for nursery in task.child_nurseries)


async def _first_event(connection: BidiConnection) -> object:
    with trio.fail_after(10):
        async for event in connection.receive():
            return event
    raise AssertionError("receive() ended before the connection start event")


class BidiModelContract:
    """The contract tests; see the module docstring for how to use them."""

    def harness(
        self, *, time_limit_s: float | None = None
    ) -> AbstractAsyncContextManager[ContractHarness]:
        """Start the peer and yield a harness whose model has this time limit."""
        raise TypeError(f"{type(self).__name__} must implement harness()")

    async def test_model_has_audio_config(self) -> None:
        """The model advertises its audio configuration and a model id."""
        async with self.harness() as harness:
            audio = harness.model.config["audio"]
            assert {"input_rate", "output_rate", "channels", "format"} <= set(audio)
            assert isinstance(harness.model.model_id, str)
            assert harness.model.model_id

    async def test_first_event_is_connection_start(self) -> None:
        """The first event of a connection is its start event."""
        async with self.harness() as harness, harness.model.connect() as connection:
            event = await _first_event(connection)
            assert isinstance(event, BidiConnectionStartEvent)
            assert event.connection_id == connection.connection_id
            assert event.model == harness.model.model_id

    async def test_send_text_while_open(self) -> None:
        """An open connection accepts a text input."""
        async with self.harness() as harness, harness.model.connect() as connection:
            await _first_event(connection)
            await connection.send(BidiTextInputEvent("hello"))

    async def test_send_after_close_is_a_state_error(self) -> None:
        """Sending on a closed connection raises BidiStateError."""
        async with self.harness() as harness:
            async with harness.model.connect() as connection:
                await _first_event(connection)
            try:
                await connection.send(BidiTextInputEvent("too late"))
            except BidiStateError:
                pass
            else:
                raise AssertionError("send after close did not raise BidiStateError")

    async def test_close_is_idempotent_and_ends_receive(self) -> None:
        """aclose() can be called repeatedly and ends receive() normally."""
        async with self.harness() as harness:
            async with harness.model.connect() as connection:
                await _first_event(connection)
                await connection.aclose()
                await connection.aclose()
                with trio.fail_after(5):
                    remaining = [event async for event in connection.receive()]
                assert all(not isinstance(e, BidiConnectionStartEvent) for e in remaining)
            await connection.aclose()

    async def test_error_exit_leaves_no_task(self) -> None:
        """Leaving the block by an exception leaves no task behind."""
        before = _child_task_count()
        async with self.harness() as harness:
            inside = _child_task_count()
            try:
                async with harness.model.connect() as connection:
                    await _first_event(connection)
                    raise KeyError("application failure")
            except KeyError:
                pass
            assert _child_task_count() == inside
        assert _child_task_count() == before

    async def test_cancellation_leaves_no_task(self) -> None:
        """Leaving the block by cancellation leaves no task behind."""
        async with self.harness() as harness:
            inside = _child_task_count()
            with trio.move_on_after(0.2) as scope:
                async with harness.model.connect() as connection:
                    await _first_event(connection)
                    await trio.sleep_forever()
            assert scope.cancelled_caught
            assert _child_task_count() == inside

    async def test_deadline_raises_timeout(self) -> None:
        """At the deadline receive() raises BidiModelTimeoutError."""
        async with (
            self.harness(time_limit_s=0.3) as harness,
            harness.model.connect() as connection,
        ):
            assert connection.deadline < trio.current_time() + 1
            try:
                with trio.fail_after(10):
                    async for _event in connection.receive():
                        pass
            except BidiModelTimeoutError:
                pass
            else:
                raise AssertionError("receive() ended without BidiModelTimeoutError")

    async def test_peer_disconnect_raises_connection_error(self) -> None:
        """A dropped connection raises BidiConnectionError from receive() and send()."""
        async with self.harness() as harness, harness.model.connect() as connection:
            await _first_event(connection)
            await harness.drop_connection()
            try:
                with trio.fail_after(10):
                    async for _event in connection.receive():
                        pass
            except BidiConnectionError:
                pass
            else:
                raise AssertionError("receive() ended without BidiConnectionError")
            try:
                await connection.send(BidiTextInputEvent("after the drop"))
            except BidiConnectionError:
                pass
            else:
                raise AssertionError("send after a drop did not raise BidiConnectionError")

    async def test_failure_is_raised_fresh_each_time(self) -> None:
        """After the peer broke the connection, each call raises a new, chained exception."""
        async with self.harness() as harness, harness.model.connect() as connection:
            await _first_event(connection)
            await harness.drop_connection()
            with trio.fail_after(10):
                try:
                    async for _event in connection.receive():
                        pass
                except BidiConnectionError:
                    pass
            raised: list[BaseException] = []
            for _ in range(3):
                try:
                    await connection.send(BidiTextInputEvent("after the drop"))
                except BidiConnectionError as exc:
                    raised.append(exc)
            assert len(raised) == 3, "send after a drop did not raise BidiConnectionError"
            assert len({id(exc) for exc in raised}) == 3, "the same exception object was re-raised"
            causes = {id(exc.__cause__) for exc in raised}
            assert len(causes) == 1, "each error should be chained to the one stored failure"
            assert raised[0].__cause__ is not None, "the error is not chained to the failure"

    async def test_aclose_is_a_checkpoint_when_already_closed(self) -> None:
        """aclose() of a closed connection is still a checkpoint (Trio's contract)."""
        async with self.harness() as harness, harness.model.connect() as connection:
            await connection.aclose()
            with trio.testing.assert_checkpoints():
                await connection.aclose()

    async def test_send_is_a_cancel_point(self) -> None:
        """send() in a cancelled scope raises Cancelled (nothing is sent)."""
        async with self.harness() as harness, harness.model.connect() as connection:
            await _first_event(connection)
            with trio.CancelScope() as scope:
                scope.cancel()
                await connection.send(BidiTextInputEvent("never sent"))
            assert scope.cancelled_caught, "send() was not a cancel point"
