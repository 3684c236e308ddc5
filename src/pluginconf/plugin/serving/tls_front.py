"""AutoMTLS terminated in Python's ssl module, in front of gRPC on a private unix socket.

Why: go-plugin hosts make their AutoMTLS certificate on P-521. grpcio's TLS stack offers no
P-521 signature scheme under TLS 1.3, so a go-plugin host could not present its certificate
to a grpcio server, nor could a grpcio client verify a go-plugin broker server. OpenSSL, behind
Python's ssl module, accepts P-256, P-384 and P-521 under TLS 1.2 and 1.3. So, with AutoMTLS:

  host --TLS--> TLSFront (announced address) --plain--> gRPC server (private 0700 dir)
  gRPC client --plain--> TLSDialer (private 0700 dir) --TLS--> host's brokered server

The private sockets are reachable only by the plugin's own user.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import ssl
import tempfile
from collections.abc import Awaitable, Callable

from pluginconf.protocol.constants import TLS_SERVER_NAME

_PIPE_BYTES = 256 * 1024

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def server_context(cert_pem: bytes, key_pem: bytes, client_ca_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    load_key_pair(ctx, cert_pem, key_pem)
    ctx.load_verify_locations(cadata=client_ca_pem.decode())
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["h2"])
    return ctx


def client_context(cert_pem: bytes, key_pem: bytes, server_ca_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    load_key_pair(ctx, cert_pem, key_pem)
    ctx.load_verify_locations(cadata=server_ca_pem.decode())
    ctx.set_alpn_protocols(["h2"])
    return ctx


def load_key_pair(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    # ssl loads key pairs from files only; they live for the call in a private directory.
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        for path, data in ((cert_path, cert_pem), (key_path, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        ctx.load_cert_chain(cert_path, key_path)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_PIPE_BYTES):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        writer.close()


async def splice(a: Stream, b: Stream) -> None:
    """Copy both ways until either side closes, then close both."""
    tasks = [asyncio.ensure_future(_copy(a[0], b[1])), asyncio.ensure_future(_copy(b[0], a[1]))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        a[1].close()
        b[1].close()


class PrivateDir:
    """A 0700 directory for internal sockets, removed on close."""

    def __init__(self) -> None:
        self.path = tempfile.mkdtemp(prefix="plugin-tls-")

    def socket(self, name: str) -> str:
        return os.path.join(self.path, name)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class Splicer:
    """Accepts connections with ``start_server`` and splices each to ``open_backend``."""

    def __init__(self, open_backend: Callable[[], Awaitable[Stream]]) -> None:
        self._open_backend = open_backend
        self._connections: set[asyncio.Task[None]] = set()
        self.server: asyncio.base_events.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            backend = await self._open_backend()
        except (OSError, ssl.SSLError):
            writer.close()
            self._connections.discard(task)
            return
        try:
            await splice((reader, writer), backend)
        except asyncio.CancelledError:
            # Closed by close(): end quietly, as a server callback that is done.
            writer.close()
        finally:
            self._connections.discard(task)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self._connections):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._connections, return_exceptions=True)


async def dial_through(
    private: PrivateDir, name: str, host_target: tuple[str, str], ctx: ssl.SSLContext
) -> tuple[Splicer, str]:
    """Listen on a private socket; each connection is spliced to a TLS connection to the host.

    Returns the splicer and the plain ``unix:`` target for a gRPC client.
    """
    network, address = host_target

    async def open_tls() -> Stream:
        if network == "unix":
            return await asyncio.open_unix_connection(
                address, ssl=ctx, server_hostname=TLS_SERVER_NAME
            )
        host, _, port = address.rpartition(":")
        return await asyncio.open_connection(
            host.strip("[]"), int(port), ssl=ctx, server_hostname=TLS_SERVER_NAME
        )

    splicer = Splicer(open_tls)
    path = private.socket(name)
    splicer.server = await asyncio.start_unix_server(splicer.handle, path=path)
    return splicer, f"unix:{path}"
