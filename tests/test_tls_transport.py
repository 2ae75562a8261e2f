"""TLS done by the transport itself (``ssl.SSLObject`` + memory BIOs), on real sockets.

The whole WebSocket suite (tests/test_websocket.py) also runs over ``wss://``; this module
covers what only TLS has: certificate and host name checks, ALPN, TLS 1.2, a peer that
ends TCP without ``close_notify``, and that every receive hands over all the records one
socket read brought in.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import pytest
import trio
import trio.testing
import trustme

from trio_bidi._transport._wire import Wire, open_wire, wrap_server_wire
from trio_bidi._websocket import (
    WebSocket,
    WebSocketClosed,
    WebSocketHandshakeError,
    WebSocketServer,
    open_websocket,
    serve_websocket,
)


@attrs.frozen
class TLSContexts:
    """A server context with a certificate for 127.0.0.1/localhost, and a client trusting it."""

    ca: trustme.CA
    server: ssl.SSLContext
    client: ssl.SSLContext


def make_tls_contexts() -> TLSContexts:
    """Issue a test CA and a server certificate, and build both contexts."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return TLSContexts(ca, server, client)


@pytest.fixture(scope="session")
def tls_contexts() -> TLSContexts:
    """The test CA's contexts (one per test session: issuing costs a little)."""
    return make_tls_contexts()


async def _echo(ws: WebSocket) -> None:
    try:
        while True:
            message = await ws.receive()
            await (ws.send_text(message) if isinstance(message, str) else ws.send_bytes(message))
    except WebSocketClosed:
        pass


@asynccontextmanager
async def tls_echo_server(context: ssl.SSLContext) -> AsyncIterator[WebSocketServer]:
    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            lambda task_status: serve_websocket(_echo, ssl_context=context, task_status=task_status)
        )
        yield server
        server.close()


async def test_wss_round_trip_with_the_servers_certificate_checked(
    tls_contexts: TLSContexts,
) -> None:
    async with (
        tls_echo_server(tls_contexts.server) as server,
        open_websocket(server.url, ssl_context=tls_contexts.client) as ws,
    ):
        assert server.url.startswith("wss://")
        assert ws.is_tls
        for size in (1, 1000, 20_000, 3_000_000):  # one record, several, many
            await ws.send_text("é" * size)
            assert await ws.receive() == "é" * size
        await ws.send_bytes(b"\x00" * 70_000)
        assert await ws.receive() == b"\x00" * 70_000


async def test_untrusted_certificate_is_a_handshake_error(tls_contexts: TLSContexts) -> None:
    stranger = ssl.create_default_context()
    trustme.CA().configure_trust(stranger)
    async with tls_echo_server(tls_contexts.server) as server:
        with pytest.raises(WebSocketHandshakeError, match="CERTIFICATE_VERIFY_FAILED"):
            async with open_websocket(server.url, ssl_context=stranger):
                pass


async def test_host_name_mismatch_is_a_handshake_error() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("other.example").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with tls_echo_server(server_context) as server:
        with pytest.raises(WebSocketHandshakeError, match="CERTIFICATE_VERIFY_FAILED"):
            async with open_websocket(server.url, ssl_context=client_context):
                pass


async def test_alpn_and_tls_1_2_from_the_callers_context(tls_contexts: TLSContexts) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_contexts.ca.issue_cert("127.0.0.1").configure_cert(server_context)
    server_context.set_alpn_protocols(["http/1.1"])
    client_context = ssl.create_default_context()
    tls_contexts.ca.configure_trust(client_context)
    client_context.maximum_version = ssl.TLSVersion.TLSv1_2
    client_context.set_alpn_protocols(["h2", "http/1.1"])
    async with (
        tls_echo_server(server_context) as server,
        open_websocket(server.url, ssl_context=client_context) as ws,
    ):
        sslobj = ws._wire.ssl_object  # type: ignore[attr-defined]
        assert sslobj.version() == "TLSv1.2"
        assert sslobj.selected_alpn_protocol() == "http/1.1"
        await ws.send_text("over 1.2")
        assert await ws.receive() == "over 1.2"


