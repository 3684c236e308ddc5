"""Plugin faults that break one requirement each (issue 15): boundaries and resources.

Boundaries, branches, resources and samples the plugin suite missed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from collections.abc import Callable
from typing import Any

import grpc
from plugin_faults.common import Mutant, fault, patch, replace_route

from pluginconf.plugin import ServeConfig
from pluginconf.plugin.http import asgi
from pluginconf.plugin.serving import listener, process, services

# -- issue 15: boundaries, branches, resources and samples the plugin suite missed -----------

# Set by a SIGTERM that the patched loops below let through.
_SIGTERM_SEEN: list[bool] = []


def _on_sigterm_too(mark: Callable[[], None]) -> None:
    """Run ``mark`` before the SDK's own SIGTERM handler."""
    loop_class = asyncio.SelectorEventLoop
    add = loop_class.add_signal_handler

    def marked(self: Any, sig: int, callback: Any, *args: Any) -> None:
        if sig == signal.SIGTERM:

            def both() -> None:
                mark()
                callback(*args)

            add(self, sig, both)
        else:
            add(self, sig, callback, *args)

    patch(loop_class, "add_signal_handler", marked)


@fault(
    "empty-frame-is-end",
    "takes an empty request body frame for the end of the body (`if not data: break`)",
)
def _(m: Mutant) -> None:
    receive = asgi.Exchange.receive

    async def ends_early(self: Any) -> Any:
        message = await receive(self)
        if message["type"] == "http.request" and message["more_body"] and not message["body"]:
            self.request_complete = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return message

    patch(asgi.Exchange, "receive", ends_early)


@fault(
    "header-values-deduplicated",
    "gives the handler each value of a request header once, in sorted order (kept in a set)",
)
def _(m: Mutant) -> None:
    build = asgi.build_scope

    def as_set(init: Any, state: Any) -> Any:
        scope = build(init, state)
        grouped: dict[bytes, set[bytes]] = {}
        for name, value in scope["headers"]:
            grouped.setdefault(name, set()).add(value)
        scope["headers"] = [(n, v) for n, values in grouped.items() for v in sorted(values)]
        return scope

    patch(asgi, "build_scope", as_set)


