"""ScriptedModel: an in-memory model for testing agents and applications without a network.

The test plays the provider. Each connection records what the client sent and emits what
the test pushes (or what a *responder* returns for each input)::

    model = ScriptedModel(responder=lambda event: [BidiResponseStartEvent("r1"), ...])
    async with BidiAgent(model=model) as agent:
        await agent.send("hi")
        connection = await model.wait_connection()
        connection.push(BidiTranscriptStreamEvent(...))
        connection.disconnect()            # the peer drops the connection
        connection.expire()                # the provider's time limit is reached
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from ..errors import BidiConnectionError, BidiError, BidiModelTimeoutError
from ..events import BidiOutputEvent
from ..models._base import ConnectionBase, Emit, SendableEvent, fresh_error
from ..types import AudioConfig, Message, ToolSpec

__all__ = ["Responder", "ScriptedConnection", "ScriptedModel"]

Responder = Callable[[SendableEvent], Iterable[BidiOutputEvent]]
"""Maps each event the client sends to the events the scripted provider answers with."""


@attrs.frozen
class _Disconnect:
    error: BidiError | None


@attrs.frozen
class _Expire:
    error: BidiModelTimeoutError | None


_ServerItem = BidiOutputEvent | _Disconnect | _Expire


class ScriptedConnection(ConnectionBase):
    """One connection of a [`ScriptedModel`][trio_bidi.testing.ScriptedModel].

    The test drives it as the provider.

    Attributes:
        system_prompt: What the client connected with.
        tools: What the client connected with.
        messages: The history the client replayed (a copy).
        given_restart_config: The restart data the client connected with.
        resume_config: What
            [`restart_config`][trio_bidi.testing._scripted.ScriptedConnection.restart_config] offers
            a caller that restarts on its own (a test sets it to play a provider with session
            resumption; default empty).
        sent: Every event the client sent, in order.
    """

    def __init__(
        self,
        model: ScriptedModel,
        index: int,
        *,
        system_prompt: str | None,
        tools: Sequence[ToolSpec],
        messages: Sequence[Message],
        restart_config: Mapping[str, Any],
    ) -> None:
        super().__init__(f"scripted-{index}", model.model_id, time_limit_s=model.time_limit_s)
        self._model = model
        self.index = index
        self.system_prompt = system_prompt
        self.tools = list(tools)
        self.messages: list[Message] = [dict(m) for m in messages]  # type: ignore[misc]
        self.given_restart_config = dict(restart_config)
        self.resume_config: dict[str, Any] = {}
        self.sent: list[SendableEvent] = []
        self.playback_reports: list[int] = []
        self._sent_changed = trio.Event()
        self._server_tx, self._server_rx = trio.open_memory_channel[_ServerItem](math.inf)

    # ------------------------------------------------------------------ the test's side

    def push(self, *events: BidiOutputEvent) -> None:
        """Emit events to the client, in order."""
        for event in events:
            self._server_tx.send_nowait(event)

    def disconnect(self, error: BidiError | None = None) -> None:
        """Drop the connection as a provider would (after already pushed events)."""
        self._server_tx.send_nowait(_Disconnect(error))

    def expire(self, error: BidiModelTimeoutError | None = None) -> None:
        """End the connection at its time limit (after already pushed events)."""
        self._server_tx.send_nowait(_Expire(error))

    async def wait_sent(self, predicate: Callable[[list[SendableEvent]], bool]) -> None:
        """Wait until ``predicate(self.sent)`` is true."""
        while not predicate(self.sent):
            await self._sent_changed.wait()

    async def wait_sent_count(self, count: int) -> None:
        """Wait until the client has sent at least ``count`` events."""
        await self.wait_sent(lambda sent: len(sent) >= count)

    # ------------------------------------------------------------------ ConnectionBase

    async def _open(self) -> None:
        await trio.lowlevel.checkpoint()
        failure = self._model._next_connect_failure()
        if failure is not None:
            raise fresh_error(failure) from failure

    async def _read_events(self, emit: Emit) -> None:
        async for item in self._server_rx:
            if isinstance(item, _Disconnect):
                if item.error is not None:
                    raise fresh_error(item.error) from item.error
                raise BidiConnectionError(f"{self.connection_id} was dropped by the provider")
            if isinstance(item, _Expire):
                self.expire_now(item.error)
                await trio.sleep_forever()
            await emit(item)

    async def _write(self, event: SendableEvent) -> None:
        await trio.lowlevel.checkpoint()
        self.sent.append(event)
        self._sent_changed.set()
        self._sent_changed = trio.Event()
        responder = self._model.responder
        if responder is not None:
            self.push(*responder(event))

    async def _close_transport(self) -> None:
        self._server_tx.close()

    async def report_playback(self, played_ms: int) -> None:
        """Record a playback report (see ``playback_reports``)."""
        await trio.lowlevel.checkpoint()
        self.playback_reports.append(played_ms)

    def restart_config(self) -> dict[str, Any]:
        """Offer ``resume_config`` (a copy) to a caller that restarts on its own."""
        return dict(self.resume_config)


class ScriptedModel:
    """An in-memory [`BidiModel`][trio_bidi.BidiModel] whose provider side the test plays.

    Args:
        model_id: Reported in connection start events.
        audio: The audio configuration to advertise (default 16 kHz in, 24 kHz out, mono PCM).
        time_limit_s: Each connection's time limit (None: none).
        responder: Called with each sent event; the events it returns are emitted.
        connect_failures: Errors the next ``connect`` calls raise, one per call, in order.
    """

    def __init__(
        self,
        model_id: str = "scripted",
        *,
        audio: AudioConfig | None = None,
        time_limit_s: float | None = None,
        responder: Responder | None = None,
        connect_failures: Iterable[BidiError] = (),
    ) -> None:
        self._model_id = model_id
        self._config: dict[str, Any] = {
            "audio": dict(
                audio or AudioConfig(input_rate=16000, output_rate=24000, channels=1, format="pcm")
            )
        }
        self.time_limit_s = time_limit_s
        self.responder = responder
        self.connect_failures: list[BidiError] = list(connect_failures)
        self.connections: list[ScriptedConnection] = []
        self._connected = trio.Event()

    @property
    def model_id(self) -> str:
        """The model id reported in start events."""
        return self._model_id

    @property
    def config(self) -> dict[str, Any]:
        """The configuration (``config["audio"]`` is read by the audio IO)."""
        return self._config

    def _next_connect_failure(self) -> BidiError | None:
        return self.connect_failures.pop(0) if self.connect_failures else None

    async def wait_connection(self, index: int = -1) -> ScriptedConnection:
        """Wait until a connection exists (``index`` counts from 0; -1: the newest) and is open."""
        wanted = index if index >= 0 else 0
        while len(self.connections) <= wanted or not self.connections[index].is_open:
            await self._connected.wait()
            self._connected = trio.Event()
        return self.connections[index]

    @asynccontextmanager
    async def connect(
        self,
        system_prompt: str | None = None,
        tools: Sequence[ToolSpec] | None = None,
        messages: Sequence[Message] | None = None,
        **restart_config: Any,
    ) -> AsyncIterator[ScriptedConnection]:
        """Open a [`ScriptedConnection`][trio_bidi.testing.ScriptedConnection]."""
        connection = ScriptedConnection(
            self,
            len(self.connections),
            system_prompt=system_prompt,
            tools=tools or (),
            messages=messages or (),
            restart_config=restart_config,
        )
        self.connections.append(connection)
        async with connection.session():
            self._connected.set()
            yield connection
