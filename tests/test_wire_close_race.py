"""The plaintext wire when another task closes it during a read.

A connection that reads in the consumer's task (``ConnectionBase._read_step``) can be
closed by another task while that read is at a schedule point. The descriptor's number is
free again at once and a new socket may take it; the read must then fail as closed, never
read the new socket.
"""

from __future__ import annotations

import os
import socket

import pytest
import trio

from trio_bidi._transport._wire import CAN_WRITE_FD, Wire

pytestmark = pytest.mark.skipif(not CAN_WRITE_FD, reason="the descriptor fast path is POSIX-only")


async def test_a_read_resumed_after_its_wire_closed_never_reads_a_reused_descriptor() -> None:
    # Trio runs the two tasks in a random order each time; the race needs the read to go
    # first, so the scene is played 20 times (it comes up in about half of them).
    for _ in range(20):
        await _close_during_a_read()


async def _close_during_a_read() -> None:
    ours, peer = trio.socket.socketpair()
    wire = Wire(trio.SocketStream(ours))
    number = ours.fileno()
    # The next read does not wait for the socket but passes a schedule point first.
    wire._socket_drained = False
    wire._reads_since_yield = 15
    outcome: list[object] = []
    intruders: list[socket.socket] = []

    async def read() -> None:
        try:
            outcome.append(await wire.receive_some())
        except trio.ClosedResourceError as exc:
            outcome.append(exc)

    async def close_and_reuse() -> None:
        wire.close_now()
        # A new socket takes the closed number (dup2 makes sure of it), with data waiting.
        a, b = socket.socketpair()
        if a.fileno() != number:
            os.dup2(a.fileno(), number)
            a.close()
            a = socket.socket(fileno=number)
        intruders.extend((a, b))
        b.sendall(b"not yours")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        nursery.start_soon(close_and_reuse)
    for sock in intruders:
        sock.close()
    peer.close()
    assert len(outcome) == 1
    assert isinstance(outcome[0], trio.ClosedResourceError), outcome
