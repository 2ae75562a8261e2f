"""The session manager: keeps an agent's history and state in a session store.

A session manager is a hook provider (``BidiAgent(session_manager=...)`` registers it):

- when the agent starts (``async with agent``), the first time: the stored agent's state and
  messages replace the agent's (a Strands-written session continues here), or, for a new
  agent, the agent and its initial messages are written;
- each message added to ``agent.messages`` is written as the next ``message_<n>.json``
  and the agent record (its state) is rewritten, as Strands does;
- when the agent stops, the agent record is written once more (the final state).

Every read and write runs in a worker thread (``trio.to_thread``), one at a time and in
order. The store itself is a :class:`SessionRepository`: plain blocking methods with
Strands' names, so a Strands repository class fits too.
"""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from ..agent._hooks import (
    BidiAfterInvocationEvent,
    BidiAgentInitializedEvent,
    BidiBeforeInvocationEvent,
    BidiMessageAddedEvent,
    HookRegistry,
)
from ..agent._state import AgentState
from ..types import Message
from ._model import Session, SessionAgent, SessionException, SessionMessage, validate_id

if TYPE_CHECKING:
    from ..agent._agent import BidiAgent

__all__ = ["RepositorySessionManager", "SessionRepository"]

logger = logging.getLogger(__name__)


class SessionRepository(Protocol):
    """A blocking session store (Strands' ``SessionRepository`` methods used for agents)."""

    def create_session(self, session: Session) -> Session:
        """Write a new session; raise :class:`SessionException` if it exists."""

    def read_session(self, session_id: str) -> Session | None:
        """Read a session, or None."""

    def create_agent(self, session_id: str, session_agent: SessionAgent) -> None:
        """Write a new agent record."""

    def read_agent(self, session_id: str, agent_id: str) -> SessionAgent | None:
        """Read an agent record, or None."""

    def update_agent(self, session_id: str, session_agent: SessionAgent) -> None:
        """Rewrite an agent record (keeping its ``created_at``)."""

    def create_message(self, session_id: str, agent_id: str, message: SessionMessage) -> None:
        """Write a message record."""

    def list_messages(self, session_id: str, agent_id: str) -> list[SessionMessage]:
        """Read an agent's messages in index order."""


@attrs.define
class _Tracked:
    initial: list[Message]  # the messages the agent was constructed with
    latest_index: int | None = None
    restored: bool = False
    writing: bool = False


def _session_agent(agent: BidiAgent) -> SessionAgent:
    return SessionAgent(agent_id=agent.agent_id, state=copy.deepcopy(agent.state.to_dict()))


def _repair(messages: list[Message]) -> list[Message]:
    """Fix histories broken by an interruption, as Strands does when it restores.

    A leading tool result without its tool use is dropped; a tool use not answered by the
    next message gets an error result ("Tool was interrupted.").
    """
    first = messages[0] if messages else None
    if first and first["role"] == "user" and any("toolResult" in b for b in first["content"]):
        logger.warning("session history starts with an orphaned tool result; dropped")
        messages = messages[1:]
    index = 0
    while index + 1 < len(messages):
        uses = [b["toolUse"]["toolUseId"] for b in messages[index]["content"] if "toolUse" in b]
        if uses:
            following = messages[index + 1]
            answered = {
                b["toolResult"]["toolUseId"] for b in following["content"] if "toolResult" in b
            }
            missing = [u for u in uses if u not in answered]
            if missing:
                logger.warning("tool_use_ids=<%s> | orphaned tool uses get an error", missing)
                blocks: list[Any] = [
                    {
                        "toolResult": {
                            "toolUseId": u,
                            "status": "error",
                            "content": [{"text": "Tool was interrupted."}],
                        }
                    }
                    for u in missing
                ]
                if answered:
                    following["content"].extend(blocks)
                else:
                    messages.insert(index + 1, {"role": "user", "content": blocks})
        index += 1
    return messages


