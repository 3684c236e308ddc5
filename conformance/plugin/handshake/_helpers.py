"""Helpers the handshake cases share."""

from __future__ import annotations

import base64
import binascii
import re

from cryptography import x509

STD_B64 = re.compile(r"^[A-Za-z0-9+/]*$")


def encoding_problems(field: str) -> tuple[list[str], x509.Certificate | None]:
    """HS-14: field 6 is the DER certificate in unpadded standard base64."""
    if not field:
        return ["field 6 (the certificate) is empty"], None
    problems = []
    if "=" in field:
        problems.append("field 6 has '=' padding; go-plugin sends unpadded base64")
    if not STD_B64.match(field.rstrip("=")):
        problems.append("field 6 is not standard-alphabet base64")
    try:
        der = base64.b64decode(field.rstrip("=") + "=" * (-len(field.rstrip("=")) % 4))
        return problems, x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError) as exc:
        return [*problems, f"field 6 is not a DER certificate: {exc}"], None
