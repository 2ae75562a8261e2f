"""The Strands usage example, ported, prints what Strands prints (OpenAI Realtime emulator).

strands_example.py is the program as a Strands 1.40 user writes it; ported_example.py is
the port. Both run against the same emulator replies. What Strands printed is in
fixtures/strands_example_output.txt, recorded by running Strands itself
(record_strands_output.py; Strands 1.40 races against the service's response state and
sometimes hangs, so it is not run in the suite).
"""

from __future__ import annotations

import pathlib
import sys

from trio_bidi.models import BidiOpenAIRealtimeModel
from trio_bidi.testing import FunctionCallReply, OpenAIRealtimeEmulator, SpokenReply

from . import ported_example

HERE = pathlib.Path(__file__).parent
DOC = HERE.parents[1] / "docs" / "porting.md"
STRANDS_OUTPUT = HERE / "fixtures" / "strands_example_output.txt"


def script_replies(emulator: OpenAIRealtimeEmulator) -> None:
    """The replies both versions of the example get."""
    emulator.queue(FunctionCallReply("calculator", {"expression": "25 * 48"}))
    emulator.queue(SpokenReply(text="25 times 48 is 1200."))
    emulator.queue(FunctionCallReply("stop_conversation", {}))


async def test_the_ported_example_prints_what_strands_prints() -> None:
    printed: list[str] = []
    async with OpenAIRealtimeEmulator() as emulator:
        script_replies(emulator)
        model = BidiOpenAIRealtimeModel(
            model_id="gpt-realtime",
            client_config={"api_key": emulator.api_key, "url": emulator.url},
        )
        await ported_example.main(model, show=printed.append)
    assert printed == STRANDS_OUTPUT.read_text(encoding="utf-8").splitlines()


def test_the_guide_shows_this_code() -> None:
    source = pathlib.Path(ported_example.__file__).read_text(encoding="utf-8")
    body = source[source.index("from typing import Any") :]
    assert body.strip() in DOC.read_text(encoding="utf-8")
    assert sys.modules[ported_example.__name__] is ported_example
