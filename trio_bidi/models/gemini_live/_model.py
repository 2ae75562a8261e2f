"""The Gemini Live model and its connection: the Trio transport around the protocol.

Speaks the Live API's JSON directly over `trio_bidi._websocket` (``google-genai`` is
asyncio-only and is not used at runtime).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio

from ..._websocket import WebSocket, WebSocketClosed, WebSocketHandshakeError, open_websocket
from ...errors import BidiConnectionError, BidiModelTimeoutError, BidiProtocolError, BidiStateError
from ...events import BidiAudioInputEvent, BidiOutputEvent
from ...types import Message, ToolSpec
from .._base import ConnectionBase, SendableEvent, fresh_error
from .._untrusted import server_text, url_without_query
from . import _wire
from ._config import (
    DEFAULT_MODEL_ID,
    ClientSettings,
    ProviderSettings,
    build_setup,
    resolve_client_config,
    resolve_provider_config,
)
from ._protocol import GeminiLiveProtocol

__all__ = ["BidiGeminiLiveModel", "GeminiLiveConnection", "describe_close"]

logger = logging.getLogger(__name__)

_CLOSE_MEANINGS = {
    1000: "normal closure",
    1001: "going away",
    1006: "abnormal closure",
    1007: "invalid argument",
    1008: "policy violation",
    1011: "internal error",
    1013: "try again later",
}
_MAX_CARRYOVERS = 8


def describe_close(code: int, reason: str) -> str:
    """Describe a WebSocket close of the Live API, naming the code and the reason.

    Args:
        code: The close code (1007 invalid argument, 1008 policy, 1011 internal...).
        reason: The server's close reason.

    Returns:
        A one-line description.
    """
    meaning = _CLOSE_MEANINGS.get(code, "unknown close code")
    text = f"Gemini Live closed the connection with code {code} ({meaning})"
    return f"{text}: {reason}" if reason else text


class BidiGeminiLiveModel:
    """The Gemini Live API as a bidirectional model.

    Args:
        model_id: The Live model, for example
            ``"gemini-2.5-flash-native-audio-preview-09-2025"``.
        provider_config: ``audio`` (``input_rate`` 16000 by default, ``output_rate`` 24000,
            ``channels`` 1, ``format`` ``"pcm"``, ``voice``), ``inference`` (``temperature``,
            ``top_p``, ``top_k``, ``max_output_tokens``, ``seed``, ...),
            ``response_modalities`` (``["AUDIO"]`` or ``["TEXT"]``), ``activity_detection``
            (automatic activity detection settings), ``manual_activity`` (signal speech
            with activityStart/End yourself), ``activity_handling``, ``turn_coverage``,
            ``input_transcription`` / ``output_transcription`` (on by default),
            ``context_window_compression`` (True or settings), ``proactive_audio``,
            ``affective_dialog``, ``language_code``, ``session_resumption`` (on by default;
            ``{"transparent": True}`` asks for consumed-message indices), ``text_input``
            (``"client_content"`` or ``"realtime"``), ``max_unconsumed_input_bytes`` and
            ``initial_history_in_client_content`` (the server waits for the history,
            which ends with ``turnComplete: true``).
        client_config: ``api_key`` (else ``GOOGLE_API_KEY`` / ``GEMINI_API_KEY``), ``url``
            (default: the public Live endpoint), ``api_version`` (``"v1beta"``),
            ``headers``, ``time_limit_s`` (fallback connection deadline, default 570)
            and ``connect_timeout_s``.

    Raises:
        BidiConfigurationError: A key is unknown, a value is malformed, or there is no
            API key.
    """

    def __init__(
        self,
        model_id: str = DEFAULT_MODEL_ID,
        provider_config: Mapping[str, Any] | None = None,
        client_config: Mapping[str, Any] | None = None,
    ) -> None:
        self._model_id = model_id
        self._settings = resolve_provider_config(provider_config)
        self._client = resolve_client_config(client_config)
        # Protocol state of ended connections by the handle they ended with: the input
        # they sent that the handle may not cover, replayed when a connection resumes.
        self._carryovers: OrderedDict[str, GeminiLiveProtocol] = OrderedDict()

    def __repr__(self) -> str:
        url = url_without_query(self._client.url)
        return f"BidiGeminiLiveModel(model_id={self._model_id!r}, url={url!r})"

    @property
    def model_id(self) -> str:
        """The Live model's name."""
        return self._model_id

    @property
    def config(self) -> dict[str, Any]:
        """The resolved provider configuration; ``config["audio"]`` is an AudioConfig."""
        return self._settings.config

    @property
    def client_settings(self) -> ClientSettings:
        """The resolved client settings (endpoint, time limit; the key stays hidden)."""
        return self._client

    def _keep_carryover(self, handle: str, protocol: GeminiLiveProtocol) -> None:
        self._carryovers[handle] = protocol
        self._carryovers.move_to_end(handle)
        while len(self._carryovers) > _MAX_CARRYOVERS:
            self._carryovers.popitem(last=False)

    @asynccontextmanager
    async def connect(
        self,
        system_prompt: str | None = None,
        tools: Sequence[ToolSpec] | None = None,
        messages: Sequence[Message] | None = None,
        **restart_config: Any,
    ) -> AsyncIterator[GeminiLiveConnection]:
        """Open a connection: ``setup``, wait for ``setupComplete``, then history or resume.

        Args:
            system_prompt: Sent as the system instruction.
            tools: Sent as function declarations.
            messages: History, replayed as ``clientContent`` turns unless resuming.
            **restart_config: ``session_handle`` (from a
                [`BidiModelTimeoutError`][trio_bidi.errors.BidiModelTimeoutError]) resumes
                that session: the history is not replayed, and the input the previous
                connection sent after its newest handle is sent again.

        Yields:
            The open connection.

        Raises:
            BidiConnectionError: The server could not be reached, refused the upgrade or
                closed the connection instead of completing the setup.
        """
        handle = restart_config.pop("session_handle", None)
        if restart_config:
            logger.debug("keys=<%s> | ignoring unknown restart config", sorted(restart_config))
        if handle is not None and not isinstance(handle, str):
            raise BidiStateError(f"session_handle must be a str, not {type(handle).__name__}")
        connection = GeminiLiveConnection(
            self,
            system_prompt=system_prompt,
            tools=tools or (),
            messages=messages or (),
            session_handle=handle,
            carryover=self._carryovers.pop(handle, None) if handle else None,
        )
        async with connection.session():
            yield connection


