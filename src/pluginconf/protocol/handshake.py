"""The handshake line a plugin prints on stdout: ``CORE|APP|NETWORK|ADDR|PROTOCOL[|CERT]``."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from pluginconf.protocol.constants import CORE_PROTOCOL_VERSION

NETWORKS = ("unix", "tcp")
PROTOCOL_GRPC = "grpc"


class HandshakeError(ValueError):
    """A handshake line that does not follow the format. ``line`` is the offending text."""

    def __init__(self, message: str, line: str) -> None:
        super().__init__(f"{message}; line was {line!r}")
        self.line = line


@dataclass(frozen=True)
class HandshakeLine:
    core_version: int
    app_version: int
    network: str
    address: str
    protocol: str = PROTOCOL_GRPC
    # DER bytes of the plugin's certificate (AutoMTLS), or None.
    server_cert_der: bytes | None = None

    def format(self) -> str:
        """The line as printed, without the trailing newline."""
        fields = [
            str(self.core_version),
            str(self.app_version),
            self.network,
            self.address,
            self.protocol,
        ]
        if self.server_cert_der is not None:
            # go-plugin sends the raw DER leaf, base64 standard alphabet without padding.
            fields.append(base64.b64encode(self.server_cert_der).decode("ascii").rstrip("="))
        return "|".join(fields)


def _decode_cert(text: str, line: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HandshakeError(
            f"field 6 (server certificate) is not base64 DER: {exc}", line
        ) from None


def _parse_int(name: str, text: str, line: str) -> int:
    # ASCII only: str.isdigit() also takes "²" (which int() refuses) and "٣" (which it reads).
    if not (text.isascii() and text.isdigit()):
        raise HandshakeError(f"{name} {text!r} is not a non-negative decimal integer", line)
    return int(text)


def parse_handshake(line: str) -> HandshakeLine:
    """Parse a handshake line (trailing newline allowed). Checks format, not policy.

    Whether the core and app versions are acceptable is the host's decision; this only
    rejects lines that are not handshakes at all, with a message naming the bad field.
    """
    raw = line
    line = line.rstrip("\r\n")
    parts = line.split("|")
    if len(parts) not in (5, 6):
        raise HandshakeError(
            f"expected 5 or 6 '|'-separated fields "
            f"(CORE|APP|NETWORK|ADDR|PROTOCOL[|CERT]), got {len(parts)}",
            raw,
        )
    core = _parse_int("core protocol version", parts[0], raw)
    app = _parse_int("app protocol version", parts[1], raw)
    network, address, protocol = parts[2], parts[3], parts[4]
    if network not in NETWORKS:
        raise HandshakeError(f"network {network!r} is not one of {', '.join(NETWORKS)}", raw)
    if not address:
        raise HandshakeError("address (field 4) is empty", raw)
    if not protocol:
        raise HandshakeError("protocol (field 5) is empty", raw)
    cert = _decode_cert(parts[5], raw) if len(parts) == 6 and parts[5] else None
    return HandshakeLine(core, app, network, address, protocol, cert)


__all__ = ["CORE_PROTOCOL_VERSION", "HandshakeError", "HandshakeLine", "parse_handshake"]
