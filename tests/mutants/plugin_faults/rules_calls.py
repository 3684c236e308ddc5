"""Plugin faults that break one requirement each (issue 15): calls and routes.

Cancelled and undrained calls, header names, stdio capture, offerings, commands and routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from typing import Any

import grpc
from plugin_faults.common import Fault, Mutant, fault, patch, replace_route

from pluginconf.plugin import broker as plugin_broker
from pluginconf.plugin import hooks
from pluginconf.plugin.http import asgi
from pluginconf.plugin.serving import stdio
from pluginconf.reference.http_app import ReferenceApp
from pluginconf.v1 import hooks_pb2


@fault(
    "cancel-noticed-late",
    "tells the handler of a cancelled call 1.5 s late (it polls the call's state)",
)
def _(m: Mutant) -> None:
    receive = asgi.Exchange.receive

    async def late(self: Any) -> Any:
        message = await receive(self)
        if message["type"] == "http.disconnect" and not self.request_complete:
            await asyncio.sleep(1.5)
        return message

    patch(asgi.Exchange, "receive", late)
    patch(asgi, "DISCONNECT_GRACE_S", 5.0)


@fault("no-drain", "ends the call as soon as its response ends, leaving the request unread")
def _(m: Mutant) -> None:
    async def undrained(self: Any) -> None:
        return None

    patch(asgi.Exchange, "_drain_request", undrained)


@fault(
    "header-names-case-sensitive",
    "keeps header names as sent and groups response headers by exact (case-sensitive) name",
)
def _(m: Mutant) -> None:
    build = asgi.build_scope

    def as_sent(init: Any, state: Any) -> Any:
        scope = build(init, state)
        scope["headers"] = [(h.name.encode(), v.encode()) for h in init.headers for v in h.values]
        return scope

    def exact(raw: Any) -> Any:
        grouped: dict[str, list[str]] = {}
        for name, value in raw or ():
            grouped.setdefault(asgi.wire_text(bytes(name)), []).append(asgi.wire_text(bytes(value)))
        return [hooks_pb2.HTTPHeader(name=n, values=v) for n, v in grouped.items()]

    patch(asgi, "build_scope", as_sent)
    patch(asgi, "group_headers", exact)


@fault(
    "stdio-language-level",
    "captures sys.stdout and sys.stderr only, as go-plugin captures os.Stdout and os.Stderr: "
    "what is written to descriptors 1 and 2 reaches the host's pipes",
)
def _(m: Mutant) -> None:
    start = stdio.StdioCapture.start
    real_dup2 = os.dup2

    def rebind(fd: int, fd2: int, inheritable: bool = True) -> int:
        if fd2 not in (1, 2):
            return real_dup2(fd, fd2, inheritable)
        stream = open(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
        if fd2 == 1:
            sys.stdout = stream
        else:
            sys.stderr = stream
        return fd2

    def language_level(self: Any) -> Any:
        os.dup2 = rebind  # type: ignore[assignment]
        try:
            return start(self)
        finally:
            os.dup2 = real_dup2

    patch(stdio.StdioCapture, "start", language_level)


def _offering(bug: str) -> Fault:
    """The plugin offers a health server of its own through the broker when the host opens
    the stream (as a go-plugin plugin's AcceptAndServe does), with ``bug``."""

    def apply(m: Mutant) -> None:
        from grpc_health.v1 import _async as health_aio
        from grpc_health.v1 import health_pb2_grpc

        from pluginconf.goplugin import grpc_broker_pb2

        start_stream = plugin_broker.PluginBroker.StartStream
        close = plugin_broker.PluginBroker.close
        offered: list[tuple[Any, str]] = []

        async def offer(context: Any) -> None:
            directory = os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or tempfile.gettempdir()
            path = os.path.join(directory, f"offer-{os.getpid()}-{len(offered)}.sock")
            srv = grpc.aio.server()
            health_pb2_grpc.add_HealthServicer_to_server(health_aio.HealthServicer(), srv)
            # The bug of "id-zero": ids counted from 0.
            service_id = len(offered) + (0 if bug == "id-zero" else 1)
            info = grpc_broker_pb2.ConnInfo(service_id=service_id, network="unix", address=path)
            if bug == "knock":
                info.knock.knock = True
            offered.append((srv, path))
            if bug == "before-listen":
                await context.write(info)
                await asyncio.sleep(0.3)
                if (srv, path) not in offered:
                    # Stopped while it slept: listening now would also leave a socket behind
                    # (BR-10), and this mutant breaks BR-3 only.
                    return
            srv.add_insecure_port(f"unix:{path}")
            await srv.start()
            if bug != "before-listen":
                await context.write(info)

        async def stop_offers() -> None:
            while offered:
                srv, path = offered.pop()
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                # Shielded: the stream's handler may be cancelled while it cleans up.
                await asyncio.shield(srv.stop(0))

        async def offering(self: Any, request_iterator: Any, context: Any) -> None:
            await offer(context)
            try:
                await start_stream(self, request_iterator, context)
            finally:
                stopping = self._closed.is_set()
                if not (bug == "left-at-stream-end" or (bug == "left-at-shutdown" and stopping)):
                    await stop_offers()

        async def closing(self: Any) -> None:
            if bug != "left-at-shutdown":
                await stop_offers()
            await close(self)

        patch(plugin_broker.PluginBroker, "StartStream", offering)
        patch(plugin_broker.PluginBroker, "close", closing)

    return apply


fault(
    "broker-offer-before-listen",
    "announces a brokered server of its own 300 ms before it listens",
)(_offering("before-listen"))
fault(
    "broker-offer-id-zero",
    "announces its first brokered server under id 0 (ids counted from 0)",
)(_offering("id-zero"))
fault(
    "broker-offer-knock",
    "announces its brokered server asking for a knock, as a multiplexing broker does",
)(_offering("knock"))
fault(
    "broker-offer-left-at-shutdown",
    "closes its brokered server when the stream ends but not when it is stopped",
)(_offering("left-at-shutdown"))
fault(
    "broker-offer-left-at-stream-end",
    "keeps its brokered server listening after the host ends the broker stream",
)(_offering("left-at-stream-end"))


@fault("command-nfc", "NFC-normalises command text before the handler sees it")
def _(m: Mutant) -> None:
    import unicodedata

    execute = m.plugin.execute_command

    async def normalised(request: Any) -> Any:
        request.command = unicodedata.normalize("NFC", request.command)
        return await execute(request)

    m.plugin.execute_command = normalised  # type: ignore[method-assign]


@fault("hostapi-fixed-id", "dials HostAPI under broker id 1 whatever OnActivate passes")
def _(m: Mutant) -> None:
    activate = hooks.HooksService.OnActivate

    async def fixed(self: Any, request: Any, context: Any) -> Any:
        request.host_api_broker_id = 1
        return await activate(self, request, context)

    patch(hooks.HooksService, "OnActivate", fixed)


@fault("headers-joined", "answers /headers with x-multi's values joined: 'a, b, c'")
def _(m: Mutant) -> None:
    headers = m.plugin.app.headers

    async def joined(scope: Any, receive: Any, send: Any) -> None:
        async def joining(message: Any) -> None:
            if message["type"] == "http.response.start":
                multi = [v for n, v in message["headers"] if n == b"x-multi"]
                rest = [(n, v) for n, v in message["headers"] if n != b"x-multi"]
                message = {**message, "headers": [(b"x-multi", b", ".join(multi)), *rest]}
            await send(message)

        await headers(scope, receive, joining)

    replace_route(m, "/headers", joined)


@fault("disconnects-newest-first", "lists /disconnects newest first")
def _(m: Mutant) -> None:
    app: ReferenceApp = m.plugin.app

    async def reversed_list(scope: Any, receive: Any, send: Any) -> None:
        body = "".join(f"{d}\n" for d in reversed(app.disconnects)).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    replace_route(m, "/disconnects", reversed_list)
