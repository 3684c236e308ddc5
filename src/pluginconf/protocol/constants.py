"""Environment variable names, versions and limits of the go-plugin gRPC protocol."""

from __future__ import annotations

from dataclasses import dataclass

# go-plugin's core protocol version: the first handshake field.
CORE_PROTOCOL_VERSION = 1
DEFAULT_APP_PROTOCOL_VERSION = 1

ENV_PROTOCOL_VERSIONS = "PLUGIN_PROTOCOL_VERSIONS"
ENV_MIN_PORT = "PLUGIN_MIN_PORT"
ENV_MAX_PORT = "PLUGIN_MAX_PORT"
ENV_UNIX_SOCKET_DIR = "PLUGIN_UNIX_SOCKET_DIR"
ENV_CLIENT_CERT = "PLUGIN_CLIENT_CERT"

# The health service name go-plugin's Ping checks.
HEALTH_SERVICE_NAME = "plugin"

# gRPC's default maximum received message size; no pluginconf message may exceed it.
GRPC_MAX_MESSAGE_BYTES = 4 * 1024 * 1024

# Body pieces the SDK sends in ServeHTTP responses are at most this large.
HTTP_CHUNK_BYTES = 64 * 1024

# The TLS server name both sides use with AutoMTLS, as go-plugin does.
TLS_SERVER_NAME = "localhost"


@dataclass(frozen=True)
class MagicCookie:
    """The application's cookie: a plugin refuses to start unless the host set KEY=VALUE."""

    key: str
    value: str

    @classmethod
    def parse(cls, text: str) -> MagicCookie:
        """Parse ``KEY=VALUE``; raise ValueError naming what is wrong."""
        key, sep, value = text.partition("=")
        if not sep or not key or not value:
            raise ValueError(
                f"magic cookie {text!r} is not KEY=VALUE with both parts non-empty, "
                "e.g. PLUGINCONF_MAGIC_COOKIE=pluginconf"
            )
        return cls(key, value)

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


DEFAULT_MAGIC_COOKIE = MagicCookie("PLUGINCONF_MAGIC_COOKIE", "pluginconf")

# SE-8 (RFC 9110 §7.6.1): fields a host never forwards, in either direction (lower case).
HOP_BY_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
