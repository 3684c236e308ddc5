"""How a plugin serves: its handshake identity, transport choice and time bounds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pluginconf.protocol.constants import (
    DEFAULT_APP_PROTOCOL_VERSION,
    DEFAULT_MAGIC_COOKIE,
    MagicCookie,
)


@dataclass(frozen=True)
class ServeConfig:
    magic_cookie: MagicCookie = DEFAULT_MAGIC_COOKIE
    # App protocol versions this plugin speaks.
    protocol_versions: Sequence[int] = (DEFAULT_APP_PROTOCOL_VERSION,)
    # "unix" (go-plugin's default on POSIX) or "tcp" on 127.0.0.1.
    network: Literal["unix", "tcp"] = "unix"
    # How long in-flight calls may run on after Shutdown or SIGTERM.
    shutdown_grace_s: float = 2.0
    # How long a broker dial waits for the host to announce the service id.
    broker_dial_timeout_s: float = 5.0
    # How often the plugin checks that its host is still alive.
    parent_check_interval_s: float = 0.2
    # Captured stdio kept, per channel, for a GRPCStdio subscriber not connected yet.
    stdio_buffer_bytes: int = 1024 * 1024
    grpc_options: Sequence[tuple[str, int | str]] = field(default_factory=tuple)
    # Warn on stderr when something blocks the event loop for over 100 ms, naming the hook.
    # None: on when the environment has PLUGINCONF_SDK_DEBUG=1.
    debug: bool | None = None
