"""Running a Plugin as a go-plugin compatible gRPC plugin process.

Process states, in order:
  checking   cookie and versions; on failure, explain on stderr and exit 1, stdout untouched
  listening  socket bound, gRPC services registered, stdio redirected into the capture
  serving    handshake line printed; health SERVING
  stopping   on GRPCController.Shutdown, SIGTERM, or the host process going away:
             health NOT_SERVING, stdio stream finished, in-flight calls get a bounded grace
  stopped    socket (and our socket dir) removed; exit 0
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from cryptography import x509
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pluginconf.goplugin import (
    grpc_broker_pb2_grpc,
    grpc_controller_pb2,
    grpc_controller_pb2_grpc,
    grpc_stdio_pb2_grpc,
)
from pluginconf.plugin.base import Plugin
from pluginconf.plugin.broker import PluginBroker
from pluginconf.plugin.config import ServeConfig
from pluginconf.plugin.errors import ServeConfigError
from pluginconf.plugin.hooks import HooksService
from pluginconf.plugin.lifespan import Lifespan, LifespanError
from pluginconf.plugin.listener import Listener
from pluginconf.plugin.stdio import StdioCapture, StdioService
from pluginconf.plugin.tls_front import client_context, server_context
from pluginconf.protocol.constants import (
    CORE_PROTOCOL_VERSION,
    ENV_CLIENT_CERT,
    ENV_PROTOCOL_VERSIONS,
    HEALTH_SERVICE_NAME,
)
from pluginconf.protocol.handshake import HandshakeLine
from pluginconf.protocol.mtls import generate_certificate
from pluginconf.protocol.versions import negotiate_version, parse_protocol_versions
from pluginconf.v1 import hooks_pb2_grpc

log = logging.getLogger("pluginconf.plugin")

COOKIE_EXPLANATION = (
    "This binary is a plugin. These are not meant to be executed directly.\n"
    "Please execute the program that consumes these plugins, which will\n"
    "load any plugins automatically\n"
)


class HealthService(health_aio.HealthServicer):  # type: ignore[misc]
    """grpc.health.v1.Health whose Watch streams end when the plugin stops.

    A Watch stream never ends by itself; left open, it would hold the graceful stop for its
    whole grace, as if it were work in flight.
    """

    def __init__(self, streams_end: asyncio.Event) -> None:
        super().__init__()
        self._streams_end = streams_end

    async def Watch(self, request: Any, context: Any) -> None:
        watch = asyncio.ensure_future(super().Watch(request, context))
        ended = asyncio.ensure_future(self._streams_end.wait())
        try:
            await asyncio.wait({watch, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
            ended.cancel()


class ControllerService(grpc_controller_pb2_grpc.GRPCControllerServicer):
    def __init__(self, on_shutdown: Callable[[], None]) -> None:
        self._on_shutdown = on_shutdown

    async def Shutdown(
        self, request: grpc_controller_pb2.Empty, context: grpc.aio.ServicerContext[object, object]
    ) -> grpc_controller_pb2.Empty:
        log.debug("GRPCController.Shutdown received")
        # The server's stop must have begun before the answer leaves: a host that has the
        # answer finds new calls refused (CT-2). The yield lets the stop task start first.
        self._on_shutdown()
        await asyncio.sleep(0)
        return grpc_controller_pb2.Empty()


@dataclass(frozen=True)
class AutoMTLS:
    server: ssl.SSLContext  # for the host's connections to us
    client: ssl.SSLContext  # for our broker dials to the host
    cert_der: bytes  # handshake field 6


def _auto_mtls(environ: Mapping[str, str]) -> AutoMTLS | None:
    client_pem = environ.get(ENV_CLIENT_CERT, "")
    if not client_pem:
        return None
    try:
        x509.load_pem_x509_certificate(client_pem.encode())
    except ValueError as exc:
        raise ServeConfigError(
            f"{ENV_CLIENT_CERT} is set but is not a PEM certificate ({exc}); the host must "
            "put its client certificate there, PEM-encoded, for AutoMTLS"
        ) from None
    pair = generate_certificate()
    host_pem = client_pem.encode()
    return AutoMTLS(
        server=server_context(pair.cert_pem, pair.key_pem, host_pem),
        client=client_context(pair.cert_pem, pair.key_pem, host_pem),
        cert_der=pair.cert_der,
    )


class PluginProcess:
    def __init__(
        self, plugin: Plugin, config: ServeConfig, app_version: int, environ: Mapping[str, str]
    ) -> None:
        self._plugin = plugin
        self._config = config
        self._app_version = app_version
        self._environ = environ
        # Read now, not once serving: a host that dies before the watcher starts must count.
        self._host_pid = os.getppid()

    def _setup_logging(self, stderr_fd: int) -> None:
        stream = os.fdopen(stderr_fd, "w", buffering=1, closefd=True)
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger("pluginconf")
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False

    async def _watch_parent(self, stop: asyncio.Event) -> None:
        original = self._host_pid
        if original == 1:
            return  # started by init: there is no host to outlive
        while not stop.is_set():
            await asyncio.sleep(self._config.parent_check_interval_s)
            if os.getppid() != original:
                log.warning("host process %d went away; stopping", original)
                stop.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        tls = _auto_mtls(self._environ)
        capture = StdioCapture(self._config.stdio_buffer_bytes)
        stdout_fd, stderr_fd = capture.start()
        self._setup_logging(stderr_fd)

        app = self._plugin.http_app()
        lifespan = Lifespan(app) if app is not None else None
        server = grpc.aio.server(options=list(self._config.grpc_options))
        streams_end = asyncio.Event()
        health_service = HealthService(streams_end)
        broker = PluginBroker(self._config.broker_dial_timeout_s, tls.client if tls else None)
        health_pb2_grpc.add_HealthServicer_to_server(health_service, server)
        stopping: list[asyncio.Task[None]] = []

        def begin_stop() -> None:
            """Refuse new calls at once; calls in progress get the grace (CT-2)."""
            if not stopping:
                stopping.append(asyncio.ensure_future(server.stop(self._config.shutdown_grace_s)))
            stop.set()

        grpc_controller_pb2_grpc.add_GRPCControllerServicer_to_server(
            ControllerService(begin_stop), server
        )
        grpc_stdio_pb2_grpc.add_GRPCStdioServicer_to_server(StdioService(capture), server)
        grpc_broker_pb2_grpc.add_GRPCBrokerServicer_to_server(broker, server)
        hooks_pb2_grpc.add_HooksServicer_to_server(
            HooksService(self._plugin, broker, lifespan.state if lifespan else {}), server
        )

        listener = Listener(self._config.network, self._environ, tls.server if tls else None)
        try:
            if lifespan is not None:
                await lifespan.startup()
            listener.prepare(server)
            await server.start()
            await listener.start_front()
            for service in ("", HEALTH_SERVICE_NAME):
                await health_service.set(service, health_pb2.HealthCheckResponse.SERVING)
            line = HandshakeLine(
                CORE_PROTOCOL_VERSION,
                self._app_version,
                listener.network,
                listener.address,
                server_cert_der=tls.cert_der if tls else None,
            ).format()
            # Signals are handled before the handshake: a host may stop us right after it.
            loop.add_signal_handler(signal.SIGTERM, begin_stop)
            # As in go-plugin: a terminal's Ctrl-C reaches the whole process group, and the
            # host, not the plugin, decides how to shut down.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            os.write(stdout_fd, (line + "\n").encode())
            watcher = asyncio.ensure_future(self._watch_parent(stop))
            await stop.wait()
            watcher.cancel()
            begin_stop()

            await health_service.enter_graceful_shutdown()
            # Long-lived streams end now, or they would hold the graceful stop to its grace.
            streams_end.set()
            await broker.close()
            await capture.stop(timeout_s=0.1)
            await stopping[0]
            await listener.close_front()
            if lifespan is not None:
                await lifespan.shutdown()
        except (ServeConfigError, LifespanError):
            await server.stop(0)
            await capture.stop(timeout_s=0.1)  # so the error reaches the real stderr
            raise
        finally:
            listener.remove()
        return 0


def check_cookie(config: ServeConfig, environ: Mapping[str, str]) -> bool:
    return environ.get(config.magic_cookie.key) == config.magic_cookie.value


def run(
    plugin: Plugin, config: ServeConfig | None = None, environ: Mapping[str, str] | None = None
) -> int:
    """Serve ``plugin`` until the host stops it; return the process exit status."""
    config = config or ServeConfig()
    environ = os.environ if environ is None else environ
    if not check_cookie(config, environ):
        sys.stderr.write(COOKIE_EXPLANATION)
        sys.stderr.flush()
        return 1
    offered, invalid = parse_protocol_versions(environ.get(ENV_PROTOCOL_VERSIONS, ""))
    for entry in invalid:
        sys.stderr.write(f"{ENV_PROTOCOL_VERSIONS}: ignoring {entry!r}, not an integer\n")
    version, agreed = negotiate_version(config.protocol_versions, offered)
    if not agreed:
        sys.stderr.write(
            f"no common app protocol version: host offers {offered or 'none'}, plugin speaks "
            f"{sorted(config.protocol_versions)}; offering {version} for the host to report\n"
        )
    try:
        return asyncio.run(PluginProcess(plugin, config, version, environ).run())
    except (ServeConfigError, LifespanError) as exc:
        sys.stderr.write(f"plugin cannot serve: {exc}\n")
        return 1


def serve(plugin: Plugin, config: ServeConfig | None = None) -> None:
    """Serve ``plugin`` as this process's plugin and exit when the host stops it."""
    code = run(plugin, config)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: gRPC's threads make it slow, and the host is waiting.
    os._exit(code)
