"""``BidiWebSocketIO``: a browser (or any WebSocket client) as the agent's input and output.

It works on any Starlette (ASGI) WebSocket, so it can be used in an application's own
routes as well as in [`trio_bidi.server.create_app`][trio_bidi.server.create_app]::

    @app.websocket_route("/talk")
    async def talk(websocket: WebSocket) -> None:
        await websocket.accept()
        io = BidiWebSocketIO(websocket)
        agent = BidiAgent(model=model, tools=[...])
        with contextlib.suppress(BidiClientDisconnectedError):
            await agent.run(inputs=[io.input()], outputs=[io.output()])

The wire is described in [`trio_bidi.server._wire`][trio_bidi.server._wire]. Messages the
page sends are checked (size, rate, type, audio format, base64) before anything reaches the agent; a
refused message gets a ``bidi_error`` event back and is counted. When the page goes away
the input raises
[`BidiClientDisconnectedError`][trio_bidi.server.BidiClientDisconnectedError], which
ends ``agent.run``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import attrs
import trio
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .._util import PromptLock
from ..errors import BidiConfigurationError, BidiStateError
from ..events import (
    BidiAudioStreamEvent,
    BidiErrorEvent,
    BidiInputEvent,
    BidiOutputEvent,
    BidiResponseStartEvent,
    ToolResultEvent,
)
from ..io._base import AgentHandle
from ._wire import (
    AudioFormat,
    BidiClientDisconnectedError,
    BidiMessageRefusedError,
    BidiRateLimitError,
    PlaybackReport,
    decode_client_message,
    encode_server_event,
)

__all__ = ["BidiWebSocketIO", "BidiWebSocketInput", "BidiWebSocketOutput", "WebSocketIOStatistics"]

logger = logging.getLogger(__name__)

_ERROR_REPORTS_PER_S = 10.0  # refusals reported back a second (burst: twice that)


@attrs.frozen
class WebSocketIOStatistics:
    """A snapshot of a `BidiWebSocketIO`'s counters.

    Attributes:
        messages_received: Messages from the page accepted (input events and reports).
        messages_refused: Messages from the page refused (malformed, too large, too fast).
        rate_limited: Of those, the ones refused for the rate limit.
        errors_reported: Refusals reported back to the page as ``bidi_error`` events.
        events_sent: Events sent to the page.
        audio_sent_ms: Model audio sent to the page.
        playback_reports: Playback reports received (one per interruption).
    """

    messages_received: int = 0
    messages_refused: int = 0
    rate_limited: int = 0
    errors_reported: int = 0
    events_sent: int = 0
    audio_sent_ms: float = 0.0
    playback_reports: int = 0


class _TokenBucket:
    """``rate`` messages a second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp: float | None = None

    def take(self) -> bool:
        now = trio.current_time()
        if self._stamp is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class BidiWebSocketIO:
    """One WebSocket as the agent's input (what the page sends) and output (what it shows).

    Args:
        websocket: A Starlette WebSocket (accepted at ``start`` if it is not yet).
        session_id: Told to the page in the first message (``gateway_session``), so it can
            reconnect to the same conversation.
        binary_audio: Send the model's audio as binary frames (the default: cheaper than
            base64 in JSON on both sides, see ``docs/serving.md``); False sends
            ``bidi_audio_stream`` JSON events.
        max_message_bytes: The largest message accepted from the page.
        max_messages_per_s: The page's average message rate allowed (a token bucket).
        burst: How many messages the page may send at once above the average rate.
        max_refused: After this many refused messages the connection is closed (code
            1008) by raising [`BidiMessageRefusedError`][trio_bidi.server.BidiMessageRefusedError].
        session_info: Extra JSON-serialisable fields for the ``gateway_session`` message.
        history_turns: How many turns of restored history the first message carries.

    Raises:
        BidiConfigurationError: A limit is out of range.
    """

    def __init__(
        self,
        websocket: WebSocket,
        *,
        session_id: str | None = None,
        binary_audio: bool = True,
        max_message_bytes: int = 256 * 1024,
        max_messages_per_s: float = 100.0,
        burst: float = 200.0,
        max_refused: int = 100,
        session_info: Mapping[str, Any] | None = None,
        history_turns: int = 50,
    ) -> None:
        if max_message_bytes < 1024:
            raise BidiConfigurationError(
                f"max_message_bytes must be at least 1024, got {max_message_bytes}"
            )
        if max_messages_per_s <= 0 or burst < 1:
            raise BidiConfigurationError("max_messages_per_s must be > 0 and burst >= 1")
        self.websocket = websocket
        self.session_id = session_id
        self.binary_audio = binary_audio
        self.max_message_bytes = max_message_bytes
        self.max_refused = max_refused
        self.session_info = dict(session_info or {})
        self.history_turns = history_turns
        self._bucket = _TokenBucket(max_messages_per_s, burst)
        self._error_bucket = _TokenBucket(_ERROR_REPORTS_PER_S, 2 * _ERROR_REPORTS_PER_S)
        self._send_lock = PromptLock()
        self._agent: AgentHandle | None = None
        self._input_audio: AudioFormat | None = None
        self._output_audio: AudioFormat | None = None
        self._greeted = False
        self._closed = False
        self._response_audio_ms = 0.0
        self._stats = WebSocketIOStatistics()
        self._input = BidiWebSocketInput(self)
        self._output = BidiWebSocketOutput(self)

    def input(self) -> BidiWebSocketInput:
        """Return the input (what the page says and sends)."""
        return self._input

    def output(self) -> BidiWebSocketOutput:
        """Return the output (what the page shows and plays)."""
        return self._output

    def statistics(self) -> WebSocketIOStatistics:
        """Return a frozen snapshot of the counters."""
        return self._stats

    @property
    def input_audio(self) -> AudioFormat:
        """The audio format the model takes (known once started)."""
        if self._input_audio is None:
            raise BidiStateError("the WebSocket IO is not started")
        return self._input_audio

    # ------------------------------------------------------------------ lifecycle

    async def _start(self, agent: AgentHandle) -> None:
        if self._greeted:  # the input and the output both start it
            await trio.lowlevel.checkpoint()
            return
        self._agent = agent
        audio = agent.model.config.get("audio")
        audio = audio if isinstance(audio, Mapping) else {}
        channels = int(audio.get("channels", 1))
        self._input_audio = AudioFormat(int(audio.get("input_rate", 16000)), channels)
        self._output_audio = AudioFormat(int(audio.get("output_rate", 24000)), channels)
        if self.websocket.application_state == WebSocketState.CONNECTING:
            await self.websocket.accept()
        self._greeted = True
        await self._send_json(self._hello(agent))

    def _hello(self, agent: AgentHandle) -> dict[str, Any]:
        assert self._input_audio is not None
        assert self._output_audio is not None
        history = _history(getattr(agent, "messages", None) or [], self.history_turns)
        return {
            **self.session_info,
            "type": "gateway_session",
            "session_id": self.session_id,
            "model": agent.model.model_id,
            "restored_messages": len(getattr(agent, "messages", None) or []),
            "history": history,
            "input_audio": self._input_audio.to_dict(),
            "output_audio": self._output_audio.to_dict(),
            "binary_audio": self.binary_audio,
            "limits": {
                "max_message_bytes": self.max_message_bytes,
                "max_messages_per_s": self._bucket.rate,
            },
        }

    async def _stop(self) -> None:
        self._closed = True
        await trio.lowlevel.checkpoint()

    # ------------------------------------------------------------------ sending

    async def _send(self, frame: str | bytes) -> None:
        await self._send_lock.acquire()
        try:
            if isinstance(frame, bytes):
                await self.websocket.send_bytes(frame)
            else:
                await self.websocket.send_text(frame)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            # Starlette raises RuntimeError (WebSocketDisconnected) once the socket closed.
            raise BidiClientDisconnectedError(f"the page's WebSocket is closed: {exc}") from exc
        finally:
            self._send_lock.release()
        self._stats = attrs.evolve(self._stats, events_sent=self._stats.events_sent + 1)

    async def _send_json(self, message: Mapping[str, Any]) -> None:
        await self._send(json.dumps(message, separators=(",", ":"), ensure_ascii=False))

    async def _send_event(self, event: BidiOutputEvent | ToolResultEvent) -> None:
        if isinstance(event, BidiResponseStartEvent):
            self._response_audio_ms = 0.0
        elif isinstance(event, BidiAudioStreamEvent):
            ms = _audio_ms(event)
            self._response_audio_ms += ms
            self._stats = attrs.evolve(self._stats, audio_sent_ms=self._stats.audio_sent_ms + ms)
        await self._send(encode_server_event(event, binary_audio=self.binary_audio))

    async def _refuse(self, error: BidiMessageRefusedError) -> None:
        stats = self._stats
        self._stats = attrs.evolve(
            stats,
            messages_refused=stats.messages_refused + 1,
            rate_limited=stats.rate_limited + isinstance(error, BidiRateLimitError),
        )
        logger.debug("session_id=<%s>, error=<%s> | client message refused", self.session_id, error)
        if self._stats.messages_refused >= self.max_refused:
            raise BidiMessageRefusedError(
                f"{self._stats.messages_refused} messages refused; closing the connection"
            ) from error
        if self._error_bucket.take():
            self._stats = attrs.evolve(self._stats, errors_reported=self._stats.errors_reported + 1)
            await self._send_event(
                BidiErrorEvent(error, details={"refused": self._stats.messages_refused})
            )

    # ------------------------------------------------------------------ receiving

    async def _receive(self) -> BidiInputEvent:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                self._closed = True
                raise BidiClientDisconnectedError(
                    f"the page closed its WebSocket (code {message.get('code', 1005)})"
                )
            data = message.get("bytes")
            if data is None:
                data = message.get("text") or ""
            if not self._bucket.take():
                await self._refuse(
                    BidiRateLimitError(
                        f"more than {self._bucket.rate:g} messages a second; message dropped"
                    )
                )
                continue
            try:
                decoded = decode_client_message(
                    data, audio=self.input_audio, max_bytes=self.max_message_bytes
                )
            except BidiMessageRefusedError as exc:
                await self._refuse(exc)
                continue
            self._stats = attrs.evolve(
                self._stats, messages_received=self._stats.messages_received + 1
            )
            if isinstance(decoded, PlaybackReport):
                await self._playback(decoded)
                continue
            return decoded

    async def _playback(self, report: PlaybackReport) -> None:
        self._stats = attrs.evolve(self._stats, playback_reports=self._stats.playback_reports + 1)
        if self._response_audio_ms == 0:
            await trio.lowlevel.checkpoint()  # no audio of this response was sent: no-op
            return
        # The page cannot have played more than it was sent of this response.
        played = min(report.played_ms, int(self._response_audio_ms))
        assert self._agent is not None
        logger.debug("session_id=<%s>, played_ms=<%d> | playback report", self.session_id, played)
        await self._agent.report_playback(played)


