"""Plugin faults that break one requirement each (issue 15): stdio to broker.

Stdio buffering, health, start, commands and broker dials; and the two bugs fuzzing found
first (chunk-off-by-one, fourth-header-value), which fixed cases now catch.
"""

from __future__ import annotations

import os
import time
from typing import Any

from plugin_faults.common import Mutant, fault, patch

from pluginconf.plugin import broker as plugin_broker
from pluginconf.plugin import server
from pluginconf.plugin.http import asgi
from pluginconf.plugin.serving import mtls as sdk_mtls
from pluginconf.plugin.serving import process, stdio
from pluginconf.v1 import hooks_pb2

# -- issue 15: requirements no case cited (stdio buffering, health, start, commands, broker) --


@fault(
    "stdio-blocks-unsubscribed",
    "stops draining stdout/stderr once its buffer is full while nobody subscribes, as "
    "go-plugin's capture does: the writer blocks",
)
def _(m: Mutant) -> None:
    pump = stdio.StdioCapture._pump

    def waiting_pump(self: Any, pipes: Any) -> None:
        # The pump's reads wait while the buffer is full, so the pipe fills and writes block.
        real_read = os.read

        def read(fd: int, n: int) -> bytes:
            while sum(self._buffered.values()) >= self._limit:
                time.sleep(0.01)
            return real_read(fd, n)

        os.read = read  # type: ignore[assignment]
        try:
            pump(self, pipes)
        finally:
            os.read = real_read

    patch(stdio.StdioCapture, "_pump", waiting_pump)

    def no_drop(self: Any, channel: int, data: bytes) -> None:
        self._chunks.append((channel, data))
        self._buffered[channel] += len(data)
        self._changed.set()

    patch(stdio.StdioCapture, "_push", no_drop)


@fault(
    "stdio-drops-newest",
    "once its stdio buffer is full, discards what is written next instead of the oldest",
)
def _(m: Mutant) -> None:
    def keep_oldest(self: Any, channel: int, data: bytes) -> None:
        if self._buffered[channel] + len(data) > self._limit:
            self.dropped_bytes += len(data)
            return
        self._chunks.append((channel, data))
        self._buffered[channel] += len(data)
        self._changed.set()

    patch(stdio.StdioCapture, "_push", keep_oldest)


@fault(
    "stdio-buffer-shared",
    "bounds its stdio buffer across both channels: a burst on stdout drops stderr's output",
)
def _(m: Mutant) -> None:
    def shared_limit(self: Any, channel: int, data: bytes) -> None:
        self._chunks.append((channel, data))
        self._buffered[channel] += len(data)
        while sum(self._buffered.values()) > self._limit and len(self._chunks) > 1:
            old_channel, old = self._chunks.popleft()
            self._buffered[old_channel] -= len(old)
            self.dropped_bytes += len(old)
        self._changed.set()

    patch(stdio.StdioCapture, "_push", shared_limit)


@fault(
    "health-serving-while-stopping",
    "keeps answering SERVING until its server closes, as go-plugin does",
)
def _(m: Mutant) -> None:
    async def unchanged(self: Any) -> None:
        return None

    patch(process.HealthService, "enter_graceful_shutdown", unchanged)


@fault("slow-startup", "initialises for 2.5 s (a cache warmed up front) before its handshake")
def _(m: Mutant) -> None:
    run = server.run

    def warming_up(*args: Any, **kwargs: Any) -> int:
        time.sleep(2.5)  # a synchronous initialisation before serving
        return int(run(*args, **kwargs))

    patch(server, "run", warming_up)


@fault("response-type-unset", "answers commands without a response_type")
def _(m: Mutant) -> None:
    async def text(value: str) -> hooks_pb2.ExecuteCommandResponse:
        return hooks_pb2.ExecuteCommandResponse(text=value)

    patch(m.plugin, "_text", text)


@fault(
    "broker-dial-no-client-cert",
    "dials brokered servers under AutoMTLS without presenting its certificate",
)
def _(m: Mutant) -> None:
    import ssl

    def anonymous(cert_pem: bytes, key_pem: bytes, server_ca_pem: bytes) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_verify_locations(cadata=server_ca_pem.decode())
        ctx.set_alpn_protocols(["h2"])
        return ctx

    patch(sdk_mtls, "client_context", anonymous)


@fault(
    "broker-dial-no-verify",
    "dials brokered servers under AutoMTLS without verifying their certificate",
)
def _(m: Mutant) -> None:
    import ssl

    make = sdk_mtls.client_context

    def trusting(cert_pem: bytes, key_pem: bytes, server_ca_pem: bytes) -> ssl.SSLContext:
        ctx = make(cert_pem, key_pem, server_ca_pem)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    patch(sdk_mtls, "client_context", trusting)


@fault(
    "dial-error-without-id",
    "reports a broker dial timeout without the id it waited for, as go-plugin does",
)
def _(m: Mutant) -> None:
    dial = plugin_broker.PluginBroker.dial

    async def vague(self: Any, service_id: int) -> Any:
        try:
            return await dial(self, service_id)
        except plugin_broker.BrokerError:
            raise plugin_broker.BrokerError("timeout waiting for connection info") from None

    patch(plugin_broker.PluginBroker, "dial", vague)


@fault(
    "chunk-off-by-one",
    "drops the last byte of a response piece one byte past a 64 KiB boundary "
    "(65536*k + 1 bytes, k >= 1), an off-by-one in the frame splitter",
)
def _(m: Mutant) -> None:
    send = asgi.Exchange.send

    async def off_by_one(self: Any, message: Any) -> None:
        body = message.get("body", b"")
        if message["type"] == "http.response.body" and len(body) % 65536 == 1 < len(body):
            message = {**message, "body": body[:-1]}
        await send(self, message)

    patch(asgi.Exchange, "send", off_by_one)


@fault(
    "fourth-header-value",
    "gives the handler at most three values of a request header (a fixed-size buffer)",
)
def _(m: Mutant) -> None:
    build = asgi.build_scope

    def three_at_most(init: Any, state: Any) -> Any:
        scope = build(init, state)
        seen: dict[bytes, int] = {}
        kept = []
        for name, value in scope["headers"]:
            seen[name] = seen.get(name, 0) + 1
            if seen[name] <= 3:
                kept.append((name, value))
        scope["headers"] = kept
        return scope

    patch(asgi, "build_scope", three_at_most)
