"""Shared helpers for the agent tests (scripted provider events, collecting output)."""

from __future__ import annotations

import base64
from typing import Any, TypeVar

from trio_bidi import (
    BidiAgent,
    BidiAudioInputEvent,
    BidiResponseCompleteEvent,
    BidiResponseStartEvent,
    BidiTranscriptStreamEvent,
    ToolUseStreamEvent,
)

E = TypeVar("E")


def transcript(
    text: str, role: str = "assistant", *, final: bool = True
) -> BidiTranscriptStreamEvent:
    return BidiTranscriptStreamEvent(
        delta={"text": text},
        text=text,
        role=role,
        is_final=final,
        current_transcript=text,  # type: ignore[arg-type]
    )


def reply(response_id: str, text: str) -> list[Any]:
    """A whole assistant turn: start, final transcript, complete."""
    return [
        BidiResponseStartEvent(response_id),
        transcript(text),
        BidiResponseCompleteEvent(response_id, "complete"),
    ]


def tool_use(tool_use_id: str, name: str, /, **tool_input: Any) -> ToolUseStreamEvent:
    return ToolUseStreamEvent(
        delta={"toolUse": {"input": str(tool_input)}},
        current_tool_use={"toolUseId": tool_use_id, "name": name, "input": tool_input},
    )


def audio(ms: int, rate: int = 16000, fill: int = 0) -> BidiAudioInputEvent:
    """``ms`` milliseconds of 16-bit mono PCM."""
    data = bytes([fill % 256]) * (rate * ms // 1000 * 2)
    return BidiAudioInputEvent(base64.b64encode(data).decode(), "pcm", rate, 1)  # type: ignore[arg-type]


async def receive_until(agent: BidiAgent, kind: type[E], count: int = 1) -> list[Any]:
    """Collect output events until ``count`` events of ``kind`` arrived (inclusive)."""
    events: list[Any] = []
    seen = 0
    async for event in agent.receive():
        events.append(event)
        if isinstance(event, kind):
            seen += 1
            if seen == count:
                return events
    raise AssertionError(f"receive() ended before {count} {kind.__name__}: {events!r}")


def of_type(events: list[Any], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]
