"""The fake's serving phase: the SDK's PluginProcess, its steps overridden by the scenario."""

from __future__ import annotations

import base64
import os
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pluginconf.fake.hooks import FakeHooks
from pluginconf.fake.http_app import FakeApp
from pluginconf.fake.plugin import FakePlugin
from pluginconf.fake.scenario.model import TLSSpec
from pluginconf.fake.services import FakeController, FakeHealth, RecordingBroker, RecordingStdio
from pluginconf.plugin.broker import PluginBroker
from pluginconf.plugin.serving.mtls import AutoMTLS, auto_mtls_from_env
from pluginconf.plugin.serving.process import PluginProcess, Serving
from pluginconf.plugin.serving.stdio import StdioCapture
from pluginconf.plugin.serving.tls_front import client_context, server_context
from pluginconf.protocol.constants import (
    CORE_PROTOCOL_VERSION,
    ENV_CLIENT_CERT,
)
from pluginconf.protocol.handshake import HandshakeLine

if TYPE_CHECKING:
    from pluginconf.fake.process import Runner
    from pluginconf.protocol.mtls import CertificatePair


class FakeProcess(PluginProcess):
    """The SDK's serving sequence (PluginProcess.run) with the fake's steps: its services,
    TLS and handshake line, and its stop, which the runner's signals, host watch and
    Shutdown request. The fake's Shutdown does not begin the server's stop at once, as the
    SDK's does: the server stops last, after health, broker and stdio (shut_down)."""

    def __init__(self, runner: Runner, tls: AutoMTLS | None, sixth: str | None) -> None:
        scenario = runner.scenario
        host_pem = runner.environ.get(ENV_CLIENT_CERT) if tls else None
        dial_timeout_s = runner.config.broker_dial_timeout_s
        self._broker = RecordingBroker(
            runner, dial_timeout_s, tls.client if tls else None, host_pem
        )
        crash_after = scenario.crash.during_http_after_bytes if scenario.crash else None
        app = FakeApp(runner.rec, crash_after, runner.crash)
        plugin = FakePlugin(scenario, app, runner, self._broker)
        super().__init__(plugin, runner.config, runner.app_version, runner.environ)
        self._fake_plugin = plugin
        self._runner = runner
        self._tls = tls
        self._sixth = sixth  # field 6 of the handshake line (None: five fields)
        self._health = FakeHealth(runner)

    def auto_mtls(self) -> AutoMTLS | None:
        return self._tls  # as the scenario's ``tls`` says (fake_auto_mtls)

    def setup_logging(self, stderr_fd: int) -> None:
        # Logging already goes to the original stderr (run() set it up before the capture);
        # announce floods or closes ``stderr_fd``.
        pass

    def start_watchdog(self) -> None:
        return None  # the fake has no debug mode

    def lifespan(self) -> None:
        return None  # the fake's app answers HTTP only: it has no lifespan to run

    def grpc_options(self) -> list[tuple[str, Any]]:
        options = super().grpc_options()
        if self._runner.scenario.max_receive_bytes is not None:
            options.append(
                ("grpc.max_receive_message_length", self._runner.scenario.max_receive_bytes)
            )
        return options

    def make_broker(self, tls: AutoMTLS | None) -> RecordingBroker:
        return self._broker

    def make_health(self) -> FakeHealth:
        return self._health

    def make_controller(self) -> FakeController:
        return FakeController(self._runner)

    def make_stdio(self, capture: StdioCapture) -> RecordingStdio:
        return RecordingStdio(self._runner, capture)

    def make_hooks(self, broker: PluginBroker, state: dict[str, Any]) -> FakeHooks:
        return FakeHooks(self._fake_plugin, self._broker, self._runner)

    def handshake_line(self, serving: Serving) -> str:
        listener = serving.listener
        line = HandshakeLine(
            CORE_PROTOCOL_VERSION, self.app_version, listener.network, listener.address
        ).format()
        return line if self._sixth is None else line + "|" + self._sixth

    async def announce(self, serving: Serving, line: str) -> None:
        runner, scenario = self._runner, self._runner.scenario
        # Recorded first, so that a host that has read the line finds it in the record.
        runner.rec.event("handshake", line=line)
        self._health.start()  # after the report, which may take a while: times count from here
        os.write(serving.stdout_fd, (line + "\n").encode())
        # To the pipes the host reads, not into the capture for GRPCStdio.
        if scenario.flood_stdout is not None:
            runner.start_flood(serving.stdout_fd, scenario.flood_stdout, "stdout")
        else:
            os.close(serving.stdout_fd)
        if scenario.flood_stderr is not None and scenario.flood_stderr.when == "after":
            runner.start_flood(serving.stderr_fd, scenario.flood_stderr, "stderr")
        else:
            os.close(serving.stderr_fd)

    async def wait_for_stop(self, serving: Serving) -> None:
        await self._runner.wait_stop()
        self._runner.rec.event("stopping", reason=self._runner.stop_reason)

    async def shut_down(self, serving: Serving) -> None:
        self._health.stopping()
        await self._broker.close()
        await serving.capture.stop(timeout_s=0.1)
        await serving.server.stop(self.config.shutdown_grace_s)
        await serving.listener.close_front()