@asynccontextmanager
async def tls_pair(tls_contexts: TLSContexts) -> AsyncIterator[tuple[Wire, Wire]]:
    """A client and a server :class:`Wire` over loopback TLS."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    accepted: list[Wire] = []

    async def accept() -> None:
        stream = await listener.accept()
        accepted.append(await wrap_server_wire(stream, tls_contexts.server))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept)
        client = await open_wire("127.0.0.1", port, ssl_context=tls_contexts.client)
    await listener.aclose()
    (server,) = accepted
    try:
        yield client, server
    finally:
        client.close_now()
        server.close_now()


async def test_one_receive_returns_every_record_one_socket_read_brought(
    tls_contexts: TLSContexts,
) -> None:
    async with tls_pair(tls_contexts) as (client, server):
        # 40 separate writes: 40 TLS records, all in the socket before the client reads.
        for index in range(40):
            await server.write(b"%03d" % index * 100)
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(0.01)
        data = await client.receive_some()
        assert data == b"".join(b"%03d" % index * 100 for index in range(40))


async def test_a_record_split_across_socket_reads_is_returned_once_whole(
    tls_contexts: TLSContexts,
) -> None:
    async with tls_pair(tls_contexts) as (client, server):
        record = server._seal(b"x" * 5000)  # one TLS record, written in three pieces
        got: list[bytes] = []
        async with trio.open_nursery() as nursery:

            async def read() -> None:
                got.append(await client.receive_some())

            nursery.start_soon(read)
            for piece in (record[:3], record[3:2000]):
                await server.stream.send_all(piece)
                await trio.sleep(0.02)
                assert got == []  # nothing to decrypt yet: the receive keeps waiting
            await server.stream.send_all(record[2000:])
        assert got == [b"x" * 5000]
        # Nothing is left behind in the TLS layer: the next record comes alone.
        await server.write(b"next")
        assert await client.receive_some() == b"next"


async def test_a_message_larger_than_a_record_arrives_whole(tls_contexts: TLSContexts) -> None:
    async with tls_pair(tls_contexts) as (client, server):
        payload = bytes(range(256)) * 400  # 100 KiB: seven 16 KiB records
        await server.write(payload)
        received = b""
        while len(received) < len(payload):
            received += await client.receive_some()
        assert received == payload


async def test_close_notify_and_a_bare_tcp_end_both_read_as_the_end(
    tls_contexts: TLSContexts,
) -> None:
    async with tls_pair(tls_contexts) as (client, server):
        await server.write(b"last words")
        server.close_now()  # sends close_notify first
        assert await client.receive_some() == b"last words"
        assert await client.receive_some() == b""
    async with tls_pair(tls_contexts) as (client, server):
        server.stream.socket.close()  # no close_notify: an unclean end
        assert await client.receive_some() == b""


async def test_tls_receive_is_a_cancel_point(tls_contexts: TLSContexts) -> None:
    async with tls_pair(tls_contexts) as (client, server):
        await server.write(b"waiting")
        with trio.CancelScope() as scope:
            scope.cancel()
            await client.receive_some()
        assert scope.cancelled_caught
        assert await client.receive_some() == b"waiting"


async def test_unclean_end_of_a_wss_connection_is_1006(tls_contexts: TLSContexts) -> None:
    async def drop(ws: WebSocket) -> None:
        ws._wire.stream.socket.close()

    async with trio.open_nursery() as nursery:
        server: WebSocketServer = await nursery.start(
            lambda task_status: serve_websocket(
                drop, ssl_context=tls_contexts.server, task_status=task_status
            )
        )
        async with open_websocket(server.url, ssl_context=tls_contexts.client) as ws:
            with pytest.raises(WebSocketClosed) as info:
                await ws.receive()
            assert info.value.code == 1006
        server.close()
