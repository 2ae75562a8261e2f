"""The leak checks of this suite notice what they are meant to notice."""

from __future__ import annotations

import socket

import trio

from tests.faults.conftest import all_tasks, open_sockets


def test_an_open_socket_is_seen() -> None:
    before = open_sockets()
    with socket.socket() as sock:
        assert open_sockets() - before
        sock.close()
    assert not open_sockets() - before


async def test_tasks_are_counted_from_the_root() -> None:
    before = len(all_tasks())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.sleep_forever)
        await trio.testing.wait_all_tasks_blocked()
        assert len(all_tasks()) == before + 1
        nursery.cancel_scope.cancel()
    assert len(all_tasks()) == before
