"""AutoMTLS: the plugin's certificate, and whom it lets in."""

from __future__ import annotations

import datetime
import ssl
import warnings

import grpc
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pluginconf.host.client import health_problem
from pluginconf.host.errors import LaunchError
from pluginconf.plugin.serving.tls_front import load_key_pair
from pluginconf.protocol.constants import ENV_CLIENT_CERT, HEALTH_SERVICE_NAME
from pluginconf.protocol.mtls import CertificatePair, generate_certificate
from pluginconf.runner import Level, Profile, case, check, expect, fail, skip
from pluginconf.runner.plugin.fresh import FreshPlugin
from pluginconf.runner.plugin.target import PluginTarget
from pluginconf.runner.plugin.tls import tls_handshake

from .._helpers import handshake_bytes, refusal_problems, show
from ._helpers import encoding_problems


async def _mtls_plugin(t: PluginTarget, connect: bool = True) -> FreshPlugin:
    t.needs_auto_mtls()
    try:
        return await t.launch(auto_mtls=True, connect=connect)
    except LaunchError as exc:
        fail(f"started with PLUGIN_CLIENT_CERT set (AutoMTLS), the plugin was rejected:\n{exc}")


async def _check(channel: grpc.aio.Channel) -> str | None:
    """None when a health check through ``channel`` answers, else how it failed."""
    try:
        await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=HEALTH_SERVICE_NAME), timeout=3
        )
    except grpc.aio.AioRpcError as exc:
        return f"{exc.code().name}: {exc.details()}"
    return None


def _certificate_problems(cert: x509.Certificate, started: datetime.datetime) -> list[str]:
    """TLS-4: what an AutoMTLS certificate must carry."""
    problems = []
    ext = cert.extensions
    try:
        names = ext.get_extension_for_class(x509.SubjectAlternativeName).value
        if "localhost" not in names.get_values_for_type(x509.DNSName):
            problems.append("subjectAltName lacks DNS:localhost")
    except x509.ExtensionNotFound:
        problems.append("no subjectAltName")
    try:
        if not ext.get_extension_for_class(x509.BasicConstraints).value.ca:
            problems.append("basicConstraints is not CA:true")
    except x509.ExtensionNotFound:
        problems.append("no basicConstraints")
    try:
        usage = ext.get_extension_for_class(x509.KeyUsage).value
        if not (usage.digital_signature and usage.key_cert_sign):
            problems.append("keyUsage lacks digitalSignature or keyCertSign")
    except x509.ExtensionNotFound:
        problems.append("no keyUsage")
    try:
        eku = ext.get_extension_for_class(x509.ExtendedKeyUsage).value
        for oid, name in (
            (ExtendedKeyUsageOID.SERVER_AUTH, "serverAuth"),
            (ExtendedKeyUsageOID.CLIENT_AUTH, "clientAuth"),
        ):
            if oid not in eku:
                problems.append(f"extendedKeyUsage lacks {name}")
    except x509.ExtensionNotFound:
        problems.append("no extendedKeyUsage")
    # 30 s before generation; 5 s of slack for the process's start-up.
    if cert.not_valid_before_utc > started - datetime.timedelta(seconds=25):
        problems.append(
            f"notBefore {cert.not_valid_before_utc:%H:%M:%S} is not 30 s before the "
            f"process started ({started:%H:%M:%S})"
        )
    if cert.not_valid_after_utc < started + datetime.timedelta(days=1):
        problems.append(f"notAfter {cert.not_valid_after_utc} leaves less than a day")
    return problems