# -- AutoMTLS as the scenario's ``tls`` says --------------------------------------------------

NOT_A_CERTIFICATE = b"fakeplugin: field 6 holds these bytes, which are not a certificate. " * 4


def _certificate(padding: int | None) -> CertificatePair:
    """A fresh certificate; with ``padding``, one whose DER's base64 ends with that many '='
    (the handshake carries it without them), so that every length class can be sent."""
    # Imported here: cryptography costs a fake without AutoMTLS ~45 ms of every start.
    from pluginconf.protocol.mtls import generate_certificate

    for _ in range(1000):
        pair = generate_certificate()
        if padding is None or (3 - len(pair.cert_der) % 3) % 3 == padding:
            return pair
    raise RuntimeError(f"no certificate with base64 padding {padding} in 1000 tries")


def _old_tls(ctx: ssl.SSLContext) -> None:
    """TLS 1.0 and 1.1 only, as an old TLS stack serves (TLS-6)."""
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1


def fake_auto_mtls(spec: TLSSpec, environ: Mapping[str, str]) -> tuple[AutoMTLS | None, str | None]:
    """What the fake serves TLS with (None: plaintext), and field 6 of its handshake line
    (None: five fields)."""
    default = spec == TLSSpec()
    if default:
        tls = auto_mtls_from_env(environ)  # the SDK's own behaviour
        pair = None
    else:
        host_pem = environ.get(ENV_CLIENT_CERT, "")
        serves_tls = bool(host_pem) and spec.serve != "plain"
        pair = (
            _certificate(spec.certificate_padding)
            if serves_tls or spec.sixth_field == "certificate"
            else None
        )
        tls = None
        if serves_tls:
            assert pair is not None
            auto_mtls_from_env(environ)  # refuses an unusable PEM as the SDK does (TLS-2)
            server = server_context(pair.cert_pem, pair.key_pem, host_pem.encode())
            if spec.serve == "tls1.1":
                _old_tls(server)
            client = client_context(pair.cert_pem, pair.key_pem, host_pem.encode())
            tls = AutoMTLS(server=server, client=client, cert_der=pair.cert_der)
    sixth = spec.sixth_field
    if sixth == "auto":
        sixth = "certificate" if tls is not None else "absent"
    der = tls.cert_der if tls is not None else pair.cert_der if pair is not None else b""
    fields = {
        "absent": None,
        "empty": "",
        "certificate": base64.b64encode(der).decode("ascii").rstrip("="),
        "not-a-certificate": base64.b64encode(NOT_A_CERTIFICATE).decode("ascii").rstrip("="),
    }
    return tls, fields[sixth]
