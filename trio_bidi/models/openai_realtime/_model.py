"""The OpenAI Realtime model and its connection: the Trio transport around the protocol."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio

from ..._websocket import WebSocket, WebSocketClosed, WebSocketHandshakeError, open_websocket
from ...errors import (
    BidiConnectionError,
    BidiModelTimeoutError,
    BidiProtocolError,
    BidiProviderError,
)
from ...events import BidiOutputEvent
from ...types import Message, ToolSpec
from .._base import ConnectionBase, SendableEvent
from .._untrusted import server_text, url_without_query
from . import _wire
from ._config import (
    DEFAULT_MODEL_ID,
    ClientSettings,
    resolve_client_config,
    resolve_provider_config,
)
from ._protocol import OpenAIRealtimeProtocol

__all__ = ["BidiOpenAIRealtimeModel", "OpenAIRealtimeConnection"]

logger = logging.getLogger(__name__)


class BidiOpenAIRealtimeModel:
    """The OpenAI Realtime API (GA) as a bidirectional model.

    Args:
        model_id: The realtime model, for example ``"gpt-realtime"``.
        provider_config: ``audio`` (``input_rate``, ``output_rate``, ``channels``,
            ``format``, ``voice``, ``speed``; the API speaks 24 kHz mono PCM), ``inference``
            (``max_output_tokens``, ``output_modalities``, ``tool_choice``, ...),
            ``turn_detection`` (``"server_vad"`` by default, ``"semantic_vad"``, a dict of
            settings, or None / ``"manual"``), ``transcription`` (input transcription
            settings or model name; None turns it off) and ``noise_reduction``
            (``"near_field"``, ``"far_field"`` or a dict; None by default).
        client_config: ``api_key`` (else ``OPENAI_API_KEY``), ``organization`` /
            ``project`` (else ``OPENAI_ORGANIZATION`` / ``OPENAI_PROJECT``), ``url``
            (default ``wss://api.openai.com/v1/realtime``; ``?model=`` is appended),
            ``timeout_s`` (the connection's time limit, default and maximum 3000),
            ``connect_timeout_s`` (handshake and ``session.created``, default 15) and
            ``max_json_depth`` (deepest nesting accepted in server JSON and function
            arguments, default 64).
        **kwargs: Accepted and ignored, as Strands reserves them for future parameters
            (their names are logged at warning level).

    Raises:
        BidiConfigurationError: A key is unknown, a value is out of range, or there is
            no API key.
    """

    def __init__(
        self,
        model_id: str = DEFAULT_MODEL_ID,
        provider_config: Mapping[str, Any] | None = None,
        client_config: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            logger.warning(
                "keys=<%s> | ignoring unknown keyword arguments (Strands reserves them for "
                "future parameters)",
                sorted(kwargs),
            )
        self._model_id = model_id
        self._config = resolve_provider_config(provider_config)
        self._client = resolve_client_config(client_config)

    def __repr__(self) -> str:
        url = url_without_query(self._client.url)
        return f"BidiOpenAIRealtimeModel(model_id={self._model_id!r}, url={url!r})"

    @property
    def model_id(self) -> str:
        """The realtime model's name."""
        return self._model_id

    @property
    def config(self) -> dict[str, Any]:
        """The resolved provider configuration; ``config["audio"]`` is an AudioConfig."""
        return self._config

    @property
    def client_settings(self) -> ClientSettings:
        """The resolved client settings (endpoint, time limit; the key stays hidden)."""
        return self._client

    @asynccontextmanager
    async def connect(
        self,
        system_prompt: str | None = None,
        tools: Sequence[ToolSpec] | None = None,
        messages: Sequence[Message] | None = None,
        **restart_config: Any,
    ) -> AsyncIterator[OpenAIRealtimeConnection]:
        """Open a connection, configure the session and replay ``messages`` as items.

        Args:
            system_prompt: Sent as the session's instructions.
            tools: Sent as function tools.
            messages: History replayed as conversation items.
            **restart_config: Accepted for the contract; OpenAI needs none.

        Yields:
            The open connection.

        Raises:
            BidiConnectionError: The server could not be reached or refused the upgrade.
            BidiProviderError: The server answered the opening with an error event.
            BidiConfigurationError: The history holds content the API cannot take.
        """
        if restart_config:
            logger.debug("keys=<%s> | ignoring restart config", sorted(restart_config))
        connection = OpenAIRealtimeConnection(
            self._model_id,
            self._config,
            self._client,
            system_prompt=system_prompt,
            tools=tools or (),
            messages=messages or (),
        )
        async with connection.session():
            yield connection


class OpenAIRealtimeConnection(ConnectionBase):
    """One OpenAI Realtime WebSocket session (see `ConnectionBase` for the contract).

    Besides the contract it offers `report_playback`, which truncates the current
    assistant audio item to what the user heard after a barge-in.
    """

    def __init__(
        self,
        model_id: str,
        config: Mapping[str, Any],
        client: ClientSettings,
        *,
        system_prompt: str | None,
        tools: Sequence[ToolSpec],
        messages: Sequence[Message],
    ) -> None:
        super().__init__(f"openai-{uuid.uuid4().hex[:12]}", model_id, time_limit_s=client.timeout_s)
        self._client = client
        self._url = client.url_for(model_id)
        self._protocol = OpenAIRealtimeProtocol(config, max_json_depth=client.max_json_depth)
        # Built before the socket opens, so bad history fails without a connection.
        self._open_texts = self._protocol.open_messages(system_prompt, tools, messages)
        self._stack = AsyncExitStack()
        self._ws: WebSocket | None = None

    @property
    def protocol(self) -> OpenAIRealtimeProtocol:
        """The session's sans-IO protocol state."""
        return self._protocol

    @property
    def _public_url(self) -> str:
        return url_without_query(self._client.url)

    def _safe(self, text: object) -> str:
        """Server-chosen text made safe for messages and logs (no key, bounded, escaped)."""
        return server_text(text, (self._client.api_key,))

    async def _open(self) -> None:
        try:
            ws = await self._stack.enter_async_context(
                open_websocket(
                    self._url,
                    headers=self._client.headers(),
                    connect_timeout_s=self._client.connect_timeout_s,
                )
            )
        except WebSocketHandshakeError as exc:
            raise BidiConnectionError(
                f"cannot open the OpenAI Realtime connection to {self._public_url}: "
                f"{self._safe(exc)}",
                code=exc.status,
            ) from exc
        self._ws = ws
        try:
            with trio.fail_after(self._client.connect_timeout_s):
                await self._wait_session_created(ws)
            for text in self._open_texts:
                await ws.send_text(text)
        except trio.TooSlowError as exc:
            raise BidiConnectionError(
                f"no session.created from {self._public_url} within "
                f"{self._client.connect_timeout_s:g} s"
            ) from exc
        except WebSocketClosed as exc:
            raise BidiConnectionError(
                "the OpenAI Realtime server closed the connection while opening: "
                f"{self._safe(exc)}",
                code=exc.code,
                reason=self._safe(exc.reason),
            ) from exc
        logger.debug(
            "connection_id=<%s>, url=<%s>, history_items=<%d> | session configured",
            self.connection_id,
            self._public_url,
            len(self._open_texts) - 1,
        )

    async def _start_background(self, nursery: trio.Nursery) -> None:
        # A writer task batches what senders queue (audio frames) into one system call
        # per scheduler pass; closing the socket stops it.
        assert self._ws is not None
        await nursery.start(self._ws.run_writer)

    async def _wait_session_created(self, ws: WebSocket) -> None:
        while True:
            try:
                message = _wire.decode(await ws.receive(), self._client.max_json_depth)
            except BidiProtocolError as exc:
                logger.warning("error=<%s> | malformed message while opening", exc)
                continue
            kind = message["type"]
            if kind == "session.created":
                return
            if kind == "error":
                error = message.get("error") or {}
                raise BidiProviderError(
                    self._safe(error.get("message") or "the server refused the session"),
                    code=error.get("code") or error.get("type"),
                    raw=message,
                )
            logger.debug("type=<%s> | message before session.created", kind)

    async def _read_step(self) -> list[BidiOutputEvent] | None:
        ws = self._ws
        assert ws is not None
        try:
            raw = await ws.receive()
        except WebSocketClosed as exc:
            if not exc.by_peer:
                return None
            raise BidiConnectionError(
                f"the OpenAI Realtime connection ended: {self._safe(exc)}",
                code=exc.code,
                reason=self._safe(exc.reason),
            ) from exc
        protocol = self._protocol
        events = protocol.receive_raw(raw)
        if protocol.has_outbox:
            self._start_soon(self._send_outbox)
        if protocol.expired:
            self.expire_now(
                BidiModelTimeoutError(
                    f"connection {self.connection_id}: the OpenAI Realtime server ended "
                    "the session at its maximum duration (session_expired)"
                )
            )
        return events

    async def _send_texts(self, texts: list[str]) -> None:
        ws = self._ws
        assert ws is not None
        try:
            for text in texts:
                await ws.send_text(text)
        except WebSocketClosed as exc:
            raise self._send_error(exc) from exc

    def _send_error(self, exc: WebSocketClosed) -> BidiConnectionError:
        return BidiConnectionError(
            f"cannot send to the OpenAI Realtime server: {self._safe(exc)}",
            code=exc.code,
            reason=self._safe(exc.reason),
        )

    async def _send_outbox(self) -> None:
        """Send what the protocol answers by itself (error results of malformed calls)."""
        async with self._write_lock:
            await self._send_texts(self._protocol.take_outbox())

    async def _write(self, event: SendableEvent) -> None:
        texts = self._protocol.send(event)
        if len(texts) != 1:
            await self._send_texts(texts)
            return
        ws = self._ws  # one message (an audio frame): one coroutine less per frame
        assert ws is not None
        try:
            await ws.send_text(texts[0])
        except WebSocketClosed as exc:
            raise self._send_error(exc) from exc

    async def report_playback(self, played_ms: int) -> None:
        """Truncate the current assistant audio item to what the user heard.

        Sends ``conversation.item.truncate`` once per item, clamped to the audio
        received; does nothing before any audio arrived or once the connection ended
        (the connection's own failure is reported by ``receive``).

        Args:
            played_ms: Milliseconds of the current item's audio actually played.
        """
        if not self.is_open:
            logger.debug("played_ms=<%s> | connection not open; playback report ignored", played_ms)
            await trio.lowlevel.checkpoint()
            return
        texts = self._protocol.report_playback(played_ms)
        if not texts:
            await trio.lowlevel.checkpoint()
            return
        try:
            async with self._write_lock:
                await self._send_texts(texts)
        except BidiConnectionError as exc:
            logger.debug("error=<%s> | playback report not sent", exc)

    async def _close_transport(self) -> None:
        try:
            await self._stack.aclose()
        except (WebSocketClosed, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            logger.debug("connection_id=<%s> | transport already broken", self.connection_id)
