"""``BidiWebSocketIO`` on its own, in an application's own Starlette route."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
import trio
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from tests.fixtures.openai import openai_model
from trio_bidi import BidiAgent
from trio_bidi._websocket import WebSocketClosed, open_websocket
from trio_bidi.server import BidiClientDisconnectedError, BidiMessageRefusedError, BidiWebSocketIO
from trio_bidi.testing import OpenAIRealtimeEmulator

from ._helpers import receive_json, receive_until, running, ws_url


class Outcomes(list[str]):
    """What the route's handler saw; ``finished`` is set when the handler returns."""

    def __init__(self) -> None:
        super().__init__()
        self.finished = trio.Event()


def own_app(emulator: OpenAIRealtimeEmulator, outcomes: Outcomes, **io_options: Any) -> Starlette:
    async def talk(websocket: WebSocket) -> None:
        io = BidiWebSocketIO(websocket, session_id="own-route", **io_options)
        agent = BidiAgent(model=openai_model(emulator))
        try:
            await agent.run(inputs=[io.input()], outputs=[io.output()])
        except BidiClientDisconnectedError:
            outcomes.append("disconnected")
        except BidiMessageRefusedError as exc:
            outcomes.append(f"refused: {exc}")
            with contextlib.suppress(RuntimeError):
                await websocket.close(code=1008)
        outcomes.append(f"stats: {io.statistics()}")
        outcomes.finished.set()

    return Starlette(routes=[WebSocketRoute("/talk", talk)])


async def test_in_an_own_route_it_accepts_greets_and_converses(
    openai_emulator: OpenAIRealtimeEmulator,
) -> None:
    outcomes = Outcomes()
    async with running(own_app(openai_emulator, outcomes, binary_audio=False)) as base:
        async with open_websocket(ws_url(base, "/talk")) as ws:
            hello = await receive_json(ws)
            assert hello["session_id"] == "own-route"
            assert hello["binary_audio"] is False
            await ws.send_text(
                json.dumps({"type": "bidi_text_input", "text": "hi", "role": "user"})
            )
            await receive_until(ws, lambda m: m["type"] == "bidi_audio_stream")
            await receive_until(ws, lambda m: m["type"] == "bidi_response_complete")
        await outcomes.finished.wait()  # the handler ends after the client has gone
    assert outcomes[0] == "disconnected"
    assert "messages_received=1" in outcomes[1]
    assert "audio_sent_ms=600.0" in outcomes[1]


async def test_too_many_refused_messages_close_the_connection(
    openai_emulator: OpenAIRealtimeEmulator,
) -> None:
    outcomes = Outcomes()
    async with running(own_app(openai_emulator, outcomes, max_refused=3)) as base:
        async with open_websocket(ws_url(base, "/talk")) as ws:
            await receive_json(ws)
            for _ in range(3):
                await ws.send_text("not json")
            with pytest.raises(WebSocketClosed) as closed:
                await drain(ws)
            assert closed.value.code == 1008
        await outcomes.finished.wait()  # the handler ends after the client has gone
    assert outcomes[0] == "refused: 3 messages refused; closing the connection"


async def drain(ws: Any) -> None:
    while True:
        await ws.receive()
