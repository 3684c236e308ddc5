"""Handshake line format, version negotiation, cookies and AutoMTLS certificates."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from pluginconf.protocol import (
    HandshakeError,
    HandshakeLine,
    MagicCookie,
    negotiate_version,
    parse_handshake,
    parse_protocol_versions,
)
from pluginconf.protocol.mtls import generate_certificate


def test_format_matches_go_plugin_layout():
    line = HandshakeLine(1, 2, "unix", "/tmp/p/plugin.sock").format()
    assert line == "1|2|unix|/tmp/p/plugin.sock|grpc"


def test_certificate_field_is_unpadded_standard_base64_of_der():
    der = bytes(range(256)) + b"\xff"  # 257 bytes: padding would be needed
    line = HandshakeLine(1, 1, "tcp", "127.0.0.1:1234", server_cert_der=der).format()
    field6 = line.split("|")[5]
    assert "=" not in field6
    assert field6 == base64.b64encode(der).decode().rstrip("=")
    assert parse_handshake(line).server_cert_der == der


@pytest.mark.parametrize(
    "line",
    ["1|1|unix|/s|grpc", "1|1|unix|/s|grpc\n", "1|5|tcp|127.0.0.1:1|grpc|", "1|1|unix|/s|netrpc"],
)
def test_parse_accepts_well_formed_lines(line):
    hs = parse_handshake(line)
    assert hs.core_version == 1
    assert hs.address


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("", "expected 5 or 6"),
        ("hello world", "expected 5 or 6"),
        ("1|1|unix|/s", "expected 5 or 6"),
        ("1|1|unix|/s|grpc|cert|extra", "expected 5 or 6"),
        ("x|1|unix|/s|grpc", "core protocol version"),
        ("1|-1|unix|/s|grpc", "app protocol version"),
        ("1|1|udp|/s|grpc", "network 'udp'"),
        ("1|1|unix||grpc", "address"),
        ("1|1|unix|/s|", "protocol"),
        ("1|1|unix|/s|grpc|not*base64", "field 6"),
    ],
)
def test_parse_rejects_malformed_lines_naming_the_field(line, fragment):
    with pytest.raises(HandshakeError) as info:
        parse_handshake(line)
    assert fragment in str(info.value)
    assert info.value.line == line


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        ([1], [1], (1, True)),
        ([1, 2, 3], [2, 3], (3, True)),
        ([1, 2], [2, 5], (2, True)),
        ([2, 3], [1], (2, False)),  # none common: our lowest, for the host to report
        ([4, 2, 3], [], (2, False)),
    ],
)
def test_negotiation_picks_highest_common_else_lowest(ours, theirs, expected):
    assert negotiate_version(ours, theirs) == expected


def test_protocol_versions_skip_non_integers():
    assert parse_protocol_versions("1, 2,x,,3") == ([1, 2, 3], ["x"])


def test_magic_cookie_parse_errors_say_the_expected_form():
    assert MagicCookie.parse("K=V=W") == MagicCookie("K", "V=W")
    for bad in ("K", "=V", "K="):
        with pytest.raises(ValueError, match="KEY=VALUE"):
            MagicCookie.parse(bad)


def test_certificate_is_p256_ca_for_localhost_with_both_usages():
    pair = generate_certificate()
    cert = x509.load_der_x509_certificate(pair.cert_der)
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp256r1"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    assert generate_certificate().cert_der != pair.cert_der  # fresh per call
