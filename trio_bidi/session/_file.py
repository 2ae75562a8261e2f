"""FileSessionManager: a session in a directory, laid out as Strands 1.40 lays it out.

::

    <storage_dir>/session_<session_id>/
        session.json
        agents/agent_<agent_id>/
            agent.json
            messages/message_<index>.json

Writes are atomic: a record is written to a temporary file in the same directory, flushed
and renamed over the old one (``os.replace``), so a crash never leaves a torn record. An
agent is written by one agent object at a time: while an agent runs it holds an advisory
lock (``flock``) on ``agents/agent_<id>/.writer.lock``; a second writer, in this process or
another, is refused with :class:`SessionException`. The lock file is ignored by Strands.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import IO, Any

from ._model import (
    Session,
    SessionAgent,
    SessionException,
    SessionMessage,
    dumps,
    loads,
    validate_id,
)
from ._repository import RepositorySessionManager

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process writer lock
    fcntl = None  # type: ignore[assignment]

__all__ = ["FileSessionManager"]

_SESSION_PREFIX = "session_"
_AGENT_PREFIX = "agent_"
_MESSAGE_PREFIX = "message_"
_LOCK_NAME = ".writer.lock"


class FileSessionManager(RepositorySessionManager):
    """Keeps a session in the local file system, in Strands' layout.

    Args:
        session_id: The session (no path separators).
        storage_dir: The directory holding sessions (default: Strands' default,
            ``<temp dir>/strands/sessions``).

    Raises:
        ValueError: The session id contains a path separator.
    """

    def __init__(self, session_id: str, storage_dir: str | os.PathLike[str] | None = None) -> None:
        self.storage_dir = str(
            storage_dir
            if storage_dir is not None
            else os.path.join(tempfile.gettempdir(), "strands", "sessions")
        )
        self._locks: dict[tuple[str, str], IO[bytes]] = {}
        super().__init__(session_id, self)

    # ------------------------------------------------------------------ paths

    def _session_path(self, session_id: str) -> Path:
        return Path(self.storage_dir) / f"{_SESSION_PREFIX}{validate_id(session_id, 'session')}"

    def _agent_path(self, session_id: str, agent_id: str) -> Path:
        agent_dir = f"{_AGENT_PREFIX}{validate_id(agent_id, 'agent')}"
        return self._session_path(session_id) / "agents" / agent_dir

    def _message_path(self, session_id: str, agent_id: str, message_id: int) -> Path:
        if not isinstance(message_id, int) or isinstance(message_id, bool):
            raise ValueError(f"message_id={message_id!r} | message id must be an integer")
        name = f"{_MESSAGE_PREFIX}{message_id}.json"
        return self._agent_path(session_id, agent_id) / "messages" / name

    # ------------------------------------------------------------------ files

    @staticmethod
    def _read(path: Path) -> Any | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SessionException(f"{path}: cannot be read ({exc})") from exc
        return loads(raw, str(path))

    @staticmethod
    def _write(path: Path, data: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with open(temporary, "w", encoding="utf-8", newline="\n") as file:
                file.write(dumps(data))
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    # ------------------------------------------------------------------ repository

    def create_session(self, session: Session) -> Session:
        """Write ``session.json`` and the directories (Strands' layout)."""
        directory = self._session_path(session.session_id)
        if (directory / "session.json").exists():
            raise SessionException(f"session {session.session_id!r} already exists")
        (directory / "agents").mkdir(parents=True, exist_ok=True)
        (directory / "multi_agents").mkdir(parents=True, exist_ok=True)
        self._write(directory / "session.json", session.to_dict())
        return session

    def read_session(self, session_id: str) -> Session | None:
        """Read ``session.json``, or None."""
        path = self._session_path(session_id) / "session.json"
        data = self._read(path)
        return None if data is None else Session.from_dict(data, str(path))

    def delete_session(self, session_id: str) -> None:
        """Delete the session's directory."""
        directory = self._session_path(session_id)
        if not directory.exists():
            raise SessionException(f"session {session_id!r} does not exist")
        shutil.rmtree(directory)

    def create_agent(self, session_id: str, session_agent: SessionAgent) -> None:
        """Write ``agent.json`` and the messages directory."""
        directory = self._agent_path(session_id, session_agent.agent_id)
        (directory / "messages").mkdir(parents=True, exist_ok=True)
        self._write(directory / "agent.json", session_agent.to_dict())

    def read_agent(self, session_id: str, agent_id: str) -> SessionAgent | None:
        """Read ``agent.json``, or None."""
        path = self._agent_path(session_id, agent_id) / "agent.json"
        data = self._read(path)
        if data is None:
            return None
        record = SessionAgent.from_dict(data, str(path))
        if record.agent_id != agent_id:
            raise SessionException(f"{path}: holds agent {record.agent_id!r}, not {agent_id!r}")
        return record

    def update_agent(self, session_id: str, session_agent: SessionAgent) -> None:
        """Rewrite ``agent.json``, keeping its ``created_at``."""
        previous = self.read_agent(session_id, session_agent.agent_id)
        if previous is None:
            raise SessionException(
                f"agent {session_agent.agent_id!r} of session {session_id!r} does not exist"
            )
        session_agent.created_at = previous.created_at
        path = self._agent_path(session_id, session_agent.agent_id) / "agent.json"
        self._write(path, session_agent.to_dict())

    def create_message(self, session_id: str, agent_id: str, message: SessionMessage) -> None:
        """Write ``message_<index>.json``."""
        self._write(self._message_path(session_id, agent_id, message.message_id), message.to_dict())

    def read_message(
        self, session_id: str, agent_id: str, message_id: int
    ) -> SessionMessage | None:
        """Read one message, or None."""
        path = self._message_path(session_id, agent_id, message_id)
        data = self._read(path)
        return None if data is None else SessionMessage.from_dict(data, str(path))

    def list_messages(self, session_id: str, agent_id: str) -> list[SessionMessage]:
        """Read every message of the agent, in index order."""
        directory = self._agent_path(session_id, agent_id) / "messages"
        if not directory.is_dir():
            raise SessionException(
                f"{directory}: missing (agent {agent_id!r} of session {session_id!r})"
            )
        indexed: list[tuple[int, Path]] = []
        for entry in directory.iterdir():
            name = entry.name
            if not (name.startswith(_MESSAGE_PREFIX) and name.endswith(".json")):
                continue
            try:
                indexed.append((int(name[len(_MESSAGE_PREFIX) : -len(".json")]), entry))
            except ValueError:
                raise SessionException(f"{entry}: not a message file name") from None
        messages = []
        for index, path in sorted(indexed):
            record = SessionMessage.from_dict(self._read(path), str(path))
            if record.message_id != index:
                raise SessionException(f"{path}: holds message_id {record.message_id}")
            messages.append(record)
        return messages

    # ------------------------------------------------------------------ writer lock

    def acquire_writer(self, session_id: str, agent_id: str) -> None:
        """Take the agent's writer lock.

        Raises:
            SessionException: Another writer holds it.
        """
        key = (session_id, agent_id)
        if key in self._locks or fcntl is None:
            return
        directory = self._agent_path(session_id, agent_id)
        directory.mkdir(parents=True, exist_ok=True)
        lock_path = directory / _LOCK_NAME
        handle = open(lock_path, "a+b")  # noqa: SIM115 (held until release_writer)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise SessionException(
                f"agent {agent_id!r} of session {session_id!r} is being written by another "
                f"agent (lock {lock_path} is held); one agent object per agent_id at a time"
            ) from None
        except BaseException:
            handle.close()
            raise
        self._locks[key] = handle

    def release_writer(self, session_id: str, agent_id: str) -> None:
        """Release the agent's writer lock (nothing if not held)."""
        handle = self._locks.pop((session_id, agent_id), None)
        if handle is not None:
            handle.close()  # closing the file releases the flock
