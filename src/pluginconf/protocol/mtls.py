"""AutoMTLS certificates: self-signed, per process, as go-plugin makes them (but on P-256)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pluginconf.protocol.constants import TLS_SERVER_NAME


@dataclass(frozen=True)
class CertificatePair:
    cert_pem: bytes
    key_pem: bytes
    cert_der: bytes


CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}


def generate_certificate(organization: str = "pluginconf", curve: str = "P-256") -> CertificatePair:
    """A fresh self-signed CA certificate for ``localhost``, usable by client and server.

    go-plugin uses P-521. We default to P-256: grpcio's TLS stack cannot verify P-521
    signatures under TLS 1.3, while every stack accepts P-256.
    """
    if curve not in CURVES:
        raise ValueError(f"curve {curve!r} is not one of {', '.join(CURVES)}")
    key = ec.generate_private_key(CURVES[curve])
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, TLS_SERVER_NAME),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=30))
        .not_valid_after(now + datetime.timedelta(days=365 * 30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(TLS_SERVER_NAME)]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            False,
        )
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


def der_to_pem(der: bytes) -> bytes:
    """PEM-encode a DER certificate (the handshake carries DER, grpcio wants PEM)."""
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
