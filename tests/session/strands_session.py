"""Write (or read back) a BidiAgent session with Strands 1.40 itself.

Run with Strands' own Python (not this project's):

    python3 -m venv /work/strands140 && /work/strands140/bin/pip install strands-agents==1.40.0
    /work/strands140/bin/python tests/session/strands_session.py write tests/session/fixtures
    /work/strands140/bin/python tests/session/strands_session.py read <storage_dir> <session_id>

``write`` runs a short conversation through Strands' BidiAgent loop with a scripted model
(no network): a greeting, a transcript, a tool call and its result, and agent state; the
FileSessionManager stores it as ``<dir>/session_strands-written/``. ``read`` restores an
agent from a session written by anyone (trio_bidi's tests write one) and prints its
messages and state as JSON, which is what the tests compare.
"""

import asyncio
import json
import sys

from strands import tool
from strands.experimental.bidi import BidiAgent
from strands.experimental.bidi.types.events import (
    BidiConnectionStartEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiTranscriptStreamEvent,
)
from strands.session.file_session_manager import FileSessionManager
from strands.types._events import ToolUseStreamEvent


@tool
def get_weather(city: str) -> str:
    """Get the weather of a city.

    Args:
        city: The city.
    """
    return f"Sunny in {city}"


class ScriptedModel:
    """Replays a fixed turn once the agent sends its first text."""

    model_id = "scripted"

    def __init__(self):
        self.config = {}
        self._queue = asyncio.Queue()

    async def start(self, system_prompt=None, tools=None, messages=None, **kwargs):
        await self._queue.put(BidiConnectionStartEvent("conn-1", self.model_id))

    async def stop(self):
        await self._queue.put(None)

    async def send(self, content):
        if getattr(content, "get", None) and content.get("type") == "bidi_text_input":
            for event in (
                BidiResponseStartEvent("resp-1"),
                BidiTranscriptStreamEvent(
                    {"text": "Let me check. ü"}, "Let me check. ü", "assistant", True
                ),
                ToolUseStreamEvent(
                    {
                        "toolUse": {
                            "toolUseId": "tool-1",
                            "name": "get_weather",
                            "input": {"city": "Lyon"},
                        }
                    },
                    {"toolUseId": "tool-1", "name": "get_weather", "input": {"city": "Lyon"}},
                ),
            ):
                await self._queue.put(event)
        elif getattr(content, "get", None) and content.get("type") == "tool_result":
            await self._queue.put(
                BidiTranscriptStreamEvent(
                    {"text": "It is sunny."}, "It is sunny.", "assistant", True
                )
            )
            await self._queue.put(BidiResponseCompleteEvent("resp-1", "complete"))

    async def receive(self):
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event


async def write(storage_dir):
    manager = FileSessionManager("strands-written", storage_dir=storage_dir)
    agent = BidiAgent(
        model=ScriptedModel(),
        tools=[get_weather],
        agent_id="voice",
        state={"user": "ada", "turns": 0},
        session_manager=manager,
    )
    await agent.start()
    await agent.send("What's the weather in Lyon?")
    seen = 0
    async for event in agent.receive():
        if event.get("type") == "bidi_response_complete":
            break
        seen += 1
    agent.state.set("turns", 1)
    await agent.stop()
    print(f"wrote session with {len(agent.messages)} messages ({seen} events)", file=sys.stderr)


def read(storage_dir, session_id):
    manager = FileSessionManager(session_id, storage_dir=storage_dir)
    agent = BidiAgent(model=ScriptedModel(), agent_id="voice", session_manager=manager)
    json.dump({"messages": agent.messages, "state": agent.state.get()}, sys.stdout)


if __name__ == "__main__":
    if sys.argv[1] == "write":
        asyncio.run(write(sys.argv[2]))
    else:
        read(sys.argv[2], sys.argv[3])
