"""Regression: a frame in the same TCP read as the handshake response must not be lost.

The OpenAI Realtime server speaks first (``session.created`` right after the 101), so the
opening response and the first frame often arrive together. This server writes both with
one ``send_all`` to make that deterministic.
"""

from __future__ import annotations

import functools

import trio
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from trio_bidi._websocket import open_websocket


async def handshake_and_frame_in_one_write(stream: trio.SocketStream) -> None:
    protocol = ServerProtocol()
    while True:
        data = await stream.receive_some(65536)
        protocol.receive_data(data)
        events = protocol.events_received()
        if events:
            break
    request = events[0]
    assert isinstance(request, Request)
    protocol.send_response(protocol.accept(request))
    protocol.send_frame(Frame(Opcode.TEXT, b'{"type":"session.created"}'))
    await stream.send_all(b"".join(protocol.data_to_send()))
    # Answer the client's close handshake, then hang up.
    while data := await stream.receive_some(65536):
        protocol.receive_data(data)
        chunks = protocol.data_to_send()
        await stream.send_all(b"".join(chunks))
        if b"" in chunks:  # websockets' signal that the server closes TCP now
            break
    await stream.aclose()


async def test_first_frame_arrives_with_the_handshake() -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, handshake_and_frame_in_one_write, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        async with open_websocket(f"ws://127.0.0.1:{port}/v1/realtime?model=m") as ws:
            with trio.fail_after(5):
                assert await ws.receive() == '{"type":"session.created"}'
        nursery.cancel_scope.cancel()
