"""A plugin process started for one case, which the case may stop, signal or break."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from dataclasses import dataclass

import grpc
import psutil
from grpc_health.v1 import health_pb2_grpc

from pluginconf.goplugin import grpc_controller_pb2, grpc_controller_pb2_grpc
from pluginconf.host.launcher import LaunchedPlugin
from pluginconf.protocol.handshake import HandshakeLine
from pluginconf.protocol.mtls import CertificatePair
from pluginconf.runner.options import SUITE_CHANNEL_OPTIONS
from pluginconf.runner.plugin.shared import crash_evidence
from pluginconf.runner.plugin.tls import TLSChannel, open_tls_channel
from pluginconf.v1 import hooks_pb2_grpc


@dataclass(frozen=True)
class ShutdownAnswer:
    outcome: str  # "ok", "unavailable", or "CODE: details"
    sent_at: float
    answered_at: float


class FreshPlugin:
    def __init__(self, launched: LaunchedPlugin, tmpdir: str) -> None:
        self.launched = launched
        self.tmpdir = tmpdir
        self.channel: grpc.aio.Channel | None = None
        self._tls: TLSChannel | None = None

    @property
    def pid(self) -> int:
        return self.launched.pid

    @property
    def handshake(self) -> HandshakeLine:
        assert self.launched.handshake is not None, "the handshake has not been read"
        return self.launched.handshake

    @property
    def exit_status(self) -> int | None:
        return self.launched.process.returncode

    def evidence(self) -> str:
        return crash_evidence(self.launched, None)

    def stderr_text(self) -> str:
        return "\n".join(self.launched.stderr_tail)

    async def connect(self) -> grpc.aio.Channel:
        """Plain, or AutoMTLS as the host's certificate when the launch asked for it."""
        if self.launched.client_cert is None:
            self.channel = await self.launched.connect(SUITE_CHANNEL_OPTIONS)
        else:
            self._tls = await self.connect_tls(self.launched.client_cert)
            self.channel = self._tls.channel
        return self.channel

    async def connect_tls(self, client: CertificatePair | None) -> TLSChannel:
        """An extra AutoMTLS channel presenting ``client`` (None: no certificate at all)."""
        return await open_tls_channel(self.handshake, client, list(SUITE_CHANNEL_OPTIONS))

    @property
    def connection(self) -> grpc.aio.Channel:
        """The channel of connect(); a defect of the case to ask for it before."""
        assert self.channel is not None, "connect() first"
        return self.channel

    @property
    def hooks(self) -> hooks_pb2_grpc.HooksAsyncStub:
        return hooks_pb2_grpc.HooksStub(self.connection)

    @property
    def health(self) -> health_pb2_grpc.HealthStub:
        return health_pb2_grpc.HealthStub(self.connection)

    async def request_shutdown(self, timeout_s: float = 2.0) -> ShutdownAnswer:
        stub = grpc_controller_pb2_grpc.GRPCControllerStub(self.connection)
        sent = time.monotonic()
        try:
            await stub.Shutdown(grpc_controller_pb2.Empty(), timeout=timeout_s)
            outcome = "ok"
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            outcome = (
                "unavailable"
                if code == grpc.StatusCode.UNAVAILABLE
                else f"{code.name}: {exc.details()}"
            )
        return ShutdownAnswer(outcome, sent, time.monotonic())

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the plugin process alone (not its group)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    async def wait_exit(self, timeout_s: float) -> bool:
        return await self.launched.wait_exit(timeout_s)

    def process_group(self) -> list[psutil.Process]:
        """Live processes in the plugin's process group other than the plugin itself."""
        found = []
        for process in psutil.process_iter(["pid", "status"]):
            if process.pid == self.pid:
                continue
            try:
                if os.getpgid(process.pid) == self.pid and process.status() != "zombie":
                    found.append(process)
            except (ProcessLookupError, psutil.Error):
                continue
        return found

    async def close(self) -> None:
        """Stop as a host does (Shutdown, SIGTERM, SIGKILL), reap, remove what it left."""
        try:
            if self.launched.process.returncode is None:
                await self.launched.stop(shutdown_timeout_s=1.0, grace_s=1.0, term_grace_s=1.0)
        finally:
            if self._tls is not None:
                await self._tls.close()
                self._tls = None
            await self.launched.close()
            shutil.rmtree(self.tmpdir, ignore_errors=True)