@fault(
    "bytes-piece-restarts-block",
    "/bytes starts each piece at the beginning of its 64 KiB generator block: right only "
    "for pieces that are multiples of 64 KiB",
)
def _(m: Mutant) -> None:
    from pluginconf.reference.generator import BLOCK_BYTES, block

    async def generated(scope: Any, receive: Any, send: Any) -> None:
        query = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if "=" in p)
        n, seed = int(query["n"]), int(query.get("seed", "0"))
        piece = int(query.get("chunk", "65536"))
        headers = [(b"content-length", str(n).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for offset in range(0, n, piece):
            size = min(piece, n - offset)
            index = offset // BLOCK_BYTES
            data = b""
            while len(data) < size:
                data += block(seed, index)
                index += 1
            await send({"type": "http.response.body", "body": data[:size], "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    replace_route(m, "/bytes", generated)


@fault(
    "socket-dir-empty-is-cwd",
    "takes an empty PLUGIN_UNIX_SOCKET_DIR for a directory: its socket goes to the working "
    "directory",
)
def _(m: Mutant) -> None:
    unix_path = listener.Listener._unix_path

    def in_cwd(self: Any) -> str:
        if self._environ.get("PLUGIN_UNIX_SOCKET_DIR") == "":
            name = f"plugin{os.getpid()}.sock"
            return os.path.abspath(os.path.join(self._environ["PLUGIN_UNIX_SOCKET_DIR"], name))
        return unix_path(self)

    patch(listener.Listener, "_unix_path", in_cwd)


@fault(
    "own-dir-left-on-shutdown",
    "removes the socket directory it made only when SIGTERM stops it, not after Shutdown",
)
def _(m: Mutant) -> None:
    _on_sigterm_too(lambda: _SIGTERM_SEEN.append(True))
    remove = listener.Listener.remove

    def keep_dir(self: Any) -> None:
        if not _SIGTERM_SEEN:
            self._own_dir = None
        remove(self)

    patch(listener.Listener, "remove", keep_dir)


@fault(
    "sigterm-no-grace",
    "on SIGTERM stops its server at once, cancelling calls in progress (Shutdown has the grace)",
)
def _(m: Mutant) -> None:
    _on_sigterm_too(lambda: _SIGTERM_SEEN.append(True))
    make_server = grpc.aio.server

    class NoGraceOnTerm:
        def __init__(self, real: Any) -> None:
            self._real = real

        def __getattr__(self, name: str) -> Any:
            return getattr(self._real, name)

        async def stop(self, grace: float | None) -> None:
            await self._real.stop(0 if _SIGTERM_SEEN else grace)

    patch(grpc.aio, "server", lambda *a, **k: NoGraceOnTerm(make_server(*a, **k)))


@fault(
    "helper-left-on-sigterm",
    "starts a helper process and ends it in its Shutdown handler only, so SIGTERM leaves it",
)
def _(m: Mutant) -> None:
    import subprocess

    helper = subprocess.Popen(
        ["sleep", "300"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    shutdown = services.ControllerService.Shutdown

    async def ending_helper(self: Any, request: Any, context: Any) -> Any:
        helper.kill()
        helper.wait()
        return await shutdown(self, request, context)

    patch(services.ControllerService, "Shutdown", ending_helper)


# Request bodies spooled per exchange, released when the body ends: a cancelled exchange's
# spool stays open for ever.
_SPOOLS: dict[int, Any] = {}


@fault(
    "cancelled-body-spool-leaks",
    "spools each request body to a temporary file that is closed only when the body ends: "
    "a cancelled exchange leaks its descriptor",
)
def _(m: Mutant) -> None:
    receive = asgi.Exchange.receive

    async def spooling(self: Any) -> Any:
        message = await receive(self)
        if message["type"] == "http.request" and message["body"]:
            spool = _SPOOLS.get(id(self))
            if spool is None:
                spool = _SPOOLS[id(self)] = tempfile.TemporaryFile()  # noqa: SIM115
            spool.write(message["body"])
        if message["type"] == "http.request" and not message["more_body"]:
            spool = _SPOOLS.pop(id(self), None)
            if spool is not None:
                spool.close()
        return message

    patch(asgi.Exchange, "receive", spooling)


@fault(
    "hostapi-audit-handler-per-command",
    "adds an audit log handler (a file) for every HostAPI command and never removes it",
)
def _(m: Mutant) -> None:
    import logging

    host_command = type(m.plugin)._host_command

    async def audited(self: Any, name: str, rest: str) -> str:
        audit = logging.getLogger("reference.hostapi.audit")
        path = os.path.join(tempfile.gettempdir(), "hostapi-audit.log")
        audit.addHandler(logging.FileHandler(path))  # the bug: once per call
        audit.warning("%s %s", name, rest)
        return await host_command(self, name, rest)

    patch(type(m.plugin), "_host_command", audited)


@fault(
    "mtls-cert-single-pad-left",
    "strips '==' from the certificate's base64 but not a single '=': a certificate whose "
    "length leaves one pad character keeps it (some lengths only)",
)
def _(m: Mutant) -> None:
    import base64

    def pairs_only(self: Any) -> str:
        fields = [
            str(self.core_version),
            str(self.app_version),
            self.network,
            self.address,
            self.protocol,
        ]
        if self.server_cert_der is not None:
            encoded = base64.b64encode(self.server_cert_der).decode("ascii")
            fields.append(encoded.replace("==", ""))
        return "|".join(fields)

    patch(process.HandshakeLine, "format", pairs_only)


@fault(
    "port-range-excludes-max",
    "takes PLUGIN_MAX_PORT as an exclusive bound (max - min ports): a one-port range is empty",
)
def _(m: Mutant) -> None:
    import random

    m.config = ServeConfig(network="tcp")

    def exclusive(port_range: Any) -> Any:
        if port_range is None:
            yield 0
            return
        low, high = port_range
        count = high - low  # the bug: one port short
        start = random.randrange(count) if count > 0 else 0
        for i in range(count):
            yield low + (start + i) % count

    patch(listener, "_candidate_ports", exclusive)
