"""Plugin faults in serving: message limits, AutoMTLS, health, stdio and the broker.

Also the exit status, SIGINT and the host's exit.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import types
from typing import Any

from plugin_faults.common import Mutant, fault, patch

from pluginconf.plugin import ServeConfig, server
from pluginconf.plugin import broker as plugin_broker
from pluginconf.plugin.serving import mtls as sdk_mtls
from pluginconf.plugin.serving import process
from pluginconf.protocol import mtls
from pluginconf.units import MIB


@fault("receive-limit-1mib", "accepts messages of at most 1 MiB")
def _(m: Mutant) -> None:
    m.config = ServeConfig(grpc_options=(("grpc.max_receive_message_length", MIB),))


@fault("mtls-required", "refuses to start without PLUGIN_CLIENT_CERT: AutoMTLS only")
def _(m: Mutant) -> None:
    run = server.run

    def mtls_only(plugin: Any, config: Any = None, environ: Any = None) -> int:
        if not os.environ.get("PLUGIN_CLIENT_CERT"):
            sys.stderr.write("this plugin serves AutoMTLS only: PLUGIN_CLIENT_CERT is not set\n")
            return 1
        return run(plugin, config, environ)

    patch(server, "run", mtls_only)


@fault("mtls-ignored", "ignores PLUGIN_CLIENT_CERT and serves plaintext")
def _(m: Mutant) -> None:
    patch(process, "auto_mtls_from_env", lambda environ: None)


@fault("mtls-fixed-key", "keeps its key pair in a file and reuses it")
def _(m: Mutant) -> None:
    path = os.path.join(m.state_dir, "mutant-key.json")
    generate = mtls.generate_certificate

    def cached(organization: str = "pluginconf", curve: str = "P-256") -> mtls.CertificatePair:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                saved = json.load(fh)
            return mtls.CertificatePair(
                saved["cert"].encode(), saved["key"].encode(), bytes.fromhex(saved["der"])
            )
        pair = generate(organization, curve)
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(
                {
                    "cert": pair.cert_pem.decode(),
                    "key": pair.key_pem.decode(),
                    "der": pair.cert_der.hex(),
                },
                fh,
            )
        return pair

    patch(mtls, "generate_certificate", cached)


@fault("mtls-no-client-auth", "serves TLS without asking for a client certificate")
def _(m: Mutant) -> None:
    make = sdk_mtls.server_context

    def lax(cert_pem: bytes, key_pem: bytes, client_ca_pem: bytes) -> Any:
        import ssl

        ctx = make(cert_pem, key_pem, client_ca_pem)
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    patch(sdk_mtls, "server_context", lax)


@fault("mtls-tls-1.0", "accepts TLS 1.0 and 1.1 on AutoMTLS connections")
def _(m: Mutant) -> None:
    make = sdk_mtls.server_context

    def old(cert_pem: bytes, key_pem: bytes, client_ca_pem: bytes) -> Any:
        import ssl
        import warnings

        ctx = make(cert_pem, key_pem, client_ca_pem)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        return ctx

    patch(sdk_mtls, "server_context", old)


@fault("mtls-p521", "makes its AutoMTLS key on P-521, as go-plugin does")
def _(m: Mutant) -> None:
    make = mtls.generate_certificate
    patch(mtls, "generate_certificate", lambda *args: make("pluginconf", "P-521"))


@fault("mtls-bad-cert-ignored", "serves plaintext when PLUGIN_CLIENT_CERT is not a certificate")
def _(m: Mutant) -> None:
    auto = process.auto_mtls_from_env

    def lenient(environ: Any) -> Any:
        try:
            return auto(environ)
        except process.ServeConfigError:
            return None

    patch(process, "auto_mtls_from_env", lenient)


@fault("health-any-service", "answers SERVING for any service name")
def _(m: Mutant) -> None:
    from grpc_health.v1 import health_pb2

    class AnyService(process.HealthService):  # type: ignore[misc]
        async def Check(self, request: Any, context: Any) -> Any:
            return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    patch(process, "HealthService", AnyService)


@fault("exit-status-1", "exits with status 1 after a graceful stop")
def _(m: Mutant) -> None:
    run = server.run
    patch(
        server, "run", lambda plugin, config=None, environ=None: run(plugin, config, environ) or 1
    )


@fault("sigint-exits", "does not ignore SIGINT")
def _(m: Mutant) -> None:
    real = signal

    class Signals(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        @staticmethod
        def signal(sig: int, handler: Any) -> Any:
            if sig == real.SIGINT:
                return real.getsignal(sig)
            return real.signal(sig, handler)

    patch(process, "signal", Signals("signal"))


@fault("ignore-host-exit", "does not notice its host's exit")
def _(m: Mutant) -> None:
    async def never(self: Any, stop: asyncio.Event) -> None:
        await stop.wait()

    patch(process.PluginProcess, "watch_parent", never)


@fault("no-stdio", "does not serve plugin.GRPCStdio")
def _(m: Mutant) -> None:
    real = process.grpc_stdio_pb2_grpc
    stub = types.SimpleNamespace(**vars(real))
    stub.add_GRPCStdioServicer_to_server = lambda servicer, srv: None
    patch(process, "grpc_stdio_pb2_grpc", stub)


@fault("broker-ends-on-unusable", "ends the broker stream on an announcement it cannot use")
def _(m: Mutant) -> None:
    from pluginconf._grpc_compat import EOF

    async def read(self: Any, context: Any) -> None:
        while True:
            info = await context.read()
            if info is EOF or info.network not in ("unix", "tcp"):
                return
            async with self._arrived:
                self._known[info.service_id] = info
                self._arrived.notify_all()

    patch(plugin_broker.PluginBroker, "_read", read)
