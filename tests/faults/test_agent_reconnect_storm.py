"""A peer that accepts, sends one event and closes (1011), again and again.

Each connection opens and delivers an event, so it is not a failed attempt; without a
limit the agent reconnected ~19 times a second forever. Now rapid reconnects back off and
the agent gives up after ``max_short_connections`` short-lived connections in a row.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import json
import struct

import pytest
import trio

from tests.agent._helpers import of_type
from trio_bidi import (
    BidiAgent,
    BidiConnectionError,
    BidiConnectionRestartEvent,
    BidiErrorEvent,
    BidiInterruptionEvent,
)
from trio_bidi.models import BidiOpenAIRealtimeModel

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _text_frame(message: dict[str, object]) -> bytes:
    payload = json.dumps(message).encode()
    if len(payload) < 126:
        return bytes([0x81, len(payload)]) + payload
    return bytes([0x81, 126]) + struct.pack("!H", len(payload)) + payload


def _close_frame(code: int, reason: bytes) -> bytes:
    payload = struct.pack("!H", code) + reason
    return bytes([0x88, len(payload)]) + payload


class _OneEventThenClose:
    """Upgrades, sends session.created and one event, then closes with 1011."""

    def __init__(self) -> None:
        self.accepted = 0
        self.accepted_at: list[float] = []

    async def handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            self.accepted += 1
            self.accepted_at.append(trio.current_time())
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    return
                request += chunk
            key = next(
                line.split(b":", 1)[1].strip()
                for line in request.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
            await stream.send_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            await stream.send_all(
                _text_frame({"type": "session.created", "event_id": "e1", "session": {}})
            )
            await trio.sleep(0.01)  # the client configures the session meanwhile
            await stream.send_all(
                _text_frame({"type": "input_audio_buffer.speech_started", "event_id": "e2"})
            )
            await stream.send_all(_close_frame(1011, b"internal error"))
            with trio.move_on_after(1):
                while await stream.receive_some(4096):
                    pass


async def _collect(agent: BidiAgent, events: list[object]) -> None:
    async for event in agent.receive():
        events.append(event)


async def test_a_peer_that_drops_every_connection_makes_the_agent_back_off_and_give_up() -> None:
    server = _OneEventThenClose()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        model = BidiOpenAIRealtimeModel(
            client_config={"api_key": "k", "url": f"ws://127.0.0.1:{port}/v1/realtime"}
        )
        events: list[object] = []
        started = trio.current_time()
        async with BidiAgent(
            model=model,
            restart_backoff_s=0.05,
            restart_backoff_max_s=0.4,
            short_connection_s=2,
            max_short_connections=6,
        ) as agent:
            with pytest.raises(BidiConnectionError, match="6 times in a row") as info:
                await _collect(agent, events)
            stats = agent.statistics()
        elapsed = trio.current_time() - started
        nursery.cancel_scope.cancel()
    assert server.accepted == 6
    assert stats.short_lived_connections == 6
    assert len(of_type(events, BidiInterruptionEvent)) == 6  # each delivered its event
    assert len(of_type(events, BidiConnectionRestartEvent)) == 5
    error_event = of_type(events, BidiErrorEvent)[-1]
    assert isinstance(error_event.error, BidiConnectionError)
    assert error_event.details == {"short_lived_connections": 6}
    assert "1011" in str(info.value.__cause__) or "internal error" in str(info.value.__cause__)
    # Backoff from the second short-lived connection on: 0.05 + 0.1 + 0.2 + 0.4 s at least.
    gaps = [b - a for a, b in itertools.pairwise(server.accepted_at)]
    assert sum(gaps) >= 0.75
    assert gaps[-1] >= 0.4
    assert elapsed < 10