class GeminiLiveConnection(ConnectionBase):
    """One Gemini Live WebSocket connection (see `ConnectionBase` for the contract).

    Besides the contract it offers manual activity signals (`send_activity_start`,
    `send_activity_end`) and `send_audio_stream_end`.
    """

    def __init__(
        self,
        model: BidiGeminiLiveModel,
        *,
        system_prompt: str | None,
        tools: Sequence[ToolSpec],
        messages: Sequence[Message],
        session_handle: str | None,
        carryover: GeminiLiveProtocol | None,
    ) -> None:
        client = model._client
        super().__init__(
            f"gemini-{uuid.uuid4().hex[:12]}", model.model_id, time_limit_s=client.time_limit_s
        )
        self._model = model
        self._client = client
        settings: ProviderSettings = model._settings
        self._settings = settings
        turns, names = _wire.history_turns(messages)
        self._protocol = GeminiLiveProtocol(
            self.connection_id,
            input_rate=settings.audio["input_rate"],
            output_rate=settings.audio["output_rate"],
            text_input=settings.text_input,
            max_unconsumed_input_bytes=settings.max_unconsumed_input_bytes,
            tool_names=names,
            open_tool_calls=carryover.open_tool_calls if carryover is not None else None,
            max_json_depth=client.max_json_depth,
        )
        self._resume_handle = session_handle
        if session_handle:
            self._protocol.session_handle = session_handle
        self._replay = carryover.unconsumed_input() if carryover is not None else []
        self._history_turns = [] if session_handle else turns
        self._setup_text = _wire.setup_message(
            build_setup(
                model.model_id,
                settings,
                system_prompt=system_prompt,
                function_declarations=_wire.function_declarations(tools),
                session_handle=session_handle,
            )
        )
        self._stack = AsyncExitStack()
        self._ws: WebSocket | None = None
        # Handles held when goAway arrived (None: no goAway yet).
        self._go_away_handles: int | None = None
        self._restart_now = False

    @property
    def protocol(self) -> GeminiLiveProtocol:
        """The connection's sans-IO protocol state."""
        return self._protocol

    def _safe(self, text: object) -> str:
        """Server-chosen text made safe for messages and logs (no key, bounded, escaped)."""
        return server_text(text, (self._client.api_key, *self._client.headers.values()))

    @property
    def session_handle(self) -> str | None:
        """The newest resumable session handle (or the one this connection resumed)."""
        return self._protocol.session_handle

    # ------------------------------------------------------------------ ConnectionBase

    async def _open(self) -> None:
        client = self._client
        headers = {"x-goog-api-key": client.api_key, **client.headers}
        try:
            ws = await self._stack.enter_async_context(
                open_websocket(
                    client.url, headers=headers, connect_timeout_s=client.connect_timeout_s
                )
            )
        except WebSocketHandshakeError as exc:
            raise BidiConnectionError(
                f"cannot open the Gemini Live connection to {url_without_query(client.url)}: "
                f"{self._safe(exc)}",
                code=exc.status,
            ) from exc
        self._ws = ws
        try:
            await ws.send_text(self._setup_text)
            with trio.fail_after(client.connect_timeout_s):
                await self._wait_setup_complete(ws)
            if self._settings.initial_history_in_client_content and not self._resume_handle:
                # The server waits for the history until a turnComplete, even an empty one.
                text = _wire.client_content_message(self._history_turns, turn_complete=True)
                await ws.send_text(text)
                self._protocol.sent(text)
            elif self._history_turns:
                text = _wire.client_content_message(self._history_turns, turn_complete=False)
                await ws.send_text(text)
                self._protocol.sent(text)
            for text in self._replay:
                await ws.send_text(text)
                self._protocol.sent(text)
        except trio.TooSlowError as exc:
            raise BidiConnectionError(
                f"no setupComplete from {url_without_query(client.url)} within "
                f"{client.connect_timeout_s:g} s"
            ) from exc
        except WebSocketClosed as exc:
            raise BidiConnectionError(
                f"{describe_close(exc.code, self._safe(exc.reason))} (during setup)",
                code=exc.code,
                reason=self._safe(exc.reason),
            ) from exc
        logger.debug(
            "connection_id=<%s>, resumed=<%s>, history_turns=<%d>, replayed=<%d> | session ready",
            self.connection_id,
            self._resume_handle is not None,
            len(self._history_turns),
            len(self._replay),
        )

    async def _wait_setup_complete(self, ws: WebSocket) -> None:
        while True:
            raw = await ws.receive()
            try:
                message = _wire.decode(raw, self._client.max_json_depth)
            except BidiProtocolError as exc:
                logger.warning("error=<%s> | malformed message while opening", exc)
                continue
            if "setupComplete" in message:
                return
            logger.debug("keys=<%s> | message before setupComplete", sorted(message))

    async def _read_step(self) -> list[BidiOutputEvent] | None:
        ws = self._ws
        assert ws is not None
        try:
            raw = await ws.receive()
        except WebSocketClosed as exc:
            if not exc.by_peer:
                return None
            raise BidiConnectionError(
                describe_close(exc.code, self._safe(exc.reason)),
                code=exc.code,
                reason=self._safe(exc.reason),
            ) from exc
        protocol = self._protocol
        events = protocol.receive(raw)
        if protocol.has_outbox:
            self._start_soon(self._send_outbox)
        if protocol.go_away:
            if self._go_away_handles is None:
                self._on_go_away()
            if self._restart_point_reached() and self.deadline != -math.inf:
                logger.info(
                    "connection_id=<%s>, fresh_handle=<%s> | going away: restarting",
                    self.connection_id,
                    protocol.handle_count > (self._go_away_handles or 0),
                )
                # Ends the connection: no further step reads, the reader closes it.
                self.expire_now(self._go_away_error())
        return events

    def _on_go_away(self) -> None:
        """Note the ``goAway`` and bound the connection by its ``timeLeft`` (minus a margin).

        The service keeps the connection for ``timeLeft`` and sends a fresh resumable
        handle right after ``goAway``; restarting at once would resume from the stale
        one. The connection goes on until `_restart_point_reached`, and at the
        latest until ``timeLeft`` minus ``go_away_margin_s`` (then the deadline ends it).
        """
        protocol = self._protocol
        self._go_away_handles = protocol.handle_count
        left = protocol.go_away_time_left
        margin = self._client.go_away_margin_s
        if left is None or left <= margin:
            self._restart_now = True
            return
        self.deadline = min(self.deadline, trio.current_time() + left - margin)
        logger.debug(
            "connection_id=<%s>, time_left=<%s>, margin=<%s> | going away: waiting for a "
            "fresh handle or the end of the turn",
            self.connection_id,
            left,
            margin,
        )

    def _restart_point_reached(self) -> bool:
        """Whether to restart now, after a ``goAway``.

        Without resumption: once no turn is open. With it: once no turn is open and a
        handle newer than both the ``goAway`` and the end of the last turn is held (a
        handle issued mid-turn does not cover the rest of that turn; the service sends
        one after each turn).
        """
        if self._restart_now:
            return True
        protocol = self._protocol
        if protocol.response_id is not None:
            return False
        if not self._settings.session_resumption:
            return True
        newest_needed = max(self._go_away_handles or 0, protocol.handles_at_turn_end)
        return protocol.handle_count > newest_needed

    async def _send_outbox(self) -> None:
        """Send what the protocol answers by itself (error results of refused tool calls)."""
        async with self._write_lock:
            for text in self._protocol.take_outbox():
                await self._send(text)

    def restart_config(self) -> dict[str, Any]:
        """What a new connection needs to continue this session: ``model.connect(**it)``.

        ``{"session_handle": <newest resumable handle>}``, or ``{}`` when the server issued
        none. A caller that ends the connection itself (a proactive restart, a lost
        connection) can use it to resume instead of replaying the history; the input this
        connection sent after the handle is then sent again on the new one.
        """
        handle = self._protocol.session_handle
        if handle is None:
            return {}
        self._model._keep_carryover(handle, self._protocol)
        return {"session_handle": handle}

    def _restart_error(self, message: str) -> BidiModelTimeoutError:
        return BidiModelTimeoutError(message, **self.restart_config())

    def _go_away_error(self) -> BidiModelTimeoutError:
        left = self._protocol.go_away_time_left
        detail = f" ({left:g} s left)" if left is not None else ""
        return self._restart_error(
            f"Gemini Live connection {self.connection_id} is going away{detail}; "
            "restart with the session handle"
        )

    def _timeout_error(self) -> BidiModelTimeoutError:
        if self._go_away_handles is not None:
            return self._go_away_error()
        return self._restart_error(
            f"connection {self.connection_id} reached its time limit ({self._time_limit_s:g} s)"
        )

    async def _send(self, text: str) -> None:
        ws = self._ws
        assert ws is not None
        try:
            await ws.send_text(text)
        except WebSocketClosed as exc:
            raise BidiConnectionError(
                f"cannot send to Gemini Live: {describe_close(exc.code, self._safe(exc.reason))}",
                code=exc.code,
                reason=self._safe(exc.reason),
            ) from exc
        self._protocol.sent(text)

    async def _write(self, event: SendableEvent) -> None:
        if type(event) is BidiAudioInputEvent:
            await self._send(self._protocol.encode_audio(event))
        else:
            await self._send(self._protocol.encode(event))

    async def _start_background(self, nursery: trio.Nursery) -> None:
        # A writer task batches what senders queue (audio frames) into one system call
        # per scheduler pass, as the OpenAI connection does; closing the socket stops it.
        assert self._ws is not None
        await nursery.start(self._ws.run_writer)

    async def _close_transport(self) -> None:
        await self._stack.aclose()

    # ------------------------------------------------------------------ extras

    async def _send_signal(self, text: str) -> None:
        if not self.is_open:
            failure = self._failure
            if failure is not None and self._state != "closed":
                raise fresh_error(failure) from failure
            raise BidiStateError(f"connection {self.connection_id} is not open")
        async with self._write_lock:
            await self._send(text)

    async def send_activity_start(self) -> None:
        """Tell the server the user started speaking (``manual_activity`` only).

        Raises:
            BidiStateError: Manual activity is not configured, or the connection is not open.
        """
        self._require_manual()
        await self._send_signal(_wire.realtime_message(activityStart={}))

    async def send_activity_end(self) -> None:
        """Tell the server the user stopped speaking (``manual_activity`` only).

        Raises:
            BidiStateError: Manual activity is not configured, or the connection is not open.
        """
        self._require_manual()
        await self._send_signal(_wire.realtime_message(activityEnd={}))

    async def send_audio_stream_end(self) -> None:
        """Tell the server the microphone stream paused (flushes automatic detection).

        Raises:
            BidiStateError: The connection is not open.
        """
        await self._send_signal(_wire.realtime_message(audioStreamEnd=True))

    def _require_manual(self) -> None:
        if not self._settings.manual_activity:
            raise BidiStateError("activity signals need provider_config={'manual_activity': True}")
