"""Who can connect to a unix socket (TR-2).

On Linux, connect(2) on a unix socket needs write permission on the socket file and search
permission on every directory of its path: a socket of mode 0755 refuses other users (they
may read, not write), one of mode 0757 or 0777 takes them, and a socket of any mode inside a
0700 directory refuses them. :func:`judge_others` reads this off the file system for users
of the "others" class; :func:`connect_as` tries it for real, as another uid, when the suite
runs as root (tests/runner/plugin/test_socket_access.py shows both agree).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# The uid and gid a real connection attempt drops to: "nobody" on Debian and most systems.
OTHER_UID = 65534
OTHER_GID = 65534
_CONNECT_GUARD_S = 30.0
# Exit statuses of the connecting child.
_CONNECTED, _REFUSED = 0, 13

# Runs in a child that starts as root and drops to another user before connecting.
_CONNECT_AS = """
import os, socket, sys
uid, gid, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
os.setgroups([])
os.setresgid(gid, gid, gid)
os.setresuid(uid, uid, uid)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(path)
except PermissionError:
    sys.exit(13)
except OSError as exc:
    print(exc, file=sys.stderr)
    sys.exit(3)
sys.exit(0)
"""


@dataclass(frozen=True)
class Access:
    """Whether users of the "others" class can connect, and why."""

    others_can_connect: bool
    reason: str


def _directories(path: str) -> Iterator[Path]:
    """Every directory on ``path``'s way, from the root down to its parent."""
    parent = Path(os.path.abspath(path)).parent
    yield from reversed([parent, *parent.parents])


def judge_others(path: str) -> Access:
    """Whether others can connect to the unix socket at ``path``, from the modes of the
    socket and of the directories above it (raises OSError when it cannot be read)."""
    for directory in _directories(path):
        mode = stat.S_IMODE(directory.stat().st_mode)
        if not mode & stat.S_IXOTH:
            return Access(
                False,
                f"the directory {directory} (mode {mode:04o}) grants others no search permission",
            )
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & stat.S_IWOTH:
        return Access(
            True,
            f"the socket has mode {mode:04o}: others have write permission on it, and every "
            "directory above lets them through",
        )
    return Access(False, f"the socket has mode {mode:04o}: others have no write permission")


def can_try_as_other() -> bool:
    """Whether a real attempt as another user is possible: the suite runs as root."""
    return os.geteuid() == 0 and os.getuid() != OTHER_UID


async def connect_as(path: str, uid: int = OTHER_UID, gid: int = OTHER_GID) -> bool | None:
    """Try to connect to the unix socket at ``path`` as ``uid``:``gid`` (needs root). True:
    accepted; False: refused for want of permission; None: not tried or inconclusive (not
    root, nothing listening, the child did not finish)."""
    if not can_try_as_other():
        return None
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-S", "-c", _CONNECT_AS, str(uid), str(gid), path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        status = await asyncio.wait_for(child.wait(), _CONNECT_GUARD_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await child.wait()
        return None
    return {_CONNECTED: True, _REFUSED: False}.get(status)


def _searchable_by_others(directory: str) -> bool:
    try:
        return all(
            stat.S_IMODE(d.stat().st_mode) & stat.S_IXOTH
            for d in [Path(directory), *Path(directory).parents]
        )
    except OSError:
        return False


@contextlib.contextmanager
def open_directory() -> Iterator[str | None]:
    """A new directory of mode 0755 whose whole path other users may search (as /tmp is,
    where go-plugin puts its sockets), removed afterwards; None when there is no such
    place to make one."""
    for base in (tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"):
        if not _searchable_by_others(base) or not os.access(base, os.W_OK):
            continue
        path = tempfile.mkdtemp(prefix="pluginconf-open-", dir=base)
        try:
            os.chmod(path, 0o755)
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
        return
    yield None
