"""AutoMTLS from the environment: the TLS contexts and certificate a plugin serves with."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from pluginconf.plugin.errors import ServeConfigError
from pluginconf.plugin.serving.tls_front import client_context, server_context
from pluginconf.protocol.constants import ENV_CLIENT_CERT


@dataclass(frozen=True)
class AutoMTLS:
    server: ssl.SSLContext  # for the host's connections to us
    client: ssl.SSLContext  # for our broker dials to the host
    cert_der: bytes  # handshake field 6


def auto_mtls_from_env(environ: Mapping[str, str]) -> AutoMTLS | None:
    """AutoMTLS for the host's PLUGIN_CLIENT_CERT, with a fresh key pair; None when the host
    asks for plaintext. Raises ServeConfigError when the variable holds no PEM certificate."""
    client_pem = environ.get(ENV_CLIENT_CERT, "")
    if not client_pem:
        return None
    # Imported here: cryptography costs a plugin without AutoMTLS ~45 ms of every start.
    from cryptography import x509

    from pluginconf.protocol import mtls

    try:
        x509.load_pem_x509_certificate(client_pem.encode())
    except ValueError as exc:
        raise ServeConfigError(
            f"{ENV_CLIENT_CERT} is set but is not a PEM certificate ({exc}); the host must "
            "put its client certificate there, PEM-encoded, for AutoMTLS"
        ) from None
    pair = mtls.generate_certificate()
    host_pem = client_pem.encode()
    return AutoMTLS(
        server=server_context(pair.cert_pem, pair.key_pem, host_pem),
        client=client_context(pair.cert_pem, pair.key_pem, host_pem),
        cert_der=pair.cert_der,
    )
