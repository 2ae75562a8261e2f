"""The session actions every emulator offers, written once.

Each emulator keeps its connections as sessions (``EmulatedOpenAISession``,
``EmulatedGeminiSession``, ``EmulatedNovaSession``) that know how to speak, stop, drop and
expire in their provider's protocol. The emulator itself only forwards each action to a
session: the one given, or the newest. `SessionActions` is that forwarding, so the
actions have the same names and meaning on every emulator.
"""

from __future__ import annotations

import abc
from typing import Generic, Protocol, TypeVar

import trio

from ._replies import Reply

__all__ = ["EmulatedSession", "SessionActions"]


class EmulatedSession(Protocol):
    """What an emulator's session does for the shared actions."""

    async def respond(self, reply: Reply | None = None) -> None:
        """Start a model turn now, without client input."""
        ...

    async def barge_in(self) -> None:
        """The user speaks over the reply: the provider's interruption."""
        ...

    def finish(self) -> None:
        """Let a held reply end its turn."""
        ...

    async def drop(self) -> None:
        """End the connection abruptly (no close handshake)."""
        ...


SessionT = TypeVar("SessionT", bound=EmulatedSession)


class SessionActions(abc.ABC, Generic[SessionT]):
    """Forward the scripted actions to a session (the one given, or the newest)."""

    @abc.abstractmethod
    async def wait_for_session(self, index: int = -1) -> SessionT:
        """Wait until a session exists (``index`` from 0; -1: the newest) and return it."""

    async def _session(self, session: SessionT | None) -> SessionT:
        if session is None:
            return await self.wait_for_session()
        await trio.lowlevel.checkpoint()
        return session

    async def respond(self, reply: Reply | None = None, session: SessionT | None = None) -> None:
        """Start a model turn in a session (default: the newest) without client input."""
        await (await self._session(session)).respond(reply)

    async def barge_in(self, session: SessionT | None = None) -> None:
        """The user speaks over the reply: the provider's interruption, and the reply stops."""
        await (await self._session(session)).barge_in()

    async def finish(self, session: SessionT | None = None) -> None:
        """Let a held reply end its turn."""
        (await self._session(session)).finish()

    async def drop(self, session: SessionT | None = None) -> None:
        """Drop a session's connection abruptly (no close handshake)."""
        await (await self._session(session)).drop()
