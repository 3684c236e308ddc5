"""One plugin process from listening to stopped, as a sequence of overridable steps.

Process states, in order:
  listening  socket bound, gRPC services registered, stdio redirected into the capture
  serving    handshake line printed; health SERVING
  stopping   on GRPCController.Shutdown, SIGTERM, or the host process going away:
             health NOT_SERVING, stdio stream finished, in-flight calls get a bounded grace
  stopped    socket (and our socket dir) removed

``PluginProcess.run`` is the sequence; its public methods are the steps. A subclass overrides
a step to serve differently (the suite's fake plugin does, to misbehave as its scenario says);
the SDK's ``serve()`` runs the class as it is.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2_grpc

from pluginconf.goplugin import (
    grpc_broker_pb2_grpc,
    grpc_controller_pb2_grpc,
    grpc_stdio_pb2_grpc,
)
from pluginconf.plugin.base import Plugin
from pluginconf.plugin.broker import PluginBroker
from pluginconf.plugin.config import ServeConfig
from pluginconf.plugin.errors import ServeConfigError
from pluginconf.plugin.hooks import HooksService
from pluginconf.plugin.http.lifespan import Lifespan, LifespanError
from pluginconf.plugin.serving.debug import LoopWatchdog, debug_from_env
from pluginconf.plugin.serving.listener import Listener
from pluginconf.plugin.serving.mtls import AutoMTLS, auto_mtls_from_env
from pluginconf.plugin.serving.services import ControllerService, HealthService
from pluginconf.plugin.serving.stdio import StdioCapture, StdioService
from pluginconf.protocol.constants import CORE_PROTOCOL_VERSION
from pluginconf.protocol.handshake import HandshakeLine
from pluginconf.v1 import hooks_pb2_grpc

log = logging.getLogger("pluginconf.plugin")


@dataclass
class Serving:
    """What the process serves with, made by the steps; handed to the later steps."""

    server: grpc.aio.Server
    capture: StdioCapture
    listener: Listener
    broker: PluginBroker
    health: Any  # the servicer make_health gave
    tls: AutoMTLS | None
    lifespan: Lifespan | None
    stdout_fd: int  # the real stdout, for the handshake line
    stderr_fd: int  # the real stderr
    stopping: list[asyncio.Task[None]] = field(default_factory=list)


class PluginProcess:
    """Serves ``plugin`` until the host stops it. ``run`` calls the steps in this order:

    auto_mtls, setup_logging, start_watchdog, lifespan, grpc_options, make_broker,
    make_health, make_controller, make_stdio, make_hooks; then, the server listening,
    handshake_line, announce, wait_for_stop, shut_down.
    """

    def __init__(
        self, plugin: Plugin, config: ServeConfig, app_version: int, environ: Mapping[str, str]
    ) -> None:
        self.plugin = plugin
        self.config = config
        self.app_version = app_version
        self.environ = environ
        # Read now, not once serving: a host that dies before the watcher starts must count.
        self.host_pid = os.getppid()
        self._stop = asyncio.Event()
        self._serving: Serving | None = None

    # -- the steps ---------------------------------------------------------------------------

    def auto_mtls(self) -> AutoMTLS | None:
        """The TLS to serve with (None: plaintext)."""
        return auto_mtls_from_env(self.environ)

    def setup_logging(self, stderr_fd: int) -> None:
        """Log to ``stderr_fd`` (the real stderr), which this step then owns."""
        stream = os.fdopen(stderr_fd, "w", buffering=1, closefd=True)
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger("pluginconf")
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False

    def start_watchdog(self) -> LoopWatchdog | None:
        debug = self.config.debug
        if not (debug or (debug is None and debug_from_env(self.environ))):
            return None
        watchdog = LoopWatchdog(asyncio.get_running_loop())
        watchdog.start()
        return watchdog

    def lifespan(self) -> Lifespan | None:
        app = self.plugin.http_app()
        return Lifespan(app) if app is not None else None

    def grpc_options(self) -> list[tuple[str, Any]]:
        return list(self.config.grpc_options)

    def make_broker(self, tls: AutoMTLS | None) -> PluginBroker:
        return PluginBroker(self.config.broker_dial_timeout_s, tls.client if tls else None)

    def make_health(self) -> Any:
        """The grpc.health.v1.Health servicer."""
        return HealthService()

    def make_controller(self) -> grpc_controller_pb2_grpc.GRPCControllerServicer:
        return ControllerService(self.begin_stop)

    def make_stdio(self, capture: StdioCapture) -> StdioService:
        return StdioService(capture)

    def make_hooks(self, broker: PluginBroker, state: dict[str, Any]) -> HooksService:
        return HooksService(self.plugin, broker, state)

    def handshake_line(self, serving: Serving) -> str:
        return HandshakeLine(
            CORE_PROTOCOL_VERSION,
            self.app_version,
            serving.listener.network,
            serving.listener.address,
            server_cert_der=serving.tls.cert_der if serving.tls else None,
        ).format()

    async def announce(self, serving: Serving, line: str) -> None:
        """Become SERVING and print the handshake line."""
        await serving.health.set_serving()
        # Signals are handled before the handshake: a host may stop us right after it.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.begin_stop)
        # As in go-plugin: a terminal's Ctrl-C reaches the whole process group, and the
        # host, not the plugin, decides how to shut down.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        os.write(serving.stdout_fd, (line + "\n").encode())

    async def wait_for_stop(self, serving: Serving) -> None:
        watcher = asyncio.ensure_future(self.watch_parent(self._stop))
        await self._stop.wait()
        watcher.cancel()
        self.begin_stop()

    async def watch_parent(self, stop: asyncio.Event) -> None:
        """Set ``stop`` when the host process goes away."""
        original = self.host_pid
        if original == 1:
            return  # started by init: there is no host to outlive
        while not stop.is_set():
            await asyncio.sleep(self.config.parent_check_interval_s)
            if os.getppid() != original:
                log.warning("host process %d went away; stopping", original)
                stop.set()

    async def shut_down(self, serving: Serving) -> None:
        """From stopping to stopped: the server's stop began in begin_stop."""
        await serving.health.set_stopping()
        await serving.broker.close()
        await serving.capture.stop(timeout_s=0.1)
        await serving.stopping[0]
        await serving.listener.close_front()
        if serving.lifespan is not None:
            await serving.lifespan.shutdown()

    def begin_stop(self) -> None:
        """Refuse new calls at once; calls in progress get the grace (CT-2)."""
        serving = self._serving
        if serving is not None and not serving.stopping:
            task = asyncio.ensure_future(serving.server.stop(self.config.shutdown_grace_s))
            serving.stopping.append(task)
        self._stop.set()

    # -- the sequence ------------------------------------------------------------------------

    async def run(self) -> int:
        tls = self.auto_mtls()
        capture = StdioCapture(self.config.stdio_buffer_bytes)
        stdout_fd, stderr_fd = capture.start()
        self.setup_logging(stderr_fd)
        watchdog = self.start_watchdog()
        lifespan = self.lifespan()
        server = grpc.aio.server(options=self.grpc_options())
        broker = self.make_broker(tls)
        health = self.make_health()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        grpc_controller_pb2_grpc.add_GRPCControllerServicer_to_server(
            self.make_controller(), server
        )
        grpc_stdio_pb2_grpc.add_GRPCStdioServicer_to_server(self.make_stdio(capture), server)
        grpc_broker_pb2_grpc.add_GRPCBrokerServicer_to_server(broker, server)
        hooks = self.make_hooks(broker, lifespan.state if lifespan else {})
        hooks_pb2_grpc.add_HooksServicer_to_server(hooks, server)

        listener = Listener(self.config.network, self.environ, tls.server if tls else None)
        serving = Serving(
            server, capture, listener, broker, health, tls, lifespan, stdout_fd, stderr_fd
        )
        self._serving = serving
        try:
            if lifespan is not None:
                await lifespan.startup()
            listener.prepare(server)
            await server.start()
            await listener.start_front()
            await self.announce(serving, self.handshake_line(serving))
            await self.wait_for_stop(serving)
            await self.shut_down(serving)
        except (ServeConfigError, LifespanError):
            await server.stop(0)
            await capture.stop(timeout_s=0.1)  # so the error reaches the real stderr
            raise
        finally:
            if watchdog is not None:
                watchdog.stop()
            listener.remove()
        return 0
