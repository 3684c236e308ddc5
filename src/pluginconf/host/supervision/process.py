"""One plugin process under a supervisor: launched, connected, watched, stopped and reaped."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc

from pluginconf.host.broker import HostBroker
from pluginconf.host.client import PluginClient
from pluginconf.host.errors import HostError, LaunchError, describe_exit_status
from pluginconf.host.hostapi import InMemoryHostAPI
from pluginconf.host.launcher import LaunchedPlugin, LaunchSpec, spawn
from pluginconf.host.supervision.breaker import CircuitBreaker
from pluginconf.host.supervision.clock import Clock
from pluginconf.host.supervision.config import SupervisorConfig
from pluginconf.host.supervision.stdio import StdioMirror
from pluginconf.protocol.mtls import der_to_pem
from pluginconf.v1 import hostapi_pb2_grpc


@dataclass
class PluginFailure(HostError):
    """Why a plugin process failed, as its crashed (or failed) transition reports it."""

    reason: str
    error_kind: str
    exit_status: int | None = None
    stderr_tail: str = ""
    # An activation AppError: the plugin is healthy but refused; no restart (LC-4, LC-7).
    final: bool = False


class PluginProcess:
    def __init__(
        self,
        plugin_id: str,
        spec: LaunchSpec,
        config: SupervisorConfig,
        clock: Clock,
        stdio: StdioMirror,
        host_api: InMemoryHostAPI | None = None,
    ) -> None:
        self.plugin_id = plugin_id
        self.spec = spec
        self.config = config
        self.clock = clock
        self.stdio = stdio
        self.host_api = host_api
        # From the spawn on, so that a half-started process is known and cleaned up.
        self.launched: LaunchedPlugin | None = None
        self.client: PluginClient | None = None
        self.broker: HostBroker | None = None
        self._stdio_task: asyncio.Task[None] | None = None

    async def launch(self) -> None:
        """Spawn, read the handshake, connect; a LaunchError becomes a PluginFailure."""
        try:
            self.launched = await spawn(self.spec)
            await self.launched.read_handshake()
            await self.launched.connect()
        except LaunchError as exc:
            reason = str(exc).splitlines()[0]
            if exc.line is not None:
                reason += f"; handshake line {exc.line!r}"
            raise PluginFailure(reason, exc.kind, exc.exit_status, exc.stderr_tail) from None

    def connect_client(self) -> PluginClient:
        """The hook client of the connected process, with its own circuit breaker."""
        assert self.launched is not None
        assert self.launched.channel is not None
        self.client = PluginClient(
            self.plugin_id,
            self.launched.channel,
            self.config.client,
            CircuitBreaker(self.config.breaker_threshold, self.config.breaker_cooldown_s),
        )
        return self.client

    def start_stdio(self) -> None:
        """Mirror the plugin's stdio from now until the process is closed."""
        assert self.launched is not None
        assert self.launched.channel is not None
        self._stdio_task = asyncio.create_task(self.stdio.mirror(self.launched.channel))

    async def serve_host_api(self) -> int:
        """Open the broker stream (BR-2: every process gets one, as go-plugin's client opens
        it, whether or not the host offers HostAPI) and serve HostAPI on it when offered."""
        if self.launched is None or self.launched.channel is None:
            return 0
        creds = None
        if self.launched.client_cert is not None and self.launched.handshake is not None:
            assert self.launched.handshake.server_cert_der is not None
            creds = grpc.ssl_server_credentials(
                [(self.launched.client_cert.key_pem, self.launched.client_cert.cert_pem)],
                root_certificates=der_to_pem(self.launched.handshake.server_cert_der),
                require_client_auth=True,
            )
        self.broker = HostBroker(self.launched.channel, self.launched.socket_dir, creds)
        await self.broker.start()
        api = self.host_api
        if api is None:
            return 0
        return await self.broker.serve(
            lambda server: hostapi_pb2_grpc.add_HostAPIServicer_to_server(api, server)
        )

    def failure(self, reason: str, kind: str) -> PluginFailure:
        """A failure of this process, with its exit status and stderr so far."""
        assert self.launched is not None
        return PluginFailure(
            reason, kind, self.launched.process.returncode, "\n".join(self.launched.stderr_tail)
        )

    async def watch(self, stop: asyncio.Event) -> PluginFailure | None:
        """Wait for a stop request (None), the process exiting, or health failing."""
        assert self.launched is not None
        assert self.client is not None
        launched = self.launched
        exited = asyncio.ensure_future(launched.process.wait())
        stopped = asyncio.ensure_future(stop.wait())
        health = asyncio.ensure_future(self._health_loop(self.client))
        try:
            done, _ = await asyncio.wait(
                {exited, stopped, health}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (exited, stopped, health):
                task.cancel()
        if stopped in done:
            return None
        if exited in done:
            status = launched.process.returncode
            assert status is not None
            return PluginFailure(
                f"plugin exited unexpectedly ({describe_exit_status(status)})",
                "unexpected_exit",
                status,
                "\n".join(launched.stderr_tail),
            )
        reason = health.result()
        await launched.kill()  # SV-7: a plugin failing its health check gets no grace
        return PluginFailure(
            f"health_check_failed: {reason}", "health_check_failed", launched.process.returncode
        )

    async def _health_loop(self, client: PluginClient) -> str:
        failures = 0
        while True:
            await self.clock.sleep(self.config.health_interval_s)
            problem = await client.check_health()
            failures = failures + 1 if problem else 0
            if problem and failures >= self.config.health_failures:
                return problem

    async def stop(self) -> None:
        """SV-14 after OnDeactivate: Shutdown, exit wait, SIGTERM, SIGKILL."""
        if self.launched is not None:
            await self.launched.stop(
                self.config.shutdown_timeout_s, self.config.exit_grace_s, self.config.term_grace_s
            )

    async def close(self) -> None:
        """Stop mirroring, close the broker, kill and reap what is left, remove its sockets."""
        self.client = None
        if self._stdio_task is not None:
            self._stdio_task.cancel()
            await asyncio.wait({self._stdio_task})
            self._stdio_task = None
        if self.broker is not None:
            await self.broker.close()
            self.broker = None
        if self.launched is not None:
            await self.launched.close()
            self.launched = None
