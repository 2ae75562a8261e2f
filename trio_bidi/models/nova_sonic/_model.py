"""The Nova Sonic model and its connection: the Trio transport around the protocol."""

from __future__ import annotations

import datetime
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import trio

from ...errors import (
    BidiConfigurationError,
    BidiConnectionError,
    BidiError,
    BidiModelTimeoutError,
    BidiProtocolError,
)
from ...events import BidiOutputEvent
from ...types import Message, ToolSpec
from .._base import ConnectionBase, SendableEvent
from . import _wire
from ._config import (
    DEFAULT_MODEL_ID,
    ClientSettings,
    resolve_client_config,
    resolve_provider_config,
)
from ._eventstream import EventStreamDecoder, EventStreamError
from ._http2_events import (
    BodyData,
    BodyEnd,
    ConnectionTerminated,
    Http2Error,
    ResponseEvent,
    ResponseHeaders,
    StreamReset,
)
from ._protocol import Ending, NovaSonicProtocol
from ._sigv4 import ChunkSigner, Credentials, sign_request

if TYPE_CHECKING:
    from ._http2 import Http2Client

__all__ = ["BidiNovaSonicModel", "NovaSonicConnection", "resolve_credentials"]

logger = logging.getLogger(__name__)

_CONNECT_TIMEOUT_S: Final = 15.0
_CLOSE_TIMEOUT_S: Final = 3.0
_MAX_ERROR_BODY: Final = 64 * 1024
_CONTENT_TYPE: Final = "application/vnd.amazon.eventstream"
_NO_CREDENTIALS: Final = (
    "no AWS credentials found for Nova Sonic. Provide them one of these ways: the "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) environment "
    "variables; a profile in ~/.aws/credentials or ~/.aws/config (AWS_PROFILE, `aws sso "
    "login` for SSO); an instance, task or web-identity role when running on AWS; or "
    "client_config={'boto_session': <botocore or boto3 session>}"
)


def _load_credentials(session: Any) -> Credentials | None:
    if session is None:
        import botocore.session  # the optional dependency (trio-bidi[nova])

        session = botocore.session.get_session()
    found = session.get_credentials()
    if found is None:
        return None
    frozen = found.get_frozen_credentials()
    if not frozen.access_key or not frozen.secret_key:
        return None
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token or None)


async def resolve_credentials(settings: ClientSettings) -> Credentials:
    """Resolve AWS credentials in a worker thread (the chain may do network I/O).

    Raises:
        BidiConfigurationError: botocore is missing, or no credentials were found or
            could be loaded.
    """
    try:
        credentials = await trio.to_thread.run_sync(_load_credentials, settings.boto_session)
    except ImportError as exc:
        raise BidiConfigurationError(
            "Nova Sonic needs botocore for AWS credentials and signing: "
            "pip install 'trio-bidi[nova]'"
        ) from exc
    except Exception as exc:  # botocore's own errors (a bad profile, an expired SSO token)
        raise BidiConfigurationError(
            f"cannot load AWS credentials for Nova Sonic: {type(exc).__name__}: {exc}"
        ) from exc
    if credentials is None:
        raise BidiConfigurationError(_NO_CREDENTIALS)
    return credentials


