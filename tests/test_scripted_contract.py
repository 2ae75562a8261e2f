"""The contract suite, run against the in-memory ScriptedModel (and ScriptedModel's own API)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import pytest
import trio

from trio_bidi.errors import BidiConnectionError, BidiModelTimeoutError, BidiStateError
from trio_bidi.events import (
    BidiConnectionStartEvent,
    BidiResponseStartEvent,
    BidiTextInputEvent,
)
from trio_bidi.models import BidiConnection, BidiModel
from trio_bidi.testing import ScriptedModel
from trio_bidi.testing.contract import BidiModelContract


@attrs.define
class ScriptedHarness:
    model: ScriptedModel

    async def drop_connection(self) -> None:
        (await self.model.wait_connection()).disconnect()


class TestScriptedModelContract(BidiModelContract):
    @asynccontextmanager
    async def harness(self, *, time_limit_s: float | None = None) -> AsyncIterator[ScriptedHarness]:
        await trio.lowlevel.checkpoint()
        yield ScriptedHarness(ScriptedModel(time_limit_s=time_limit_s))


def test_scripted_model_is_a_bidi_model() -> None:
    model = ScriptedModel()
    assert isinstance(model, BidiModel)


async def test_responder_and_records() -> None:
    model = ScriptedModel(responder=lambda event: [BidiResponseStartEvent("r1")])
    async with model.connect(
        system_prompt="sys", messages=[{"role": "user", "content": [{"text": "a"}]}], handle="h"
    ) as conn:
        assert isinstance(conn, BidiConnection)
        await conn.send(BidiTextInputEvent("hi"))
        received = []
        async for event in conn.receive():
            received.append(event)
            if len(received) == 2:
                break
        assert isinstance(received[0], BidiConnectionStartEvent)
        assert received[1] == BidiResponseStartEvent("r1")
        assert conn.sent == [BidiTextInputEvent("hi")]
        assert conn.system_prompt == "sys"
        assert conn.given_restart_config == {"handle": "h"}
        assert conn.messages[0]["content"] == [{"text": "a"}]


async def test_connect_failures_are_raised_in_order() -> None:
    model = ScriptedModel(connect_failures=[BidiConnectionError("refused")])
    with pytest.raises(BidiConnectionError, match="refused"):
        async with model.connect():
            pass
    async with model.connect() as conn:
        assert conn.is_open


async def test_expire_with_custom_error(autojump_clock: trio.abc.Clock) -> None:
    model = ScriptedModel()
    async with model.connect() as conn:
        conn.expire(BidiModelTimeoutError("go away", handle="h2"))
        with pytest.raises(BidiModelTimeoutError) as info:
            async for _ in conn.receive():
                pass
        assert info.value.restart_config == {"handle": "h2"}


async def test_time_limit_with_autojump(autojump_clock: trio.abc.Clock) -> None:
    model = ScriptedModel(time_limit_s=480)
    async with model.connect() as conn:
        start = trio.current_time()
        assert conn.deadline == pytest.approx(start + 480)
        with pytest.raises(BidiModelTimeoutError, match="480 s"):
            async for _ in conn.receive():
                pass
        assert trio.current_time() - start == pytest.approx(480)


async def test_receive_before_open_is_a_state_error() -> None:
    model = ScriptedModel()
    from trio_bidi.testing._scripted import ScriptedConnection

    conn = ScriptedConnection(
        model, 0, system_prompt=None, tools=(), messages=(), restart_config={}
    )
    with pytest.raises(BidiStateError, match="not open yet"):
        conn.receive()
    with pytest.raises(BidiStateError, match="is new"):
        await conn.send(BidiTextInputEvent("x"))
