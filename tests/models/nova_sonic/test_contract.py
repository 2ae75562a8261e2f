"""The model contract (trio_bidi.testing.contract) for BidiNovaSonicModel over loopback TLS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs

from tests.fixtures.nova import assert_no_nova_violations, nova_model, validated_nova_emulator
from trio_bidi.models.nova_sonic import BidiNovaSonicModel
from trio_bidi.testing._nova_emulator import NovaSonicEmulator
from trio_bidi.testing.contract import BidiModelContract


@attrs.define
class NovaHarness:
    model: BidiNovaSonicModel
    emulator: NovaSonicEmulator

    async def drop_connection(self) -> None:
        await self.emulator.drop()


class TestNovaSonicContract(BidiModelContract):
    @asynccontextmanager
    async def harness(self, *, time_limit_s: float | None = None) -> AsyncIterator[NovaHarness]:
        async with validated_nova_emulator() as emulator:
            client = {} if time_limit_s is None else {"time_limit_s": time_limit_s}
            yield NovaHarness(nova_model(emulator, **client), emulator)
        assert_no_nova_violations(emulator)
