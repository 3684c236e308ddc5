"""Who can connect to a unix socket, proved by connecting as another user (TR-2).

connect(2) on a unix socket needs write permission on the socket file (and search on every
directory above it): mode 0755 refuses other users, 0757 and 0777 take them, and any mode
inside a 0700 directory refuses them. These tests make such sockets and connect from a child
that has dropped to uid 65534; runner/plugin/socket_access.py's judgement must agree. They need
root, to drop to another uid.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator

import pytest

from pluginconf.runner.plugin.socket_access import (
    OTHER_UID,
    can_try_as_other,
    connect_as,
    judge_others,
    open_directory,
)

pytestmark = pytest.mark.skipif(
    not can_try_as_other(),
    reason="connecting as another user needs root (to drop to uid 65534); run the tests as root",
)


@pytest.fixture
def reachable() -> Iterator[str]:
    """A directory every user may search, as /tmp is."""
    with open_directory() as directory:
        if directory is None:
            pytest.skip("no directory whose whole path other users may search")
        yield directory


def _listening(path: str, mode: int) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, mode)
    server.listen()
    return server


@pytest.mark.parametrize(
    ("mode", "accepted"),
    [(0o755, False), (0o700, False), (0o757, True), (0o777, True), (0o722, True)],
)
async def test_only_the_write_bit_for_others_lets_another_user_connect(reachable, mode, accepted):
    path = os.path.join(reachable, f"s{mode:o}.sock")
    with _listening(path, mode):
        assert await connect_as(path) is accepted, f"mode {mode:04o} as uid {OTHER_UID}"
        access = judge_others(path)
    assert access.others_can_connect is accepted, access.reason


async def test_a_private_directory_refuses_another_user_whatever_the_socket_mode(reachable):
    private = tempfile.mkdtemp(dir=reachable)  # mode 0700
    path = os.path.join(private, "open.sock")
    with _listening(path, 0o777):
        assert await connect_as(path) is False
        access = judge_others(path)
    assert not access.others_can_connect
    assert f"the directory {private} (mode 0700)" in access.reason


async def test_the_owner_still_connects_to_a_0755_socket(reachable):
    path = os.path.join(reachable, "own.sock")
    with _listening(path, 0o755), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(path)  # the owner, and so the host, keeps access
