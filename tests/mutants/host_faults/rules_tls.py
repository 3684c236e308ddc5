"""Host faults that break one requirement each (issue 15): handshake field 6 and AutoMTLS."""

from __future__ import annotations

import asyncio
import asyncio.unix_events
import base64
import binascii
import dataclasses
import datetime
import os
import ssl
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from host_faults.common import fault, patch

from pluginconf.host import handshake_checks, launcher
from pluginconf.host.errors import LaunchError
from pluginconf.host.launcher import LaunchedPlugin, LaunchSpec
from pluginconf.plugin.serving.tls_front import Splicer, load_key_pair
from pluginconf.protocol.handshake import HandshakeError
from pluginconf.protocol.mtls import CURVES, CertificatePair, der_to_pem

# -- handshake field 6, AutoMTLS, transport, stdio, Implemented, lifecycle (issue 15) --------


@fault(
    "six-fields-need-certificate",
    "reads a sixth field, even an empty one, as a certificate (HS-19)",
)
def _() -> None:
    parse = handshake_checks.parse_handshake

    def empty_is_certificate(line: str) -> Any:
        parsed = parse(line)
        parts = line.rstrip("\r\n").split("|")
        if len(parts) == 6 and not parts[5]:
            return dataclasses.replace(parsed, server_cert_der=b"")
        return parsed

    patch(handshake_checks, "parse_handshake", empty_is_certificate)


@fault(
    "certificate-padded-base64",
    "decodes field 6 as padded base64, failing for lengths that need padding (HS-19)",
)
def _() -> None:
    parse = handshake_checks.parse_handshake

    def padded_only(line: str) -> Any:
        parts = line.rstrip("\r\n").split("|")
        if len(parts) == 6 and parts[5]:
            try:
                base64.b64decode(parts[5], validate=True)
            except binascii.Error as exc:
                raise HandshakeError(f"field 6 is not base64: {exc}", line) from None
        return parse(line)

    patch(handshake_checks, "parse_handshake", padded_only)


def _host_certificate(client_auth: bool = True, backdate_s: int = 30, curve: str = "P-256") -> Any:
    """The host's AutoMTLS certificate, made with one of three slips."""
    key = ec.generate_private_key(CURVES[curve])
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    purposes = [ExtendedKeyUsageOID.SERVER_AUTH]
    if client_auth:
        purposes.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    usage = dict.fromkeys(
        (
            "content_commitment",
            "data_encipherment",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=backdate_s))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=True,
                key_agreement=True,
                key_cert_sign=True,
                **usage,
            ),
            True,
        )
        .add_extension(x509.ExtendedKeyUsage(purposes), False)
        .sign(key, hashes.SHA256())
    )
    return CertificatePair(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        cert_der=cert.public_bytes(serialization.Encoding.DER),
    )


@fault(
    "host-cert-server-auth-only",
    "makes its AutoMTLS certificate for serverAuth only, without clientAuth (TLS-4)",
)
def _() -> None:
    patch(launcher, "generate_certificate", lambda *_: _host_certificate(client_auth=False))


@fault("host-cert-not-backdated", "starts its certificate's validity now, not 30 s before (TLS-4)")
def _() -> None:
    patch(launcher, "generate_certificate", lambda *_: _host_certificate(backdate_s=0))


@fault("host-cert-p521", "makes its AutoMTLS certificate on P-521, as go-plugin does (TLS-5)")
def _() -> None:
    patch(launcher, "generate_certificate", lambda *_: _host_certificate(curve="P-521"))


@fault(
    "tls-1-0-allowed",
    "terminates AutoMTLS in Python's ssl module (for P-521 plugins) and lets TLS 1.0 and 1.1 "
    "through for old plugins (TLS-6)",
)
def _() -> None:
    connect = LaunchedPlugin.connect

    async def through_python_tls(self: LaunchedPlugin, options: Any = ()) -> Any:
        shook, pair = self.handshake, self.client_cert
        if shook is None or pair is None or not shook.server_cert_der:
            return await connect(self, options)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        load_key_pair(ctx, pair.cert_pem, pair.key_pem)
        ctx.load_verify_locations(cadata=der_to_pem(shook.server_cert_der).decode())
        ctx.set_alpn_protocols(["h2"])

        async def open_tls() -> Any:
            if shook.network == "unix":
                return await asyncio.open_unix_connection(
                    shook.address, ssl=ctx, server_hostname="localhost"
                )
            host, _, port = shook.address.rpartition(":")
            return await asyncio.open_connection(
                host, int(port), ssl=ctx, server_hostname="localhost"
            )

        splicer = Splicer(open_tls)
        path = os.path.join(self.socket_dir, "tls-dial.sock")
        splicer.server = await asyncio.start_unix_server(splicer.handle, path)
        self.handshake = dataclasses.replace(
            shook, network="unix", address=path, server_cert_der=None
        )
        try:
            return await connect(self, options)
        finally:
            self.handshake = shook

    patch(LaunchedPlugin, "connect", through_python_tls)


@fault(
    "mtls-plaintext-fallback",
    "connects in plaintext when AutoMTLS gets no usable certificate or TLS fails (TLS-10)",
)
def _() -> None:
    check, connect = LaunchedPlugin._check, LaunchedPlugin.connect

    def lenient(self: LaunchedPlugin, line: str) -> Any:
        try:
            return check(self, line)
        except LaunchError:
            if not self.spec.auto_mtls or line.count("|") < 4:
                raise
            self.client_cert = None  # plaintext from here on, the broker too
            return handshake_checks.parse_handshake("|".join(line.split("|")[:5]))

    async def fallback(self: LaunchedPlugin, options: Any = ()) -> Any:
        try:
            return await connect(self, options)
        except LaunchError:
            assert self.handshake is not None
            if self.handshake.server_cert_der is None:
                raise
            self.handshake = dataclasses.replace(self.handshake, server_cert_der=None)
            self.client_cert = None
            return await connect(self, options)

    patch(LaunchedPlugin, "_check", lenient)
    patch(LaunchedPlugin, "connect", fallback)


@fault(
    "unrequested-certificate-ignored",
    "ignores a certificate in field 6 when it did not ask for AutoMTLS (TLS-11)",
)
def _() -> None:
    check = handshake_checks.check_certificate

    def ignored(hs: Any, spec: LaunchSpec) -> None:
        if spec.auto_mtls:
            check(hs, spec)

    patch(handshake_checks, "check_certificate", ignored)