@case(
    "plugin/mtls/handshake-certificate",
    requirements=["HS-14", "TLS-1", "TLS-4"],
    profile=Profile.TRANSPORT,
)
async def handshake_certificate(t: PluginTarget) -> None:
    """
    Purpose: With AutoMTLS the plugin returns a certificate a go-plugin host can use, and
      serves TLS with it.
    Procedure: Start the plugin with PLUGIN_CLIENT_CERT set to the suite's certificate; read
      the handshake's sixth field; connect with TLS, presenting the suite's certificate and
      trusting only the plugin's.
    Asserts: Field 6 is unpadded standard base64 of a DER certificate (HS-14) with SAN
      localhost, CA:true, keyUsage digitalSignature and keyCertSign, extendedKeyUsage
      serverAuth and clientAuth, valid from 30 s before it was made for more than a day
      (TLS-4); a health check over TLS answers SERVING (TLS-1).
    """
    started = datetime.datetime.now(datetime.UTC)
    fresh = await _mtls_plugin(t, connect=False)
    line = handshake_bytes(fresh.launched).decode("utf-8", "replace").rstrip("\r\n")
    fields = line.split("|")
    field = fields[5] if len(fields) > 5 else ""
    encoding, cert = encoding_problems(field)
    check(
        not encoding,
        f"handshake {show(line, 120)}:\n" + "\n".join(encoding),
        requirement="HS-14",
    )
    if cert is not None:
        content = _certificate_problems(cert, started)
        check(
            not content,
            f"the certificate of handshake {show(line, 120)}:\n" + "\n".join(content),
            requirement="TLS-4",
        )
    await fresh.connect()
    problem = await health_problem(fresh.health, 5.0)
    expect(problem is None, f"over TLS: {problem}", requirement="TLS-1")


@case("plugin/mtls/fresh-key-per-process", requirements=["TLS-3"], profile=Profile.TRANSPORT)
async def fresh_key_per_process(t: PluginTarget) -> None:
    """
    Purpose: Each plugin process makes its own key pair, never reusing one.
    Procedure: Start the plugin twice with AutoMTLS.
    Asserts: The two certificates, and their public keys, differ.
    """
    first = await _mtls_plugin(t, connect=False)
    second = await _mtls_plugin(t, connect=False)
    a, b = first.handshake.server_cert_der, second.handshake.server_cert_der
    expect(a and b, "a process presented no certificate")
    assert a is not None  # for the type checker
    assert b is not None
    key_a = x509.load_der_x509_certificate(a).public_key()
    key_b = x509.load_der_x509_certificate(b).public_key()
    expect(a != b, "two processes presented the same certificate")
    expect(key_a != key_b, "two processes used the same key pair")


@case("plugin/mtls/refuses-plaintext", requirements=["TLS-1"], profile=Profile.TRANSPORT)
async def refuses_plaintext(t: PluginTarget) -> None:
    """
    Purpose: With AutoMTLS the plugin serves nothing without TLS.
    Procedure: Start the plugin with AutoMTLS and make a plaintext health check at its
      address.
    Asserts: The check fails.
    """
    fresh = await _mtls_plugin(t, connect=False)
    channel = grpc.aio.insecure_channel(fresh.launched.target())
    try:
        failure = await _check(channel)
    finally:
        await channel.close(None)
    expect(failure is not None, "a plaintext health check was answered despite AutoMTLS")


@case(
    "plugin/mtls/refuses-client-without-certificate",
    requirements=["TLS-7"],
    profile=Profile.TRANSPORT,
)
async def refuses_client_without_certificate(t: PluginTarget) -> None:
    """
    Purpose: Only the host that started the plugin can call it.
    Procedure: Start the plugin with AutoMTLS; connect with TLS trusting its certificate but
      presenting none, and make a health check.
    Asserts: The check fails: the TLS handshake requires a client certificate.
    """
    fresh = await _mtls_plugin(t, connect=False)
    tls = await fresh.connect_tls(None)
    try:
        failure = await _check(tls.channel)
    finally:
        await tls.close()
    expect(failure is not None, "a client without a certificate was served")


