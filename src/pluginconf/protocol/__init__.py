"""Wire-level facts shared by plugins and hosts: environment, handshake, versions, certificates."""

from pluginconf.protocol.constants import (
    CORE_PROTOCOL_VERSION,
    DEFAULT_APP_PROTOCOL_VERSION,
    DEFAULT_MAGIC_COOKIE,
    GRPC_MAX_MESSAGE_BYTES,
    HEALTH_SERVICE_NAME,
    MagicCookie,
)
from pluginconf.protocol.handshake import (
    HandshakeError,
    HandshakeLine,
    parse_handshake,
)
from pluginconf.protocol.versions import negotiate_version, parse_protocol_versions

__all__ = [
    "CORE_PROTOCOL_VERSION",
    "DEFAULT_APP_PROTOCOL_VERSION",
    "DEFAULT_MAGIC_COOKIE",
    "GRPC_MAX_MESSAGE_BYTES",
    "HEALTH_SERVICE_NAME",
    "HandshakeError",
    "HandshakeLine",
    "MagicCookie",
    "negotiate_version",
    "parse_handshake",
    "parse_protocol_versions",
]