class BidiWebSocketInput:
    """``await ws_input()`` returns the page's next valid input event.

    Made by `BidiWebSocketIO.input`. Playback reports are handled here (they go to
    ``agent.report_playback``); refused messages are answered with a ``bidi_error``.

    Raises:
        BidiClientDisconnectedError: The page closed the WebSocket.
        BidiMessageRefusedError: The page sent too many refused messages.
    """

    def __init__(self, io: BidiWebSocketIO) -> None:
        self._io = io

    async def start(self, agent: AgentHandle) -> None:
        """Accept the WebSocket if needed and send the ``gateway_session`` message."""
        await self._io._start(agent)

    async def stop(self) -> None:
        """Stop reading (the WebSocket is closed by whoever accepted it)."""
        await self._io._stop()

    async def __call__(self) -> BidiInputEvent:
        """Wait for the page's next valid input event."""
        return await self._io._receive()


class BidiWebSocketOutput:
    """``await ws_output(event)`` sends one agent event to the page.

    Made by `BidiWebSocketIO.output`. Every event goes as its dict form in JSON;
    the model's audio goes as binary frames unless ``binary_audio=False``.

    Raises:
        BidiClientDisconnectedError: The WebSocket is closed.
    """

    def __init__(self, io: BidiWebSocketIO) -> None:
        self._io = io

    async def start(self, agent: AgentHandle) -> None:
        """Accept the WebSocket if needed and send the ``gateway_session`` message."""
        await self._io._start(agent)

    async def __call__(self, event: BidiOutputEvent | ToolResultEvent) -> None:
        """Send one event to the page."""
        await self._io._send_event(event)


def _audio_ms(event: BidiAudioStreamEvent) -> float:
    # 4 base64 characters carry 3 bytes; padding makes this exact to within a sample.
    size = len(event.audio) * 3 // 4 - event.audio.count("=", -2)
    return 1000.0 * size / (2 * event.channels * event.sample_rate)


def _history(messages: list[Any], turns: int) -> list[dict[str, str]]:
    """The text of the last ``turns`` messages, for the page to show after a reconnect."""
    shown: list[dict[str, str]] = []
    for message in messages[-turns:]:
        if not isinstance(message, Mapping):
            continue
        texts = [
            str(block["text"])
            for block in message.get("content") or ()
            if isinstance(block, Mapping) and isinstance(block.get("text"), str)
        ]
        if texts and message.get("role") in ("user", "assistant"):
            shown.append({"role": str(message["role"]), "text": " ".join(texts)})
    return shown
