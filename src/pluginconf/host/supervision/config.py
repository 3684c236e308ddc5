"""How one plugin is supervised: deadlines, health checks, restart policy, stop sequence."""

from __future__ import annotations

from dataclasses import dataclass, field

from pluginconf.host.client import ClientConfig


@dataclass(frozen=True)
class SupervisorConfig:
    client: ClientConfig = field(default_factory=ClientConfig)
    health_interval_s: float = 5.0
    health_failures: int = 1
    backoff_base_s: float = 0.2
    backoff_max_s: float = 30.0
    # A plugin active this long without interruption starts its backoff afresh (SV-8).
    stable_after_s: float = 60.0
    restart_limit: int = 3
    restart_window_s: float = 3600.0
    breaker_threshold: int = 3
    breaker_cooldown_s: float = 30.0
    deactivate_timeout_s: float = 10.0
    shutdown_timeout_s: float = 2.0
    exit_grace_s: float = 2.0
    term_grace_s: float = 2.0
    # The request body limit of SE-7 for this plugin; None: the HTTP front's own.
    max_body_bytes: int | None = None
