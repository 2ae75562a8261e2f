"""The Gemini API key never reaches a log record or an exception message.

A whole session runs against the emulator with every logger at DEBUG; the server echoes
the key in a close reason while opening and while the session runs.
"""

from __future__ import annotations

import logging
import traceback

import pytest

from tests.fixtures.gemini import gemini_model, validated_gemini_emulator
from tests.models._shared import TOOL_SPEC, collect_until, is_complete
from trio_bidi.errors import BidiConnectionError
from trio_bidi.events import BidiTextInputEvent, ToolResultEvent, ToolUseStreamEvent
from trio_bidi.testing import FunctionCallReply

SECRET = "AIzaSySECRET0123456789abcdefghijklmno"


def _assert_no_secret_in_logs(caplog: pytest.LogCaptureFixture, *, expect_records: bool) -> None:
    checked = 0
    for record in caplog.records:
        checked += 1
        text = record.getMessage()
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        assert SECRET not in text, f"{record.name}: {text[:300]}"
    assert checked or not expect_records, "nothing was logged at DEBUG"


async def test_a_whole_session_at_debug_logs_no_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with validated_gemini_emulator(api_key=SECRET) as emulator:
        emulator.queue(FunctionCallReply("get_weather", {"city": "Oslo"}, call_id="call-1"))
        model = gemini_model(emulator)
        assert SECRET not in repr(model) + repr(model.client_settings)
        async with model.connect(tools=[TOOL_SPEC]) as connection:
            await connection.send(BidiTextInputEvent("weather?"))
            await collect_until(connection, lambda e: isinstance(e, ToolUseStreamEvent))
            await connection.send(
                ToolResultEvent({"toolUseId": "call-1", "status": "success", "content": []})
            )
            await collect_until(connection, is_complete)
            await emulator.send_error(f"API key {SECRET} was revoked", code=1008)
            with pytest.raises(BidiConnectionError) as info:
                await collect_until(connection, is_complete)
    assert info.value.code == 1008
    assert SECRET not in str(info.value)
    assert info.value.reason == "API key [redacted] was revoked"
    _assert_no_secret_in_logs(caplog, expect_records=True)


async def test_a_refused_setup_that_echoes_the_key_is_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with validated_gemini_emulator(api_key=SECRET) as emulator:
        emulator.fail_next_setup(1007, f"API key not valid: {SECRET}")
        with pytest.raises(BidiConnectionError) as info:
            async with gemini_model(emulator).connect():
                pass
    assert info.value.code == 1007
    assert SECRET not in str(info.value)
    assert "[redacted]" in str(info.value)
    _assert_no_secret_in_logs(caplog, expect_records=False)