@case(
    "plugin/mtls/refuses-unknown-client-certificate",
    requirements=["TLS-7"],
    profile=Profile.TRANSPORT,
)
async def refuses_unknown_client_certificate(t: PluginTarget) -> None:
    """
    Purpose: The only client certificate the plugin accepts is the one in PLUGIN_CLIENT_CERT.
    Procedure: Start the plugin with AutoMTLS; connect presenting another self-signed
      certificate made the same way, and make a health check.
    Asserts: The check fails.
    """
    fresh = await _mtls_plugin(t, connect=False)
    tls = await fresh.connect_tls(generate_certificate("someone-else"))
    try:
        failure = await _check(tls.channel)
    finally:
        await tls.close()
    expect(failure is not None, "a client with an unrelated certificate was served")


@case(
    "plugin/mtls/unusable-client-certificate",
    requirements=["TLS-2"],
    profile=Profile.TRANSPORT,
)
async def unusable_client_certificate(t: PluginTarget) -> None:
    """
    Purpose: A plugin that cannot do the AutoMTLS it was asked for does not serve without it.
    Procedure: Start the plugin with PLUGIN_CLIENT_CERT set to text that is no certificate;
      wait (10 s at most) for it to exit.
    Asserts: It exits with status 1, with a message on stderr and nothing on stdout.
    """
    t.needs_auto_mtls()
    fresh = await t.spawn(env={ENV_CLIENT_CERT: "not a certificate"})
    problems = await refusal_problems(fresh, status=1)
    expect(not problems, "with PLUGIN_CLIENT_CERT='not a certificate': " + "; ".join(problems))


@case(
    "plugin/mtls/p256-key",
    requirements=["TLS-5"],
    profile=Profile.TRANSPORT,
    level=Level.SHOULD,
)
async def p256_key(t: PluginTarget) -> None:
    """
    Purpose: The plugin's AutoMTLS key is one every TLS stack verifies: grpcio-based hosts
      cannot verify P-521, go-plugin's curve.
    Procedure: Start the plugin with AutoMTLS and read the certificate from its handshake.
    Asserts: Its key is ECDSA on curve P-256.
    """
    fresh = await _mtls_plugin(t, connect=False)
    der = fresh.handshake.server_cert_der
    expect(der, "the handshake carries no certificate")
    assert der is not None  # for the type checker
    key = x509.load_der_x509_certificate(der).public_key()
    curve = key.curve.name if isinstance(key, ec.EllipticCurvePublicKey) else type(key).__name__
    expect(curve == "secp256r1", f"the plugin's key is {curve}, not P-256 (secp256r1)")


def _tls_1_1_client(client: CertificatePair) -> ssl.SSLContext | None:
    """A client context offering TLS 1.1 at most, or None when this ssl library cannot."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        except (ValueError, ssl.SSLError):
            return None
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    load_key_pair(ctx, client.cert_pem, client.key_pem)
    return ctx


@case("plugin/mtls/tls-1.2-or-later", requirements=["TLS-6"], profile=Profile.TRANSPORT)
async def tls_12_or_later(t: PluginTarget) -> None:
    """
    Purpose: AutoMTLS connections use TLS 1.2 or later.
    Procedure: Start the plugin with AutoMTLS; connect offering TLS 1.0 and 1.1 only, with
      the host's certificate.
    Asserts: The TLS handshake fails.
    """
    fresh = await _mtls_plugin(t, connect=False)
    assert fresh.launched.client_cert is not None
    ctx = _tls_1_1_client(fresh.launched.client_cert)
    if ctx is None:
        skip("this machine's ssl library cannot offer TLS 1.1, so it cannot test refusing it")
    try:
        version = await tls_handshake(fresh.handshake, ctx, timeout_s=10)
    except ssl.SSLError as exc:
        if "NO_PROTOCOLS_AVAILABLE" in str(exc).upper():
            skip(f"this machine's ssl library refused to offer TLS 1.1: {exc}")
        return  # refused, as it must be
    except (OSError, TimeoutError):
        return
    fail(f"the plugin completed a {version} handshake; AutoMTLS needs TLS 1.2 or later")
