"""Where the plugin listens: a private unix socket, or 127.0.0.1 within the host's port range."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field

import grpc

from pluginconf.plugin.errors import ServeConfigError
from pluginconf.protocol.constants import (
    ENV_MAX_PORT,
    ENV_MIN_PORT,
    ENV_UNIX_SOCKET_DIR,
)

# sun_path is 108 bytes on Linux, including the terminating NUL.
_MAX_UNIX_PATH = 107


@dataclass
class Listener:
    network: str
    address: str
    # Paths to remove on exit: the socket file, and the directory when we made it.
    cleanup_paths: list[str] = field(default_factory=list)
    owns_dir: str | None = None

    def remove(self) -> None:
        for path in self.cleanup_paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        if self.owns_dir is not None:
            shutil.rmtree(self.owns_dir, ignore_errors=True)


def _add_port(server: grpc.aio.Server, target: str, creds: grpc.ServerCredentials | None) -> int:
    if creds is None:
        return server.add_insecure_port(target)
    return server.add_secure_port(target, creds)


def bind_unix(
    server: grpc.aio.Server, environ: Mapping[str, str], creds: grpc.ServerCredentials | None
) -> Listener:
    parent = environ.get(ENV_UNIX_SOCKET_DIR) or None
    owns_dir = None
    if parent is None:
        parent = owns_dir = tempfile.mkdtemp(prefix="plugin")
    elif not os.path.isdir(parent):
        raise ServeConfigError(
            f"{ENV_UNIX_SOCKET_DIR}={parent!r} is not a directory; the host must create it"
        )
    path = os.path.join(parent, f"plugin{random.randrange(1 << 32):08x}.sock")
    if len(path.encode()) > _MAX_UNIX_PATH:
        raise ServeConfigError(
            f"unix socket path {path!r} is {len(path.encode())} bytes; the limit is "
            f"{_MAX_UNIX_PATH}: set {ENV_UNIX_SOCKET_DIR} to a shorter directory"
        )
    old_umask = os.umask(0o177)  # the socket is for the host's user only
    try:
        _add_port(server, f"unix:{path}", creds)
    finally:
        os.umask(old_umask)
    return Listener("unix", path, cleanup_paths=[path], owns_dir=owns_dir)


def _port_range(environ: Mapping[str, str]) -> tuple[int, int] | None:
    low_text, high_text = environ.get(ENV_MIN_PORT, ""), environ.get(ENV_MAX_PORT, "")
    if not low_text and not high_text:
        return None
    try:
        low = int(low_text or "1024")
        high = int(high_text or "65535")
    except ValueError:
        raise ServeConfigError(
            f"{ENV_MIN_PORT}={low_text!r} and {ENV_MAX_PORT}={high_text!r} must be integers"
        ) from None
    if not 0 < low <= high <= 65535:
        raise ServeConfigError(
            f"port range {low}..{high} from {ENV_MIN_PORT}/{ENV_MAX_PORT} is empty or "
            "outside 1..65535"
        )
    return low, high


def bind_tcp(
    server: grpc.aio.Server, environ: Mapping[str, str], creds: grpc.ServerCredentials | None
) -> Listener:
    port_range = _port_range(environ)
    if port_range is None:
        port = _add_port(server, "127.0.0.1:0", creds)
        return Listener("tcp", f"127.0.0.1:{port}")
    low, high = port_range
    count = high - low + 1
    start = random.randrange(count)
    for i in range(count):
        candidate = low + (start + i) % count
        try:
            port = _add_port(server, f"127.0.0.1:{candidate}", creds)
        except RuntimeError:
            continue
        if port:
            return Listener("tcp", f"127.0.0.1:{port}")
    raise ServeConfigError(
        f"no free port on 127.0.0.1 in {low}..{high} ({ENV_MIN_PORT}..{ENV_MAX_PORT})"
    )
