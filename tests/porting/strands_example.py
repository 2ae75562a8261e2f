"""The usage example as written for Strands 1.40 (run with Strands' own Python).

    /work/strands140/bin/pip install strands-agents==1.40.0 websockets
    STRANDS_OPENAI_URL=ws://127.0.0.1:PORT/v1/realtime OPENAI_API_KEY=test-key \\
        /work/strands140/bin/python tests/porting/strands_example.py

Strands' OpenAI provider has a fixed endpoint, so this script points its module constant
at STRANDS_OPENAI_URL (the test's emulator); the rest is the program a Strands user writes.
test_ported_example.py runs it against the same emulator script as the port and compares
what both print.
"""

import asyncio
import os

from strands import tool
from strands.experimental.bidi import BidiAgent
from strands.experimental.bidi.models import BidiOpenAIRealtimeModel
from strands.experimental.bidi.models import openai_realtime as _endpoint
from strands.experimental.bidi.tools import stop_conversation

_endpoint.OPENAI_REALTIME_URL = os.environ["STRANDS_OPENAI_URL"]


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression.

    Args:
        expression: The expression, for example "25 * 48".
    """
    left, operator, right = expression.split()
    a, b = float(left), float(right)
    value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[operator]
    return f"{value:g}"


async def main(model, show=print):
    agent = BidiAgent(
        model=model,
        tools=[calculator, stop_conversation],
        system_prompt="You are a helpful voice assistant. Keep answers short.",
    )
    # Strands 1.40 refuses a recorded direct call on a BidiAgent, so the example opts out.
    checked = agent.tool.calculator(expression="2 + 2", record_direct_tool_call=False)
    show(f"direct: {checked['content'][0]['text']}")

    await agent.start()
    await agent.send("What is 25 * 48?")
    async for event in agent.receive():
        kind = event.get("type")
        if kind == "bidi_transcript_stream" and event["is_final"]:
            show(f"{event['role']}: {event['text']}")
        elif kind == "tool_use_stream":
            tool_use = event["delta"]["toolUse"]
            show(f"tool: {tool_use['name']}({tool_use['input']})")
        elif kind == "tool_result":
            show(f"result: {event['tool_result']['content'][0]['text']}")
        elif kind == "bidi_response_complete":
            if event["stop_reason"] == "complete":  # the answer, not a tool call
                await agent.send("stop conversation")
        elif kind == "bidi_connection_close":
            show(f"closed: {event['reason']}")
    await agent.stop()


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore", DeprecationWarning)  # stop_conversation is deprecated
    asyncio.run(main(BidiOpenAIRealtimeModel(model_id="gpt-realtime")))
