"""End of text input is a normal end: ``echo question | python app.py`` prints the answer.

The program is the one a user writes from the docs: a ``BidiAgent`` with a tool, run with
``BidiTextIO``'s input and output. Its standard input is a pipe that ends after one line.
The agent must stop taking input, let the reply in progress finish, and return; the
program prints the answer and exits 0.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import trio

from tests.fixtures.openai import assert_no_openai_violations, validated_openai_emulator
from trio_bidi.testing import FunctionCallReply

ROOT = Path(__file__).resolve().parents[2]

APP = textwrap.dedent(
    '''
    import os

    import trio

    from trio_bidi import BidiAgent, tool
    from trio_bidi.io import BidiTextIO
    from trio_bidi.models.openai_realtime import BidiOpenAIRealtimeModel


    @tool
    def multiply(a: int, b: int) -> int:
        """Multiply two whole numbers."""
        return a * b


    async def main() -> None:
        model = BidiOpenAIRealtimeModel(
            client_config={
                "api_key": os.environ["OPENAI_API_KEY"],
                "url": os.environ["APP_REALTIME_URL"],
            }
        )
        agent = BidiAgent(model=model, tools=[multiply])
        text = BidiTextIO()
        await agent.run(inputs=[text.input()], outputs=[text.output()])


    trio.run(main)
    '''
)


async def test_piped_program_prints_the_answer_and_exits_0(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP, encoding="utf-8")
    async with validated_openai_emulator() as emulator:
        emulator.queue(FunctionCallReply("multiply", {"a": 6, "b": 7}))
        env = {
            **os.environ,
            "OPENAI_API_KEY": str(emulator.api_key),
            "APP_REALTIME_URL": emulator.url,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        with trio.fail_after(30):
            result = await trio.run_process(
                [sys.executable, str(app)],
                stdin=b"What is 6 * 7?\n",
                capture_stdout=True,
                capture_stderr=True,
                env=env,
                check=False,
            )
        messages = emulator.client_messages
        closed = all(session.closed.is_set() for session in emulator.sessions)
    assert_no_openai_violations(emulator)
    stdout, stderr = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, stderr
    assert stderr == ""
    assert '[tool call] multiply({"a": 6, "b": 7})' in stdout
    assert "[tool result] multiply success: 42" in stdout
    assert "Assistant: The result is 42." in stdout
    # The answer came before the end: the agent waited for the reply, then closed.
    assert stdout.index("Assistant: The result is 42.") < stdout.index("[closed]")
    assert closed
    typed = [
        part["text"]
        for m in messages
        if m["type"] == "conversation.item.create" and m["item"].get("role") == "user"
        for part in m["item"]["content"]
    ]
    assert typed == ["What is 6 * 7?"]
