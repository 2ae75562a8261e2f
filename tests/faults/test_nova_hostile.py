"""Hostile Bedrock endpoints against the Nova Sonic provider: each fails precisely, fast,
and leaves nothing open (the suite's conftest checks sockets, threads and tasks)."""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import botocore.session
import h2.config
import h2.connection
import h2.events
import pytest
import trio

from trio_bidi.errors import BidiConnectionError, BidiProtocolError
from trio_bidi.models.nova_sonic import BidiNovaSonicModel
from trio_bidi.models.nova_sonic import _model as nova_model_module
from trio_bidi.testing._nova_server import TestCertificateAuthority

Behaviour = Callable[
    [h2.connection.H2Connection, int, trio.SSLStream[trio.SocketStream]], Awaitable[None]
]


@asynccontextmanager
async def hostile_endpoint(
    behaviour: Behaviour, *, alpn: str = "h2"
) -> AsyncIterator[tuple[str, ssl.SSLContext]]:
    authority = TestCertificateAuthority()
    server_context = authority.server_context()
    server_context.set_alpn_protocols([alpn])

    async def handle(tcp: trio.SocketStream) -> None:
        stream = trio.SSLStream(tcp, server_context, server_side=True)
        try:
            await stream.do_handshake()
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
            conn.initiate_connection()
            await stream.send_all(conn.data_to_send())
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    return
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        await behaviour(conn, int(event.stream_id or 0), stream)
                        return
                await stream.send_all(conn.data_to_send())
        except (trio.BrokenResourceError, ssl.SSLError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, host="127.0.0.1"), handle, 0
        )
        port = listeners[0].socket.getsockname()[1]
        yield f"https://127.0.0.1:{port}", authority.client_context()
        nursery.cancel_scope.cancel()


def model_for(url: str, context: ssl.SSLContext) -> BidiNovaSonicModel:
    session = botocore.session.Session()
    session.set_credentials("AKIDHOSTILE", "secret")
    return BidiNovaSonicModel(
        client_config={"endpoint_url": url, "ssl_context": context, "boto_session": session}
    )


async def silent(
    conn: h2.connection.H2Connection, stream_id: int, stream: trio.SSLStream[trio.SocketStream]
) -> None:
    await trio.sleep_forever()


async def garbage_body(
    conn: h2.connection.H2Connection, stream_id: int, stream: trio.SSLStream[trio.SocketStream]
) -> None:
    conn.send_headers(stream_id, [(":status", "200")])
    conn.send_data(stream_id, b"\x00\x00\x00\x20" + b"\xff" * 60)
    await stream.send_all(conn.data_to_send())
    await trio.sleep_forever()


async def hang_up(
    conn: h2.connection.H2Connection, stream_id: int, stream: trio.SSLStream[trio.SocketStream]
) -> None:
    conn.send_headers(stream_id, [(":status", "200")])
    await stream.send_all(conn.data_to_send())
    await trio.sleep(0.1)


async def reset(
    conn: h2.connection.H2Connection, stream_id: int, stream: trio.SSLStream[trio.SocketStream]
) -> None:
    conn.send_headers(stream_id, [(":status", "200")])
    conn.reset_stream(stream_id, error_code=2)
    await stream.send_all(conn.data_to_send())
    await trio.sleep_forever()


async def drain(model: BidiNovaSonicModel) -> None:
    async with model.connect() as connection:
        with trio.fail_after(5):
            async for _ in connection.receive():
                pass


async def test_no_response_headers_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nova_model_module, "_CONNECT_TIMEOUT_S", 0.5)
    async with hostile_endpoint(silent) as (url, context):
        with pytest.raises(BidiConnectionError, match="no response"):
            await drain(model_for(url, context))


async def test_http1_only_server_is_refused() -> None:
    async with hostile_endpoint(silent, alpn="http/1.1") as (url, context):
        with pytest.raises(BidiConnectionError, match="HTTP/2"):
            await drain(model_for(url, context))


async def test_broken_event_stream_is_a_protocol_error() -> None:
    async with hostile_endpoint(garbage_body) as (url, context):
        with pytest.raises(BidiProtocolError, match="broken event stream"):
            await drain(model_for(url, context))


async def test_hang_up_after_headers_is_a_connection_error() -> None:
    async with hostile_endpoint(hang_up) as (url, context):
        with pytest.raises(BidiConnectionError):
            await drain(model_for(url, context))


async def test_stream_reset_is_a_connection_error() -> None:
    async with hostile_endpoint(reset) as (url, context):
        with pytest.raises(BidiConnectionError, match="reset"):
            await drain(model_for(url, context))


async def test_untrusted_certificate_is_refused() -> None:
    async with hostile_endpoint(silent) as (url, _context):
        with pytest.raises(BidiConnectionError, match="TLS"):
            await drain(model_for(url, ssl.create_default_context()))
