"""Plugin faults that break one requirement each (issue 15): services.

Handshake fields, tcp, certificates, unserved services, Shutdown, the broker and AppError.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
from plugin_faults.common import Fault, Mutant, fault, patch

from pluginconf.plugin import AppError, Plugin, ServeConfig, hooks
from pluginconf.plugin import broker as plugin_broker
from pluginconf.plugin.serving import listener, process, services
from pluginconf.protocol import mtls
from pluginconf.reference.plugin import ReferencePlugin

# -- issue 15, item 2: plugin requirements that no mutant violated ---------------------------


class _Abort(Exception):
    pass


@fault("handshake-app-zero-padded", "writes its app version zero-padded ('01') in the handshake")
def _(m: Mutant) -> None:
    original = process.HandshakeLine.format

    def padded(self: Any) -> str:
        fields = original(self).split("|")
        fields[1] = f"{int(fields[1]):02d}"
        return "|".join(fields)

    patch(process.HandshakeLine, "format", padded)


@fault("tcp-wildcard", "listens on tcp on every interface (0.0.0.0), announcing 127.0.0.1")
def _(m: Mutant) -> None:
    m.config = ServeConfig(network="tcp")
    prepare = listener.Listener.prepare

    class Wildcard:
        def __init__(self, real: Any) -> None:
            self._real = real

        def __getattr__(self, name: str) -> Any:
            return getattr(self._real, name)

        def add_insecure_port(self, address: str) -> int:
            return int(self._real.add_insecure_port(address.replace("127.0.0.1:", "0.0.0.0:")))

    patch(listener.Listener, "prepare", lambda self, srv: prepare(self, Wildcard(srv)))


def _recertify(change: Callable[[Any, Any], Any]) -> Fault:
    """A fault that re-signs each AutoMTLS certificate after ``change(builder, cert)``."""

    def apply(m: Mutant) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization

        make = mtls.generate_certificate

        def remade(*args: Any, **kwargs: Any) -> Any:
            pair = make(*args, **kwargs)
            cert = x509.load_pem_x509_certificate(pair.cert_pem)
            key = serialization.load_pem_private_key(pair.key_pem, None)
            builder = change(x509.CertificateBuilder(), cert)
            signed = builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]
            return mtls.CertificatePair(
                cert_pem=signed.public_bytes(serialization.Encoding.PEM),
                key_pem=pair.key_pem,
                cert_der=signed.public_bytes(serialization.Encoding.DER),
            )

        patch(mtls, "generate_certificate", remade)

    return apply


def _copy(builder: Any, cert: Any, not_before: Any = None, skip: type | None = None) -> Any:
    builder = (
        builder.subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(cert.public_key())
        .serial_number(cert.serial_number)
        .not_valid_before(not_before or cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for ext in cert.extensions:
        if skip is None or not isinstance(ext.value, skip):
            builder = builder.add_extension(ext.value, ext.critical)
    return builder


def _server_auth_only(builder: Any, cert: Any) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    builder = _copy(builder, cert, skip=x509.ExtendedKeyUsage)
    return builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)


def _valid_from_now(builder: Any, cert: Any) -> Any:
    import datetime

    return _copy(builder, cert, not_before=datetime.datetime.now(datetime.UTC))


fault(
    "mtls-cert-server-auth-only",
    "makes its AutoMTLS certificate for serverAuth only, without the clientAuth EKU",
)(_recertify(_server_auth_only))
fault(
    "mtls-cert-not-before-now",
    "makes its AutoMTLS certificate valid from the moment it is made, not 30 s before",
)(_recertify(_valid_from_now))


@fault("controller-unserved", "does not register plugin.GRPCController (it stops on signals only)")
def _(m: Mutant) -> None:
    patch(process.grpc_controller_pb2_grpc, "add_GRPCControllerServicer_to_server", _unregistered)


@fault("health-unserved", "does not register grpc.health.v1.Health")
def _(m: Mutant) -> None:
    patch(process.health_pb2_grpc, "add_HealthServicer_to_server", _unregistered)


@fault("broker-unserved", "does not register plugin.GRPCBroker, having no brokered service")
def _(m: Mutant) -> None:
    patch(process.grpc_broker_pb2_grpc, "add_GRPCBrokerServicer_to_server", _unregistered)


def _unregistered(servicer: Any, srv: Any) -> None:
    return None


@fault("shutdown-returns-none", "its Shutdown handler stops the server but returns no message")
def _(m: Mutant) -> None:
    async def forgetful(self: Any, request: Any, context: Any) -> Any:
        self._on_shutdown()
        await asyncio.sleep(0)
        return None  # the bug: no Empty()

    patch(services.ControllerService, "Shutdown", forgetful)


@fault(
    "broker-drops-early-announcements",
    "hands a ConnInfo only to a dial already waiting for it and drops it otherwise",
)
def _(m: Mutant) -> None:
    waiting: set[int] = set()

    class OnlyAwaited(dict):  # type: ignore[type-arg]
        def __setitem__(self, key: int, value: Any) -> None:
            if key in waiting:
                super().__setitem__(key, value)

    init = plugin_broker.PluginBroker.__init__
    dial = plugin_broker.PluginBroker.dial

    def init_dropping(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._known = OnlyAwaited()

    async def dial_waiting(self: Any, service_id: int) -> Any:
        waiting.add(service_id)
        try:
            return await dial(self, service_id)
        finally:
            waiting.discard(service_id)

    patch(plugin_broker.PluginBroker, "__init__", init_dropping)
    patch(plugin_broker.PluginBroker, "dial", dial_waiting)


@fault(
    "unimplemented-answers-ok",
    "lacks MessageHasBeenPosted and answers it with OK and an empty response",
)
def _(m: Mutant) -> None:
    class WithoutPosts(ReferencePlugin):
        message_has_been_posted = Plugin.message_has_been_posted  # type: ignore[assignment]

    m.plugin = WithoutPosts()

    async def lenient(self: Any, rpc: str, context: Any) -> None:
        return None  # the handler runs and fails; the notification hook swallows it

    patch(hooks.HooksService, "_unimplemented", lenient)


@fault("app-error-camel-case", "sends AppError codes in CamelCase ('UnknownCommand')")
def _(m: Mutant) -> None:
    from pluginconf.v1 import common_pb2

    def camel(self: Any) -> Any:
        code = "".join(part.capitalize() for part in self.code.split("_"))
        return common_pb2.AppError(code=code, message=self.message)

    patch(AppError, "to_proto", camel)


@fault("app-error-as-status", "reports an AppError as status FAILED_PRECONDITION")
def _(m: Mutant) -> None:
    call = hooks.HooksService._call

    async def as_status(self: Any, rpc: str, handler: Any, make: Any, context: Any) -> Any:
        def abort(error: AppError) -> Any:
            raise _Abort(error)

        try:
            return await call(self, rpc, handler, abort, context)
        except _Abort as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc.args[0]))

    patch(hooks.HooksService, "_call", as_status)
