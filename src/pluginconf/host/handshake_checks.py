"""What a host accepts in a plugin's handshake line (HS-18..HS-21, TLS-10, TLS-11).

The checks are pure: a refused line raises HandshakeRefused, naming the LaunchError class
that reports it; the launcher adds the process's exit status and stderr.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from cryptography import x509

from pluginconf.host import errors
from pluginconf.protocol.constants import CORE_PROTOCOL_VERSION
from pluginconf.protocol.handshake import NETWORKS, HandshakeError, HandshakeLine, parse_handshake

if TYPE_CHECKING:
    from pluginconf.host.launcher import LaunchSpec


class HandshakeRefused(errors.HostError):
    """A handshake line the host refuses, and the LaunchError class that reports why."""

    def __init__(self, error_class: type[errors.LaunchError], message: str) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message


def check_handshake(line: str, spec: LaunchSpec) -> HandshakeLine:
    """The parsed line, if the host launched with ``spec`` accepts it."""
    parts = line.split("|")
    if len(parts) >= 3 and parts[2] not in NETWORKS:
        raise HandshakeRefused(
            errors.UnknownNetwork,
            f"handshake network {parts[2]!r} is not one of {', '.join(NETWORKS)}",
        )
    try:
        hs = parse_handshake(line)
    except HandshakeError as exc:
        problem = str(exc).split("; line was")[0]
        if len(parts) == 6 and _parses("|".join(parts[:5])):
            # Only field 6 is wrong: that is the certificate, a TLS matter (TLS-10).
            raise HandshakeRefused(errors.TLSError, problem) from None
        raise HandshakeRefused(
            errors.MalformedHandshake,
            f"malformed handshake: {problem}; expected "
            "CORE|APP|NETWORK|ADDR|PROTOCOL[|CERT], e.g. 1|1|unix|/tmp/x/plugin.sock|grpc",
        ) from None
    if hs.core_version != CORE_PROTOCOL_VERSION:
        raise HandshakeRefused(
            errors.CoreVersionMismatch,
            f"core protocol version {hs.core_version}, expected {CORE_PROTOCOL_VERSION}: "
            "the plugin was built for an incompatible plugin system",
        )
    if hs.app_version not in spec.protocol_versions:
        offered = ", ".join(map(str, spec.protocol_versions))
        raise HandshakeRefused(
            errors.AppVersionUnsupported,
            f"app protocol version {hs.app_version} is not one this host supports "
            f"({offered}); rebuild the plugin or the host for a common version",
        )
    if hs.protocol != spec.protocol:
        raise HandshakeRefused(
            errors.UnsupportedProtocol,
            f"protocol {hs.protocol!r} is not supported; only {spec.protocol!r} is",
        )
    if hs.network == "tcp" and not _is_loopback(hs.address):
        raise HandshakeRefused(
            errors.MalformedHandshake,
            f"tcp address {hs.address!r} is not a loopback IP literal (127.0.0.0/8 or ::1); "
            "plugins must listen on loopback only",
        )
    check_certificate(hs, spec)
    return hs


def check_certificate(hs: HandshakeLine, spec: LaunchSpec) -> None:
    """Field 6 against what the host asked for (TLS-10, TLS-11)."""
    if not spec.auto_mtls and hs.server_cert_der is not None:
        raise HandshakeRefused(
            errors.TLSError,
            "the handshake carries a server certificate (field 6) but the host did not "
            "ask for AutoMTLS (PLUGIN_CLIENT_CERT unset)",
        )
    if spec.auto_mtls and hs.server_cert_der is None:
        raise HandshakeRefused(
            errors.TLSError,
            "AutoMTLS was requested (PLUGIN_CLIENT_CERT set) but the handshake has no "
            "server certificate in field 6",
        )
    if hs.server_cert_der is not None:
        try:
            x509.load_der_x509_certificate(hs.server_cert_der)
        except ValueError as exc:
            raise HandshakeRefused(
                errors.TLSError, f"field 6 is base64 but not a DER certificate: {exc}"
            ) from None


def _parses(line: str) -> bool:
    try:
        parse_handshake(line)
    except HandshakeError:
        return False
    return True


def _is_loopback(address: str) -> bool:
    host = address.rpartition(":")[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
