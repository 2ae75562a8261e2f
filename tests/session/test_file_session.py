"""FileSessionManager: Strands 1.40's layout and JSON, both ways, atomic and single-writer."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import trio

from trio_bidi import BidiAgent, BidiResponseCompleteEvent, tool
from trio_bidi.session import FileSessionManager, SessionAgent, SessionException
from trio_bidi.testing import ScriptedModel

from ._helpers import (
    FIXTURES,
    STRANDS_AGENT_DIR,
    STRANDS_SESSION,
    copy_fixture,
    read_json,
    reply,
    stored_messages,
)

STRANDS_PYTHON = Path(os.environ.get("STRANDS_PYTHON", "/work/strands140/bin/python"))


async def _one_turn(agent: BidiAgent, model: ScriptedModel, text: str, answer: str) -> None:
    connection = await model.wait_connection()
    await agent.send(text)
    connection.push(*reply(f"r-{len(agent.messages)}", answer))
    async for event in agent.receive():
        if isinstance(event, BidiResponseCompleteEvent):
            return


async def test_a_strands_written_session_continues_here(tmp_path: Path) -> None:
    storage = copy_fixture(tmp_path)
    fixture_agent = FIXTURES / STRANDS_AGENT_DIR
    strands_messages = [m["message"] for m in stored_messages(fixture_agent)]
    assert len(strands_messages) == 5  # text, transcript, tool use, tool result, transcript

    model = ScriptedModel()
    manager = FileSessionManager(STRANDS_SESSION, storage_dir=storage)
    agent = BidiAgent(model=model, agent_id="voice", session_manager=manager)
    async with agent:
        connection = await model.wait_connection()
        assert agent.messages == strands_messages
        assert connection.messages == strands_messages  # the model got the history
        assert dict(agent.state) == {"user": "ada", "turns": 1}
        await _one_turn(agent, model, "And tomorrow?", "Rain tomorrow.")
        agent.state["turns"] = 2

    agent_dir = storage / STRANDS_AGENT_DIR
    records = stored_messages(agent_dir)
    assert [r["message_id"] for r in records] == list(range(7))
    assert records[5]["message"] == {"role": "user", "content": [{"text": "And tomorrow?"}]}
    assert records[6]["message"] == {"role": "assistant", "content": [{"text": "Rain tomorrow."}]}
    # Same keys, in the same order, as the records Strands wrote.
    assert list(records[5]) == list(records[0])
    written = read_json(agent_dir / "agent.json")
    original = read_json(fixture_agent / "agent.json")
    assert list(written) == list(original)
    assert written["state"] == {"user": "ada", "turns": 2}
    assert written["created_at"] == original["created_at"]
    assert written["_internal_state"] == original["_internal_state"]
    assert read_json(storage / f"session_{STRANDS_SESSION}" / "session.json") == read_json(
        FIXTURES / f"session_{STRANDS_SESSION}" / "session.json"
    )


async def test_a_session_round_trips_between_agents(tmp_path: Path) -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers.

        Args:
            a: First.
            b: Second.
        """
        return a + b

    model = ScriptedModel()
    first = BidiAgent(
        model=model,
        tools=[add],
        state={"n": 1},
        messages=[{"role": "user", "content": [{"text": "earlier"}]}],
        session_manager=FileSessionManager("round", storage_dir=tmp_path),
    )
    async with first:
        await _one_turn(first, model, "hello ✓", "hi")
        assert await first.tool.add(a=2, b=3) == {
            "toolUseId": first.messages[-1]["content"][0]["toolResult"]["toolUseId"],
            "status": "success",
            "content": [{"json": 5}],
        }
        first.state["n"] = 2
    raw = (tmp_path / "session_round/agents/agent_default/messages/message_1.json").read_text(
        encoding="utf-8"
    )
    assert "hello ✓" in raw  # UTF-8 kept as is, as Strands writes it

    second = BidiAgent(
        model=ScriptedModel(), session_manager=FileSessionManager("round", storage_dir=tmp_path)
    )
    assert second.messages == []  # restored when the agent starts, off the Trio thread
    async with second:
        assert second.messages == first.messages
        assert dict(second.state) == {"n": 2}
    assert len(first.messages) == 5


async def test_messages_added_before_the_first_start_follow_the_stored_history(
    tmp_path: Path,
) -> None:
    storage = copy_fixture(tmp_path)

    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    agent = BidiAgent(
        model=ScriptedModel(),
        tools=[ping],
        agent_id="voice",
        session_manager=FileSessionManager(STRANDS_SESSION, storage_dir=storage),
    )
    await agent.tool.ping()
    assert len(agent.messages) == 7
    records = stored_messages(storage / STRANDS_AGENT_DIR)
    assert [r["message"] for r in records] == agent.messages
    assert "toolUse" in records[5]["message"]["content"][0]


