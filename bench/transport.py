"""Bare transport throughput: receive + JSON parse, and send, per CPU-second.

``python bench/transport.py URL CLIENT DIRECTION N [BATCH]`` with URL ``ws://`` or
``wss://`` (trust comes from ``SSL_CERT_FILE``), CLIENT one of ``trio_bidi`` (our
WebSocket), ``trio_bidi_batched`` (ours with its writer task, ``send`` only),
``trio_bidi_sslstream`` (ours with TLS through ``trio.SSLStream`` instead of its own
memory-BIO TLS: the A/B for ``wss://``), ``trio_bidi_floor`` (``recv`` only: the bytes
of the same messages through our TLS or plaintext wire, no WebSocket parsing and no JSON:
the floor any client on this stack pays),
``trio_websocket`` (default settings), ``trio_websocket_tuned`` (64 KiB receive buffer +
orjson; both need ``trio-websocket`` and ``orjson`` installed), ``websockets_asyncio``
(the client Strands uses) and DIRECTION ``recv`` or ``send``; BATCH is how many messages
the server writes at once when it floods (default 64, 1 = one message per write). Prints
one JSON line:
``{"rate": events per CPU-second, ...}``. The server is ``bench/loadserver.py`` (another
process).
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

FRAME_B64 = base64.b64encode(bytes(960)).decode()
SESSION_UPDATE = json.dumps({"type": "session.update", "session": {"type": "realtime"}})


def _result(n: int, cpu: float, wall: float) -> dict[str, Any]:
    return {"n": n, "cpu_s": cpu, "wall_s": wall, "rate": n / cpu if cpu > 0 else 0.0}


Recv = Callable[[], Awaitable[str | bytes]]
Send = Callable[[str], Awaitable[Any]]


async def _measure(
    recv: Recv,
    send: Send,
    direction: str,
    n: int,
    loads: Callable[[str | bytes], Any] = json.loads,
    dumps: Callable[[Any], str] = json.dumps,
) -> dict[str, Any]:
    """The one loop every client runs: count audio deltas, or send ``n`` appends."""
    await send(SESSION_UPDATE)
    if direction == "recv":
        count = 0
        t0 = w0 = 0.0
        while count < n:
            event = loads(await recv())
            if event["type"] == "response.output_audio.delta":
                if count == 0:
                    t0, w0 = time.process_time(), time.perf_counter()
                count += 1
        return _result(n - 1, time.process_time() - t0, time.perf_counter() - w0)
    t0, w0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        await send(dumps({"type": "input_audio_buffer.append", "audio": FRAME_B64}))
    while True:  # the server reports once it has read them all
        event = loads(await recv())
        if event.get("delta", "").startswith("bench:"):
            break
    return _result(n, time.process_time() - t0, time.perf_counter() - w0)


async def _trio_bidi(url: str, direction: str, n: int) -> dict[str, Any]:
    from trio_bidi._websocket import open_websocket

    async with open_websocket(url) as ws:
        return await _measure(ws.receive, ws.send_text, direction, n)


class _SSLStreamWire:
    """Builds the A/B wire: our WebSocket over ``trio.SSLStream`` (one record per read)."""

    @staticmethod
    def install() -> None:
        import ssl

        import trio

        import trio_bidi._websocket as websocket_module
        from trio_bidi._transport._wire import Wire

        class SSLStreamWire(Wire):
            def __init__(self, tls: trio.SSLStream[trio.SocketStream]) -> None:
                super().__init__(tls.transport_stream)
                self._fd = -1  # no os.write: every write goes through SSLStream
                self.tls = tls

            @property
            def is_tls(self) -> bool:
                return True

            async def flush(self) -> None:
                while self._unsent:
                    data, self._unsent = self._unsent, b""
                    await self.tls.send_all(data)

            async def receive_some(self) -> bytes:
                return await self.tls.receive_some(256 * 1024)

        async def open_wire(
            host: str,
            port: int,
            *,
            ssl_context: ssl.SSLContext | None = None,
            server_hostname: str | None = None,
        ) -> Wire:
            tcp = await trio.open_tcp_stream(host, port)
            assert ssl_context is not None
            tls = trio.SSLStream(tcp, ssl_context, server_hostname=server_hostname or host)
            await tls.do_handshake()
            return SSLStreamWire(tls)

        websocket_module.open_wire = open_wire  # type: ignore[assignment]


async def _trio_bidi_floor(url: str, direction: str, n: int, message_bytes: int) -> dict[str, Any]:
    """Receive the flood's bytes through our wire alone (TLS or plaintext), unparsed."""
    from trio_bidi._websocket import open_websocket

    assert direction == "recv"
    async with open_websocket(url) as ws:
        await ws.send_text(SESSION_UPDATE)
        wire = ws._wire
        total = len(await wire.receive_some())
        t0, w0 = time.process_time(), time.perf_counter()
        expected = n * message_bytes
        while total < expected:
            data = await wire.receive_some()
            if not data:
                break
            total += len(data)
        return _result(n - 1, time.process_time() - t0, time.perf_counter() - w0)