class RepositorySessionManager:
    """Persists agents of one session in a :class:`SessionRepository`.

    Args:
        session_id: The session (created in the store when it does not exist).
        session_repository: The store.

    Raises:
        ValueError: The session id contains a path separator.
    """

    def __init__(self, session_id: str, session_repository: SessionRepository) -> None:
        self.session_id = validate_id(session_id, "session")
        self.session_repository = session_repository
        self._lock = trio.Lock()
        self._agents: dict[str, _Tracked] = {}
        self._session_checked = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(session_id={self.session_id!r})"

    def register_hooks(self, registry: HookRegistry) -> None:
        """Register the persistence callbacks (see the module docstring)."""
        registry.add_callback(BidiAgentInitializedEvent, self._on_initialized)
        registry.add_callback(BidiBeforeInvocationEvent, self._on_start)
        registry.add_callback(BidiMessageAddedEvent, self._on_message)
        registry.add_callback(BidiAfterInvocationEvent, self._on_stop)

    # ------------------------------------------------------------------ hooks

    def _on_initialized(self, event: BidiAgentInitializedEvent) -> None:
        agent_id = validate_id(event.agent.agent_id, "agent")
        if agent_id in self._agents:
            raise SessionException(
                f"agent_id {agent_id!r} is already used by another agent of session "
                f"{self.session_id!r}; give each agent its own agent_id"
            )
        self._agents[agent_id] = _Tracked(initial=copy.deepcopy(event.agent.messages))

    async def _on_start(self, event: BidiBeforeInvocationEvent) -> None:
        async with self._lock:
            tracked = self._agents[event.agent.agent_id]
            if not tracked.writing:
                await trio.to_thread.run_sync(self._acquire, event.agent.agent_id)
                tracked.writing = True
            try:
                await self._restore(event.agent, tracked)
            except BaseException:
                # The agent does not start, so no after-invocation event comes.
                tracked.writing = False
                self._release(event.agent.agent_id)
                raise

    async def _on_message(self, event: BidiMessageAddedEvent) -> None:
        agent = event.agent
        async with self._lock:
            tracked = self._agents[agent.agent_id]
            # A message added before the agent ever started (a direct tool call) restores
            # the stored history first.
            await self._restore(agent, tracked)
            index = 0 if tracked.latest_index is None else tracked.latest_index + 1
            record = SessionMessage(message=copy.deepcopy(event.message), message_id=index)
            snapshot = _session_agent(agent)
            await trio.to_thread.run_sync(self._append, agent.agent_id, record, snapshot)
            tracked.latest_index = index

    async def _on_stop(self, event: BidiAfterInvocationEvent) -> None:
        agent = event.agent
        with trio.move_on_after(10) as scope:  # runs shielded: bound it
            async with self._lock:
                tracked = self._agents[agent.agent_id]
                try:
                    if tracked.restored:
                        snapshot = _session_agent(agent)
                        await trio.to_thread.run_sync(
                            self.session_repository.update_agent, self.session_id, snapshot
                        )
                finally:
                    if tracked.writing:
                        tracked.writing = False
                        self._release(agent.agent_id)
        if scope.cancelled_caught:
            logger.warning("agent_id=<%s> | final session sync timed out", agent.agent_id)

    # ------------------------------------------------------------------ work

    async def _restore(self, agent: BidiAgent, tracked: _Tracked) -> None:
        if tracked.restored:
            return
        initial = tracked.initial
        # Messages added since construction (before any start) come after the stored
        # history; their own hook calls write them.
        added_since = agent.messages[len(initial) :]
        snapshot = _session_agent(agent)
        stored, messages = await trio.to_thread.run_sync(
            self._load_or_create, agent.agent_id, snapshot, initial
        )
        tracked.restored = True
        if stored is None:
            tracked.latest_index = len(initial) - 1 if initial else None
            logger.debug("agent_id=<%s> | new agent in session %s", agent.agent_id, self.session_id)
            return
        tracked.latest_index = messages[-1].message_id if messages else None
        history = _repair([copy.deepcopy(m.to_message()) for m in messages])
        agent.state = AgentState(stored.state)
        agent.messages[:] = [*history, *added_since]
        logger.debug(
            "agent_id=<%s>, messages=<%d> | agent restored from session %s",
            agent.agent_id,
            len(history),
            self.session_id,
        )

    def _ensure_session(self) -> None:
        if self._session_checked:
            return
        if self.session_repository.read_session(self.session_id) is None:
            self.session_repository.create_session(Session(session_id=self.session_id))
        self._session_checked = True

    def _load_or_create(
        self, agent_id: str, snapshot: SessionAgent, initial: list[Message]
    ) -> tuple[SessionAgent | None, list[SessionMessage]]:
        self._ensure_session()
        stored = self.session_repository.read_agent(self.session_id, agent_id)
        if stored is not None:
            return stored, self.session_repository.list_messages(self.session_id, agent_id)
        self.session_repository.create_agent(self.session_id, snapshot)
        for index, message in enumerate(initial):
            record = SessionMessage(message=message, message_id=index)
            self.session_repository.create_message(self.session_id, agent_id, record)
        return None, []

    def _append(self, agent_id: str, record: SessionMessage, snapshot: SessionAgent) -> None:
        self.session_repository.create_message(self.session_id, agent_id, record)
        self.session_repository.update_agent(self.session_id, snapshot)

    def _acquire(self, agent_id: str) -> None:
        acquire = getattr(self.session_repository, "acquire_writer", None)
        if callable(acquire):
            acquire(self.session_id, agent_id)

    def _release(self, agent_id: str) -> None:
        release = getattr(self.session_repository, "release_writer", None)
        if callable(release):
            release(self.session_id, agent_id)