async def test_strands_reads_a_session_written_here(tmp_path: Path) -> None:
    if not STRANDS_PYTHON.exists():  # noqa: ASYNC240 (a stat before the test starts)
        missing = f"Strands 1.40 interpreter not found at {STRANDS_PYTHON} (STRANDS_PYTHON)"
        if os.environ.get("CI"):
            pytest.fail(f"{missing}: .ci/run creates one")
        pytest.skip(missing)
    model = ScriptedModel()
    agent = BidiAgent(
        model=model,
        agent_id="voice",
        state={"k": [1, "two"]},
        session_manager=FileSessionManager("ours", storage_dir=tmp_path),
    )
    async with agent:
        await _one_turn(agent, model, "Bonjour", "Salut ü")
    script = Path(__file__).parent / "strands_session.py"
    result = await trio.run_process(
        [str(STRANDS_PYTHON), str(script), "read", str(tmp_path), "ours"],
        capture_stdout=True,
        capture_stderr=True,
        cwd=str(tmp_path),
    )
    seen = json.loads(result.stdout)
    assert seen == {"messages": agent.messages, "state": {"k": [1, "two"]}}


async def test_a_corrupt_record_is_named(tmp_path: Path) -> None:
    storage = copy_fixture(tmp_path)
    broken = storage / STRANDS_AGENT_DIR / "messages" / "message_3.json"
    broken.write_text('{"message": {"role": "user", "content": [', encoding="utf-8")
    agent = BidiAgent(
        model=ScriptedModel(),
        agent_id="voice",
        session_manager=FileSessionManager(STRANDS_SESSION, storage_dir=storage),
    )
    with pytest.raises(SessionException, match=r"message_3\.json: invalid JSON"):
        async with agent:
            pass


@pytest.mark.parametrize(
    ("relative", "content", "fragment"),
    [
        ("agent.json", {"id": "voice"}, r"agent\.json: not a Strands session record"),
        ("agent.json", ["voice"], r"agent\.json: not a JSON object"),
        (
            "messages/message_1.json",
            {"message": {"text": "x"}, "message_id": 1},
            r"message_1\.json: not a message",
        ),
        (
            "messages/message_1.json",
            {"message": {"role": "user", "content": []}, "message_id": "1"},
            r"message_1\.json: 'message_id' has the wrong type",
        ),
    ],
)
async def test_a_foreign_record_is_named(
    tmp_path: Path, relative: str, content: Any, fragment: str
) -> None:
    storage = copy_fixture(tmp_path)
    (storage / STRANDS_AGENT_DIR / relative).write_text(json.dumps(content), encoding="utf-8")
    agent = BidiAgent(
        model=ScriptedModel(),
        agent_id="voice",
        session_manager=FileSessionManager(STRANDS_SESSION, storage_dir=storage),
    )
    with pytest.raises(SessionException, match=fragment):
        async with agent:
            pass


async def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    first = BidiAgent(
        model=ScriptedModel(), session_manager=FileSessionManager("s", storage_dir=tmp_path)
    )
    second = BidiAgent(
        model=ScriptedModel(), session_manager=FileSessionManager("s", storage_dir=tmp_path)
    )
    async with first:
        with pytest.raises(SessionException, match="being written by another agent"):
            async with second:
                pass
    async with second:  # free again once the first stopped
        pass


def test_two_agents_with_one_id_in_one_manager_are_refused(tmp_path: Path) -> None:
    manager = FileSessionManager("s", storage_dir=tmp_path)
    BidiAgent(model=ScriptedModel(), agent_id="a", session_manager=manager)
    with pytest.raises(SessionException, match="'a' is already used"):
        BidiAgent(model=ScriptedModel(), agent_id="a", session_manager=manager)


def test_ids_with_path_separators_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="path separators"):
        FileSessionManager("../escape", storage_dir=tmp_path)
    with pytest.raises(ValueError, match="path separators"):
        BidiAgent(model=ScriptedModel(), agent_id="a/b")


async def test_writes_are_atomic_and_off_the_trio_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: set[str] = set()
    real_replace = os.replace

    def recording_replace(source: Any, target: Any) -> None:
        threads.add(threading.current_thread().name)
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", recording_replace)
    model = ScriptedModel()
    agent = BidiAgent(model=model, session_manager=FileSessionManager("a", storage_dir=tmp_path))
    async with agent:
        await _one_turn(agent, model, "one", "two")
    assert threads
    assert threading.main_thread().name not in threads
    agent_json = tmp_path / "session_a/agents/agent_default/agent.json"
    before = agent_json.read_bytes()

    # A crash in the middle of a write leaves the old record whole and no temporary file.
    def crash(_fd: int) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "fsync", crash)
    agent.state["x"] = 1
    with pytest.raises(OSError, match="disk gone"):
        FileSessionManager("a", storage_dir=tmp_path).update_agent(
            "a", SessionAgent(agent_id="default", state={"x": 1})
        )
    assert agent_json.read_bytes() == before
    assert [p.name for p in agent_json.parent.iterdir() if p.name.endswith(".tmp")] == []


async def test_layout_matches_strands(tmp_path: Path) -> None:
    model = ScriptedModel()
    agent = BidiAgent(
        model=model,
        agent_id="voice",
        session_manager=FileSessionManager(STRANDS_SESSION, storage_dir=tmp_path),
    )
    async with agent:
        await _one_turn(agent, model, "a", "b")
        await _one_turn(agent, model, "c", "d")
        await agent.send("e")

    def tree(root: Path) -> list[str]:
        # Dot files (the writer lock) are ours; Strands never lists them.
        return sorted(
            str(p.relative_to(root)) for p in root.rglob("*") if not p.name.startswith(".")
        )

    fixture = FIXTURES / f"session_{STRANDS_SESSION}"
    assert tree(tmp_path / f"session_{STRANDS_SESSION}") == tree(fixture)