class BidiNovaSonicModel:
    """Amazon Nova Sonic (Bedrock's bidirectional stream) as a bidirectional model.

    Args:
        model_id: ``"amazon.nova-2-sonic-v1:0"`` (Nova 2, default) or
            ``"amazon.nova-sonic-v1:0"`` (v1).
        provider_config: ``audio`` (``input_rate`` 16000, ``output_rate`` 16000 or 24000,
            ``voice`` among the model's documented voices), ``inference``
            (``maxTokens``, ``topP``, ``temperature``; snake_case accepted) and
            ``turn_detection`` (``{"endpointingSensitivity": "HIGH" | "MEDIUM" | "LOW"}``,
            Nova 2 only).
        client_config: ``region`` (else AWS_REGION / AWS_DEFAULT_REGION, else
            us-east-1), ``endpoint_url`` (else AWS_ENDPOINT_URL_BEDROCK_RUNTIME, else the
            regional endpoint), ``boto_session`` (credentials source; default: botocore's
            chain), ``ssl_context`` (default ``ssl.create_default_context()``) and
            ``time_limit_s`` (the connection's deadline, default 470 s: the service
            ends a connection after about 8 minutes).

    Raises:
        BidiConfigurationError: An unknown key or an unsupported value.
    """

    def __init__(
        self,
        model_id: str = DEFAULT_MODEL_ID,
        provider_config: Mapping[str, Any] | None = None,
        client_config: Mapping[str, Any] | None = None,
    ) -> None:
        self._model_id = model_id
        self._config = resolve_provider_config(provider_config, model_id)
        self._client = resolve_client_config(client_config)

    def __repr__(self) -> str:
        return (
            f"BidiNovaSonicModel(model_id={self._model_id!r}, "
            f"endpoint_url={self._client.endpoint_url!r})"
        )

    @property
    def model_id(self) -> str:
        """The Bedrock model id."""
        return self._model_id

    @property
    def config(self) -> dict[str, Any]:
        """The resolved provider configuration; ``config["audio"]`` is an AudioConfig."""
        return self._config

    @property
    def client_settings(self) -> ClientSettings:
        """The resolved client settings (region, endpoint, time limit)."""
        return self._client

    @asynccontextmanager
    async def connect(
        self,
        system_prompt: str | None = None,
        tools: Sequence[ToolSpec] | None = None,
        messages: Sequence[Message] | None = None,
        **restart_config: Any,
    ) -> AsyncIterator[NovaSonicConnection]:
        """Open a connection: signed request, then the session's opening events.

        Args:
            system_prompt: Sent as a non-interactive SYSTEM text block.
            tools: Sent in ``promptStart`` as tool specs.
            messages: History replayed as non-interactive text blocks (within the
                service's limits; the oldest messages are dropped first).
            **restart_config: Accepted for the contract; Nova needs none (the history is
                replayed instead).

        Yields:
            The open connection.

        Raises:
            BidiConfigurationError: No credentials, or history the service cannot take.
            BidiConnectionError: The endpoint cannot be reached or refused the request
                (``code`` is the HTTP status; wrong credentials are a 403).
        """
        if restart_config:
            logger.debug("keys=<%s> | ignoring restart config", sorted(restart_config))
        connection = NovaSonicConnection(
            self._model_id,
            self._config,
            self._client,
            system_prompt=system_prompt,
            tools=tools or (),
            messages=messages or (),
        )
        async with connection.session():
            yield connection


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class NovaSonicConnection(ConnectionBase):
    """One Nova Sonic bidirectional stream.

    See [`ConnectionBase`][trio_bidi.models.ConnectionBase] for the contract.
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
        super().__init__(
            f"nova-{uuid.uuid4().hex[:12]}", model_id, time_limit_s=client.time_limit_s
        )
        self._client = client
        self._protocol = NovaSonicProtocol(model_id, config)
        # Built before the socket opens, so bad history fails without a connection.
        self._open_events = self._protocol.open_events(system_prompt, tools, messages)
        self._path = f"/model/{quote(model_id, safe='')}/invoke-with-bidirectional-stream"
        self._http: Http2Client | None = None
        self._signer: ChunkSigner | None = None
        self._decoder = EventStreamDecoder()
        self._early: list[ResponseEvent] = []
        self._writer_running = False
        self._step_failure: BidiError | None = None
        self._stream_ended = False

    @property
    def protocol(self) -> NovaSonicProtocol:
        """The session's sans-IO protocol state."""
        return self._protocol

    # ------------------------------------------------------------------ opening

    async def _open(self) -> None:
        client = self._client
        credentials = await resolve_credentials(client)
        try:
            from ._http2 import Http2Client  # the optional dependency (h2)
        except ImportError as exc:
            raise BidiConfigurationError(
                "Nova Sonic needs the h2 package: pip install 'trio-bidi[nova]'"
            ) from exc
        url = f"{client.endpoint_url}{self._path}"
        signed = sign_request(
            url,
            {"content-type": _CONTENT_TYPE},
            credentials,
            client.region,
            datetime.datetime.now(datetime.UTC),
        )
        try:
            with trio.fail_after(_CONNECT_TIMEOUT_S):
                http = await Http2Client.connect(
                    client.host, client.port, ssl_context=client.ssl_context
                )
        except Http2Error as exc:
            raise BidiConnectionError(
                f"cannot open Nova Sonic at {client.endpoint_url}: {exc}"
            ) from exc
        except trio.TooSlowError as exc:
            raise BidiConnectionError(
                f"no connection to {client.endpoint_url} within {_CONNECT_TIMEOUT_S:g} s"
            ) from exc
        self._http = http
        headers = [
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", client.authority),
            (":path", self._path),
            *((k, v) for k, v in signed.headers.items() if k != "host"),
        ]
        http.start_request(headers)
        self._signer = ChunkSigner(signed.signing_key, signed.scope, signed.signature)
        self._queue_events(self._open_events)
        # The writer task starts once the connection is open; until then this task
        # flushes the opening itself while it waits for the response headers.
        try:
            with trio.fail_after(_CONNECT_TIMEOUT_S):
                status = await self._wait_response_headers(http)
        except trio.TooSlowError as exc:
            raise BidiConnectionError(
                f"no response from {client.endpoint_url} within {_CONNECT_TIMEOUT_S:g} s"
            ) from exc
        if status.status != 200:
            await self._raise_refusal(http, status)
        logger.debug(
            "connection_id=<%s>, endpoint=<%s>, events=<%d> | Nova Sonic session opened",
            self.connection_id,
            client.endpoint_url,
            len(self._open_events),
        )

    async def _wait_response_headers(self, http: Http2Client) -> ResponseHeaders:
        while True:
            try:
                await http.flush_now()
                events = await http.receive_events()
            except Http2Error as exc:
                raise BidiConnectionError(
                    f"Nova Sonic connection failed while opening: {exc}"
                ) from exc
            for index, event in enumerate(events):
                if isinstance(event, ResponseHeaders):
                    self._early.extend(events[index + 1 :])
                    return event
                if isinstance(event, StreamReset | ConnectionTerminated):
                    raise BidiConnectionError(
                        f"Nova Sonic refused the stream while opening: {event}"
                    )

    async def _raise_refusal(self, http: Http2Client, status: ResponseHeaders) -> None:
        body = bytearray()
        pending = list(self._early)
        with trio.move_on_after(_CLOSE_TIMEOUT_S):
            while len(body) < _MAX_ERROR_BODY:
                ended = False
                for event in pending:
                    if isinstance(event, BodyData):
                        body += event.data
                    elif isinstance(event, BodyEnd | StreamReset | ConnectionTerminated):
                        ended = True
                if ended:
                    break
                try:
                    pending = await http.receive_events()
                except Http2Error:
                    break
        error_type = status.headers.get("x-amzn-errortype", "").split(":", 1)[0]
        try:
            message = json.loads(bytes(body)).get("message", "")
        except (ValueError, AttributeError):
            message = bytes(body[:500]).decode("utf-8", errors="replace")
        raise BidiConnectionError(
            f"Nova Sonic refused the request: HTTP {status.status} {error_type or ''}: "
            f"{message or 'no message'}".replace("  ", " "),
            code=status.status,
            reason=error_type or None,
        )

    async def _start_background(self, nursery: trio.Nursery) -> None:
        assert self._http is not None
        await nursery.start(self._http.run_writer)
        self._writer_running = True

    # ------------------------------------------------------------------ reading

    async def _read_step(self) -> list[BidiOutputEvent] | None:
        # Read in the consumer's task (ConnectionBase._read_step). What one socket read
        # brought is converted at once; an error behind events of the same read is
        # raised by the next step, after those events were delivered.
        failure = self._step_failure
        if failure is not None:
            self._step_failure = None
            raise failure
        if self._stream_ended:
            return None
        http = self._http
        assert http is not None
        if self._early:
            items, self._early = self._early, []
        else:
            try:
                items = await http.receive_events()
            except Http2Error as exc:
                raise BidiConnectionError(f"the Nova Sonic connection broke: {exc}") from exc
        out: list[BidiOutputEvent] = []
        try:
            for item in items:
                if isinstance(item, BodyData):
                    self._body_events(item, out)
                    ending = self._protocol.ending
                    if ending is not None:
                        self._end_with(ending)  # raises, or ends the connection by its time
                        return out
                elif isinstance(item, BodyEnd):
                    logger.debug(
                        "connection_id=<%s> | the service ended its stream", self.connection_id
                    )
                    self._stream_ended = True
                    return out or None
                elif isinstance(item, StreamReset):
                    raise BidiConnectionError(
                        f"Nova Sonic reset the stream (HTTP/2 error {item.error_code})",
                        code=item.error_code,
                    )
                elif isinstance(item, ConnectionTerminated):
                    raise BidiConnectionError(
                        f"Nova Sonic closed the connection (GOAWAY, error {item.error_code})",
                        code=item.error_code,
                    )
        except BidiError as exc:
            if not out:
                raise
            self._step_failure = exc
        return out

    def _body_events(self, item: BodyData, out: list[BidiOutputEvent]) -> None:
        """Decode a body chunk's event-stream messages into ``out``; reopen the window."""
        assert self._http is not None
        self._decoder.feed(item.data)
        protocol = self._protocol
        try:
            for message in self._decoder:
                out.extend(protocol.receive_message(message))
                if protocol.ending is not None:
                    break
        except EventStreamError as exc:
            raise BidiProtocolError(f"Nova Sonic sent a broken event stream: {exc}") from exc
        # Taken from the socket and converted: reopen the receive window (what is not
        # read yet waits in the kernel; at most one read's events wait in the connection).
        self._http.acknowledge(item.flow_length)

    def _end_with(self, ending: Ending) -> None:
        error = ending.error()
        if isinstance(error, BidiModelTimeoutError):
            self.expire_now(error)  # receive() raises it; the agent restarts
            return
        raise error

    # ------------------------------------------------------------------ writing

    def _queue_events(self, events: Sequence[Mapping[str, Any]]) -> None:
        http, signer = self._http, self._signer
        assert http is not None
        assert signer is not None
        for event in events:
            http.queue_data(signer.sign(_wire.encode_event(event), _now_ms()))

    async def _write(self, event: SendableEvent) -> None:
        events = self._protocol.send(event)
        try:
            # One send is queued as a unit, so a block's events are never split by audio.
            self._queue_events(events)
            assert self._http is not None
            await self._http.wait_writable()
        except Http2Error as exc:
            raise BidiConnectionError(f"cannot send to Nova Sonic: {exc}") from exc

    # ------------------------------------------------------------------ closing

    async def _close_transport(self) -> None:
        http = self._http
        if http is None:
            return
        if not http.broken and self._writer_running and self._protocol.ending is None:
            try:
                self._queue_events(self._protocol.close_events())
                assert self._signer is not None
                http.queue_data(self._signer.sign(b"", _now_ms()))
                http.end_body()
                with trio.move_on_after(_CLOSE_TIMEOUT_S) as scope:
                    await http.wait_flushed()
                if scope.cancelled_caught:
                    logger.debug(
                        "connection_id=<%s> | closing events not flushed in time",
                        self.connection_id,
                    )
            except Http2Error as exc:
                logger.debug(
                    "connection_id=<%s>, error=<%s> | close not sent", self.connection_id, exc
                )
        await http.aclose()