def _delta_frame_bytes() -> int:
    """Bytes on the wire (WebSocket frame, before TLS) of one flood audio delta."""
    import os

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import loadserver

    text = loadserver.audio_delta("resp_flood", "item_flood", loadserver.SILENCE_B64)
    size = len(text.encode())
    return size + (2 if size < 126 else 4 if size < 65536 else 10)


async def _trio_bidi_batched(url: str, direction: str, n: int) -> dict[str, Any]:
    """Our WebSocket with its writer task running (``WebSocket.run_writer``): bursts of
    sends queue their frames and the writer writes each batch with one system call."""
    import trio

    from trio_bidi._websocket import open_websocket

    async with open_websocket(url) as ws, trio.open_nursery() as nursery:
        await nursery.start(ws.run_writer)
        result = await _measure(ws.receive, ws.send_text, direction, n)
        nursery.cancel_scope.cancel()
    return result


async def _trio_websocket(url: str, direction: str, n: int, tuned: bool) -> dict[str, Any]:
    from trio_websocket import open_websocket_url

    kwargs: dict[str, Any] = {}
    loads: Callable[[str | bytes], Any] = json.loads
    dumps: Callable[[Any], str] = json.dumps
    if tuned:
        import orjson

        loads = orjson.loads
        dumps = lambda obj: orjson.dumps(obj).decode()  # noqa: E731
        kwargs = {"receive_buffer_size": 64 * 1024}
    async with open_websocket_url(url, **kwargs) as ws:
        return await _measure(ws.get_message, ws.send_message, direction, n, loads, dumps)


async def _websockets_asyncio(url: str, direction: str, n: int) -> dict[str, Any]:
    import websockets

    async with websockets.connect(url) as ws:
        return await _measure(ws.recv, ws.send, direction, n)


def run(base_url: str, client: str, direction: str, n: int, batch: int = 64) -> dict[str, Any]:
    scenario = "flood" if direction == "recv" else "sink"
    url = f"{base_url}/v1/realtime?model=gpt-realtime&scenario={scenario}&n={n}&batch={batch}"
    if client == "websockets_asyncio":
        import asyncio

        return asyncio.run(_websockets_asyncio(url, direction, n))
    import trio

    if client == "trio_bidi":
        return trio.run(_trio_bidi, url, direction, n)
    if client == "trio_bidi_sslstream":
        _SSLStreamWire.install()
        return trio.run(_trio_bidi, url, direction, n)
    if client == "trio_bidi_floor":
        return trio.run(_trio_bidi_floor, url, direction, n, _delta_frame_bytes())
    if client == "trio_bidi_batched":
        return trio.run(_trio_bidi_batched, url, direction, n)
    tuned = client == "trio_websocket_tuned"
    return trio.run(_trio_websocket, url, direction, n, tuned)


if __name__ == "__main__":
    url_arg, client_arg, direction_arg, n_arg = sys.argv[1:5]
    batch_arg = int(sys.argv[5]) if len(sys.argv) > 5 else 64
    print(json.dumps(run(url_arg, client_arg, direction_arg, int(n_arg), batch_arg)))
