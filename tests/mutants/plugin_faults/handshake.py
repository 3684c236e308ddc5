"""Plugin faults in the handshake: its line, the magic cookie and versions (HS)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
import time
from typing import Any

import grpc
from plugin_faults.common import Mutant, fault, patch

from pluginconf.plugin import ServeConfig, server
from pluginconf.plugin.serving import process

# -- handshake and transport -----------------------------------------------------------


@fault("handshake-crlf", "the handshake line ends with \\r\\n")
def _(m: Mutant) -> None:
    original = process.HandshakeLine.format
    patch(process.HandshakeLine, "format", lambda self: original(self) + "\r")


@fault("listen-after-handshake", "the gRPC server starts 3 s after the handshake is printed")
def _(m: Mutant) -> None:
    make_server = grpc.aio.server

    class Late:
        def __init__(self, real: Any) -> None:
            self._real = real

        def __getattr__(self, name: str) -> Any:
            return getattr(self._real, name)

        async def start(self) -> None:
            async def later() -> None:
                await asyncio.sleep(3)
                await self._real.start()

            self._task = asyncio.ensure_future(later())

    patch(grpc.aio, "server", lambda *a, **k: Late(make_server(*a, **k)))


@fault("ignore-cookie", "serves without the magic cookie")
def _(m: Mutant) -> None:
    patch(server, "check_cookie", lambda config, environ: True)


@fault(
    "cookie-unrelated-message",
    "without its cookie, exits 1 with an unrelated configuration error on stderr",
)
def _(m: Mutant) -> None:
    check = server.check_cookie

    def unrelated(config: Any, environ: Any) -> bool:
        if not check(config, environ):
            sys.stderr.write("plugin configuration error: /etc/reference-plugin.conf not found\n")
            os._exit(1)
        return True

    patch(server, "check_cookie", unrelated)


@fault("cookie-slow-refusal", "takes 6 s to refuse a start without its cookie")
def _(m: Mutant) -> None:
    check = server.check_cookie

    def slow(config: Any, environ: Any) -> bool:
        if check(config, environ):
            return True
        time.sleep(6)
        return False

    patch(server, "check_cookie", slow)


@fault("cookie-after-listen", "listens before it checks the cookie, and leaves its socket")
def _(m: Mutant) -> None:
    check = server.check_cookie

    def listened(config: Any, environ: Any) -> bool:
        if check(config, environ):
            return True
        directory = environ.get("PLUGIN_UNIX_SOCKET_DIR") or tempfile.gettempdir()
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(os.path.join(directory, "plugin.sock"))
        sock.listen()
        return False

    patch(server, "check_cookie", listened)


@fault("version-lowest", "speaks 1 and 2 and picks the lowest common version")
def _(m: Mutant) -> None:
    m.config = ServeConfig(protocol_versions=(1, 2))

    def lowest(supported: Any, offered: Any) -> tuple[int, bool]:
        common = sorted(set(supported) & set(offered))
        return (common[0], True) if common else (min(supported), False)

    patch(server, "negotiate_version", lowest)


@fault("version-exit-none-common", "exits when no version is common")
def _(m: Mutant) -> None:
    negotiate = server.negotiate_version

    def strict(supported: Any, offered: Any) -> tuple[int, bool]:
        version, agreed = negotiate(supported, offered)
        if not agreed:
            sys.stderr.write("no common version\n")
            os._exit(1)
        return version, agreed

    patch(server, "negotiate_version", strict)


@fault("version-invalid-fatal", "exits on a malformed PLUGIN_PROTOCOL_VERSIONS entry")
def _(m: Mutant) -> None:
    parse = server.parse_protocol_versions

    def strict(text: str) -> Any:
        offered, invalid = parse(text)
        if invalid:
            sys.stderr.write(f"bad version list {text!r}\n")
            os._exit(1)
        return offered, invalid

    patch(server, "parse_protocol_versions", strict)
