"""Where the plugin listens: a private unix socket, or 127.0.0.1 within the host's port range.

Two phases, because gRPC ports must be added before the server starts while the AutoMTLS
front (tls_front.py) can only listen once the event loop serves: ``prepare`` before
``server.start()``, ``start_front`` after.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import ssl
import tempfile
from collections.abc import Iterator, Mapping

import grpc

from pluginconf.plugin.errors import ServeConfigError
from pluginconf.plugin.serving.tls_front import PrivateDir, Splicer
from pluginconf.protocol.constants import ENV_MAX_PORT, ENV_MIN_PORT, ENV_UNIX_SOCKET_DIR

# sun_path is 108 bytes on Linux, including the terminating NUL.
_MAX_UNIX_PATH = 107


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


def _candidate_ports(port_range: tuple[int, int] | None) -> Iterator[int]:
    if port_range is None:
        yield 0  # any free port
        return
    low, high = port_range
    count = high - low + 1
    start = random.randrange(count)
    for i in range(count):
        yield low + (start + i) % count


class Listener:
    def __init__(
        self, network: str, environ: Mapping[str, str], tls: ssl.SSLContext | None
    ) -> None:
        self.network = network
        self.address = ""
        self._environ = environ
        self._tls = tls
        self._cleanup_files: list[str] = []
        self._own_dir: str | None = None
        self._private: PrivateDir | None = None
        self._front: Splicer | None = None

    # -- phase 1 ---------------------------------------------------------------------------

    def prepare(self, server: grpc.aio.Server) -> None:
        """Add gRPC's port: the announced address, or a private one behind the TLS front."""
        if self._tls is not None:
            self._private = PrivateDir()
            server.add_insecure_port(f"unix:{self._private.socket('grpc.sock')}")
            if self.network == "unix":
                self.address = self._unix_path()
            return
        if self.network == "unix":
            self.address = self._unix_path()
            with _private_umask():
                server.add_insecure_port(f"unix:{self.address}")
            self._cleanup_files.append(self.address)
            return
        port_range = _port_range(self._environ)
        for candidate in _candidate_ports(port_range):
            try:
                port = server.add_insecure_port(f"127.0.0.1:{candidate}")
            except RuntimeError:
                continue
            if port:
                self.address = f"127.0.0.1:{port}"
                return
        raise self._no_port(port_range)

    def _unix_path(self) -> str:
        parent = self._environ.get(ENV_UNIX_SOCKET_DIR) or None
        if parent is None:
            parent = self._own_dir = tempfile.mkdtemp(prefix="plugin")
        elif not os.path.isdir(parent):
            raise ServeConfigError(
                f"{ENV_UNIX_SOCKET_DIR}={parent!r} is not a directory; the host must create it"
            )
        path = os.path.join(parent, f"plugin{random.randrange(1 << 32):08x}.sock")
        if len(path.encode()) > _MAX_UNIX_PATH:
            self.remove()
            raise ServeConfigError(
                f"unix socket path {path!r} is {len(path.encode())} bytes; the limit is "
                f"{_MAX_UNIX_PATH}: set {ENV_UNIX_SOCKET_DIR} to a shorter directory"
            )
        return path

    def _no_port(self, port_range: tuple[int, int] | None) -> ServeConfigError:
        span = f"{port_range[0]}..{port_range[1]}" if port_range else "any port"
        return ServeConfigError(
            f"no free port on 127.0.0.1 in {span} ({ENV_MIN_PORT}..{ENV_MAX_PORT})"
        )

    # -- phase 2 ---------------------------------------------------------------------------

    async def start_front(self) -> None:
        """With AutoMTLS, listen on the announced address and splice each connection to gRPC."""
        if self._tls is None or self._private is None:
            return
        backend = self._private.socket("grpc.sock")
        self._front = Splicer(lambda: asyncio.open_unix_connection(backend))
        if self.network == "unix":
            with _private_umask():
                self._front.server = await asyncio.start_unix_server(
                    self._front.handle, path=self.address, ssl=self._tls
                )
            self._cleanup_files.append(self.address)
            return
        port_range = _port_range(self._environ)
        for candidate in _candidate_ports(port_range):
            try:
                self._front.server = await asyncio.start_server(
                    self._front.handle, host="127.0.0.1", port=candidate, ssl=self._tls
                )
            except OSError:
                continue
            port = self._front.server.sockets[0].getsockname()[1]
            self.address = f"127.0.0.1:{port}"
            return
        raise self._no_port(port_range)

    async def close_front(self) -> None:
        if self._front is not None:
            await self._front.close()

    def remove(self) -> None:
        for path in self._cleanup_files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
        if self._private is not None:
            self._private.close()


class _private_umask:
    """Sockets made inside are for the owner only."""

    def __enter__(self) -> None:
        self._old = os.umask(0o177)

    def __exit__(self, *exc: object) -> None:
        os.umask(self._old)
