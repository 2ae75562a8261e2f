"""The model contract (trio_bidi.testing.contract) for BidiGeminiLiveModel over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs

from tests.fixtures.gemini import assert_no_violations, gemini_model, validated_gemini_emulator
from trio_bidi.models import BidiGeminiLiveModel
from trio_bidi.testing import GeminiLiveEmulator
from trio_bidi.testing.contract import BidiModelContract


@attrs.define
class GeminiHarness:
    model: BidiGeminiLiveModel
    emulator: GeminiLiveEmulator

    async def drop_connection(self) -> None:
        session = await self.emulator.wait_session()
        await session.drop()


class TestGeminiLiveContract(BidiModelContract):
    @asynccontextmanager
    async def harness(self, *, time_limit_s: float | None = None) -> AsyncIterator[GeminiHarness]:
        async with validated_gemini_emulator() as emulator:
            client = {} if time_limit_s is None else {"time_limit_s": time_limit_s}
            yield GeminiHarness(gemini_model(emulator, None, **client), emulator)
        assert_no_violations(emulator)
