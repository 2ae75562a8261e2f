"""The OpenAI API key never reaches a log record or an exception message.

A whole session runs against the emulator with every logger at DEBUG; a hostile server
echoes the key in its 401 body and in its close reason.
"""

from __future__ import annotations

import functools
import logging
import traceback

import pytest
import trio

from tests.fixtures.openai import openai_model, validated_openai_emulator
from tests.models._shared import TOOL_SPEC, collect_until, is_complete
from trio_bidi._websocket import WebSocket, serve_websocket
from trio_bidi.errors import BidiConnectionError
from trio_bidi.events import BidiTextInputEvent, ToolResultEvent, ToolUseStreamEvent
from trio_bidi.models import BidiOpenAIRealtimeModel
from trio_bidi.testing import EmulatedOpenAISession, FunctionCallReply

SECRET = "sk-proj-SECRET0123456789abcdef"


def _assert_no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        text = record.getMessage()
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        assert SECRET not in text, f"{record.name}: {text[:300]}"


def _provider_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("trio_bidi.models")]


async def test_a_whole_session_at_debug_logs_no_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with validated_openai_emulator(api_key=SECRET) as emulator:
        emulator.queue(FunctionCallReply("get_weather", {"city": "Oslo"}, call_id="call_1"))
        model = openai_model(emulator)
        assert SECRET not in repr(model) + repr(model.client_settings)
        async with model.connect(tools=[TOOL_SPEC]) as connection:
            await connection.send(BidiTextInputEvent("weather?"))
            events = await collect_until(connection, is_complete)
            assert any(isinstance(e, ToolUseStreamEvent) for e in events)
            await connection.send(
                ToolResultEvent({"toolUseId": "call_1", "status": "success", "content": []})
            )
            await collect_until(connection, is_complete)
            await emulator.drop()
            with pytest.raises(BidiConnectionError) as info:
                await collect_until(connection, is_complete)
        assert SECRET not in str(info.value)
    assert _provider_records(caplog), "the session logged nothing at DEBUG"
    _assert_no_secret_in_logs(caplog)


async def test_a_401_that_echoes_the_key_does_not_put_it_in_the_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    def refuse(request: object) -> tuple[int, str]:
        return 401, f"Incorrect API key provided: {SECRET}. You can find your API key..."

    async def never(ws: WebSocket) -> None:  # pragma: no cover - the upgrade is refused
        raise AssertionError("no connection expected")

    async with trio.open_nursery() as nursery:
        server = await nursery.start(functools.partial(serve_websocket, never, authorize=refuse))
        model = BidiOpenAIRealtimeModel(
            client_config={"api_key": SECRET, "url": f"{server.url}/v1/realtime"}
        )
        with pytest.raises(BidiConnectionError) as info:
            async with model.connect():
                pass
        server.close()
    assert info.value.code == 401
    assert SECRET not in str(info.value)
    assert "[redacted]" in str(info.value) or "401" in str(info.value)
    for record in _provider_records(caplog):
        assert SECRET not in record.getMessage()


async def test_a_close_reason_that_echoes_the_key_is_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    async def close_with_key(session: EmulatedOpenAISession, message: object) -> None:
        await session.close(1008, f"bad key {SECRET}")

    async with validated_openai_emulator(api_key=SECRET) as emulator:
        emulator.on_client("response.create", close_with_key, replace_default=True)
        async with openai_model(emulator).connect() as connection:
            await connection.send(BidiTextInputEvent("hello"))
            with pytest.raises(BidiConnectionError) as info:
                await collect_until(connection, is_complete)
    assert info.value.code == 1008
    assert SECRET not in str(info.value)
    assert info.value.reason == "bad key [redacted]"
    for record in _provider_records(caplog):
        assert SECRET not in record.getMessage()
