"""The Strands bidi usage example, ported (docs/porting.md shows it next to the original).

Only the imports changed, plus what Trio asks for: ``async with agent`` instead of
``agent.start()``/``agent.stop()``, ``trio.run`` instead of ``asyncio.run``, and
``await`` on the direct tool call.
"""

from typing import Any

import trio

from trio_bidi import BidiAgent, stop_conversation, tool
from trio_bidi.models import BidiOpenAIRealtimeModel


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


async def main(model: BidiOpenAIRealtimeModel, show: Any = print) -> None:
    agent = BidiAgent(
        model=model,
        tools=[calculator, stop_conversation],
        system_prompt="You are a helpful voice assistant. Keep answers short.",
    )
    # Strands 1.40 refuses a recorded direct call on a BidiAgent, so the example opts out.
    checked = await agent.tool.calculator(expression="2 + 2", record_direct_tool_call=False)
    show(f"direct: {checked['content'][0]['text']}")

    async with agent:
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


if __name__ == "__main__":
    trio.run(main, BidiOpenAIRealtimeModel(model_id="gpt-realtime"))
