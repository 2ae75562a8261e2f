"""Shared pieces of the session tests: the Strands-written fixture and JSON readers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from trio_bidi import BidiResponseCompleteEvent, BidiResponseStartEvent, BidiTranscriptStreamEvent

FIXTURES = Path(__file__).parent / "fixtures"
STRANDS_SESSION = "strands-written"
STRANDS_AGENT_DIR = Path(f"session_{STRANDS_SESSION}") / "agents" / "agent_voice"


def copy_fixture(target: Path) -> Path:
    shutil.copytree(FIXTURES / f"session_{STRANDS_SESSION}", target / f"session_{STRANDS_SESSION}")
    return target


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def stored_messages(agent_dir: Path) -> list[dict[str, Any]]:
    files = sorted(
        (agent_dir / "messages").glob("message_*.json"),
        key=lambda p: int(p.stem.removeprefix("message_")),
    )
    return [read_json(p) for p in files]


def reply(response_id: str, text: str) -> list[Any]:
    return [
        BidiResponseStartEvent(response_id),
        BidiTranscriptStreamEvent({"text": text}, text, "assistant", True, text),
        BidiResponseCompleteEvent(response_id, "complete"),
    ]
