"""The receive fast path (sans-IO): whole data frames bypass websockets' parser, the rest
reaches it as whole frames, in order, with its rules kept; frames encoded without it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from trio_bidi._transport._frames import FrameEncoder, FrameSplitter


def open_pair(max_size: int = 1 << 20) -> tuple[ClientProtocol, ServerProtocol]:
    """A client and a server protocol past the handshake (no extensions)."""
    client = ClientProtocol(parse_uri("ws://example.test/"), max_size=max_size)
    server = ServerProtocol(max_size=max_size)
    client.send_request(client.connect())
    server.receive_data(b"".join(client.data_to_send()))
    (request,) = server.events_received()
    server.send_response(server.accept(request))  # type: ignore[arg-type]
    client.receive_data(b"".join(server.data_to_send()))
    client.events_received()
    assert client.state is State.OPEN
    assert server.state is State.OPEN
    return client, server


class Collector:
    """What the splitter hands out: messages and websockets' events, in order."""

    def __init__(self, protocol: ClientProtocol | ServerProtocol) -> None:
        self.protocol = protocol
        self.items: list[object] = []

    def on_message(self, opcode: int, payload: bytes) -> bool:
        self.items.append(payload.decode() if opcode == 1 else payload)
        return True

    def on_events(self) -> None:
        for event in self.protocol.events_received():
            if isinstance(event, Frame):
                self.items.append((event.opcode, bytes(event.data)))


def server_frames(server: ServerProtocol, *frames: Frame) -> bytes:
    for frame in frames:
        server.send_frame(frame)
    return b"".join(server.data_to_send())


@given(st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=20))
def test_messages_come_out_whole_however_the_bytes_are_cut(cuts: list[int]) -> None:
    client, server = open_pair()
    texts = [f"message {index} " + "x" * (index * 37) for index in range(12)]
    wire = server_frames(server, *(Frame(Opcode.TEXT, text.encode()) for text in texts))
    wire += server_frames(server, Frame(Opcode.BINARY, bytes(70_000)))
    splitter = FrameSplitter(client, b"")
    assert splitter.active
    got = Collector(client)
    pos = 0
    index = 0
    while pos < len(wire):
        step = cuts[index % len(cuts)]
        splitter.feed(wire[pos : pos + step], got.on_message, got.on_events)
        pos += step
        index += 1
    assert got.items == [*texts, bytes(70_000)]


def test_control_frames_and_fragments_go_to_websockets_in_order() -> None:
    client, server = open_pair()
    wire = server_frames(
        server,
        Frame(Opcode.TEXT, b"one"),
        Frame(Opcode.PING, b"are you there"),
        Frame(Opcode.TEXT, b"fragm", fin=False),
        Frame(Opcode.CONT, b"ented", fin=True),
        Frame(Opcode.TEXT, b"two"),
    )
    splitter = FrameSplitter(client, wire[:9])  # the first bytes came with the handshake
    got = Collector(client)
    splitter.feed(wire[9:], got.on_message, got.on_events)
    assert got.items == [
        "one",
        (Opcode.PING, b"are you there"),
        (Opcode.TEXT, b"fragm"),
        (Opcode.CONT, b"ented"),
        "two",
    ]
    # websockets answered the ping (the pong is masked, as a client's frames are).
    server.receive_data(b"".join(client.data_to_send()))
    (pong,) = server.events_received()
    assert isinstance(pong, Frame)
    assert pong.opcode is Opcode.PONG


def test_a_masked_frame_from_the_server_is_a_protocol_error() -> None:
    client, _server = open_pair()
    other_client, _ = open_pair()
    other_client.send_text(b"masked")  # a client's frame is masked: wrong from a server
    splitter = FrameSplitter(client, b"")
    got = Collector(client)
    splitter.feed(b"".join(other_client.data_to_send()), got.on_message, got.on_events)
    assert got.items == []
    assert not splitter.active
    assert client.close_sent is not None
    assert client.close_sent.code == 1002


def test_a_frame_over_the_size_limit_is_refused_by_websockets() -> None:
    client, server = open_pair(max_size=1000)
    splitter = FrameSplitter(client, b"")
    got = Collector(client)
    wire = server_frames(server, Frame(Opcode.BINARY, bytes(5000)))
    splitter.feed(wire[:20], got.on_message, got.on_events)  # the header is enough
    assert got.items == []
    assert not splitter.active
    assert client.close_sent is not None
    assert client.close_sent.code == 1009


def test_a_server_unmasks_client_frames_and_websockets_reads_the_close() -> None:
    client, server = open_pair()
    splitter = FrameSplitter(server, b"")
    got = Collector(server)
    client.send_text(b"hello")
    client.send_binary(b"\x00\x01")
    client.send_close(1000, "bye")
    splitter.feed(b"".join(client.data_to_send()), got.on_message, got.on_events)
    assert got.items[:2] == ["hello", b"\x00\x01"]
    assert server.close_rcvd is not None
    assert server.close_rcvd.code == 1000
    assert not splitter.active  # closing: websockets reads every byte from now on


def test_stopping_drops_what_followed() -> None:
    client, server = open_pair()
    splitter = FrameSplitter(client, b"")
    seen: list[bytes] = []

    def stop_at_first(opcode: int, payload: bytes) -> bool:
        seen.append(payload)
        return False

    wire = server_frames(server, Frame(Opcode.TEXT, b"bad"), Frame(Opcode.TEXT, b"after"))
    splitter.feed(wire, stop_at_first, lambda: None)
    assert seen == [b"bad"]
    assert not splitter.active


@given(st.binary(max_size=70_000), st.booleans())
def test_encoded_frames_read_back_as_websockets_would_send_them(payload: bytes, text: bool) -> None:
    _client, server = open_pair()
    # A client's frames (masked) as the server reads them...
    encoded = FrameEncoder(masked=True).encode(1 if text else 2, payload)
    server.receive_data(encoded)
    (frame,) = server.events_received()
    assert isinstance(frame, Frame)
    assert frame.opcode is (Opcode.TEXT if text else Opcode.BINARY)
    assert frame.fin
    assert bytes(frame.data) == payload
    # ...and a server's (unmasked): byte for byte what websockets would send.
    server.send_frame(Frame(Opcode.BINARY, payload))
    assert FrameEncoder(masked=False).encode(2, payload) == b"".join(server.data_to_send())


def test_masks_differ_from_frame_to_frame() -> None:
    encoder = FrameEncoder(masked=True)
    masks = {encoder.encode(2, b"x")[2:6] for _ in range(600)}  # across three draws
    assert len(masks) > 590
