"""What a host supports (HostInfo.capabilities), and what a case does when it lacks a feature.

A host declares its features in GetHostInfo. An adapter that sends no HostCapabilities is
taken to support everything, as adapters did before the message existed. A host without an
HTTP front (``http_base_url`` empty) has none, whatever it declares.

A case that needs a feature the host lacks cannot check what it is about: it is skipped with
the reason. Some features the SPEC requires of every host (restarts, health checks, the
circuit breaker, the HTTP front: ``required``); others only apply to a host that has them
(AutoMTLS, HostAPI). One case, host/capabilities/declared, fails under the ``pluginconf``
target for each required feature the host lacks, naming the requirements it serves; under a
go-plugin target (a host built on go-plugin's client, which has none of them) it is skipped.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from pluginconf.control import control_pb2


@dataclass(frozen=True)
class _Feature:
    field: str  # the HostCapabilities field
    what: str  # what the host does when it has it
    requirements: tuple[str, ...]  # the requirements the feature serves (prefixes end with -)
    policy: tuple[str, ...] = ()  # HostPolicy fields (in seconds, as cases give them)
    # Whether the SPEC requires the feature of every host, and the requirements that do.
    required_by: tuple[str, ...] = ()


class Capability(enum.Enum):
    RESTARTS = _Feature(
        "restarts",
        "restarts of crashed plugins",
        ("SV-8", "SV-9", "SV-10"),
        ("backoff_base_s", "backoff_max_s", "restart_limit", "restart_window_s"),
        required_by=("SV-8", "SV-9", "SV-10"),
    )
    HEALTH_CHECKS = _Feature(
        "health_checks",
        "health checks of active plugins",
        ("SV-7",),
        ("health_interval_s", "health_timeout_s"),
        required_by=("SV-7",),
    )
    CIRCUIT_BREAKER = _Feature(
        "circuit_breaker",
        "circuit breaker",
        ("SV-11", "SV-12", "SV-13", "SE-4"),
        ("breaker_threshold", "breaker_cooldown_s"),
        required_by=("SV-11", "SV-12", "SV-13"),
    )
    HTTP_FRONT = _Feature(
        "http_front",
        "HTTP front",
        ("SE-", "SH-"),
        ("max_request_body_bytes",),
        required_by=("SE-1",),
    )
    AUTO_MTLS = _Feature(
        "auto_mtls",
        "AutoMTLS",
        ("HS-5", "TLS-4", "TLS-5", "TLS-6", "TLS-8", "TLS-9", "TLS-10"),
        ("auto_mtls",),
    )
    HOST_API = _Feature("host_api", "HostAPI", ("HA-",))

    @property
    def field(self) -> str:
        return self.value.field

    @property
    def what(self) -> str:
        return self.value.what

    @property
    def policy(self) -> tuple[str, ...]:
        return self.value.policy

    @property
    def required(self) -> bool:
        """The SPEC requires it of every host (AutoMTLS and HostAPI are optional)."""
        return bool(self.value.required_by)

    @property
    def required_by(self) -> tuple[str, ...]:
        return self.value.required_by

    def serves(self, requirement: str) -> bool:
        return any(
            requirement.startswith(r) if r.endswith("-") else requirement == r
            for r in self.value.requirements
        )

    def among(self, requirements: Sequence[str]) -> tuple[str, ...]:
        """Which of ``requirements`` (a case's) this feature serves."""
        return tuple(r for r in requirements if self.serves(r))


# Why a go-plugin-based host lacks each feature: go-plugin's client has none of them but
# AutoMTLS (which a host may still leave off).
_GO_PLUGIN_HAS_NONE = {
    Capability.RESTARTS: "go-plugin does no supervision",
    Capability.HEALTH_CHECKS: "go-plugin never checks a running plugin's health",
    Capability.CIRCUIT_BREAKER: "go-plugin has no circuit breaker",
    Capability.HTTP_FRONT: "go-plugin has no HTTP front",
    Capability.HOST_API: "HostAPI is pluginconf's hooks protocol, not go-plugin's",
    Capability.AUTO_MTLS: "the application does not use go-plugin's AutoMTLS",
}


@dataclass(frozen=True)
class HostCapabilities:
    """The features of the host under test, as its adapter declared them."""

    declared: frozenset[Capability]
    # HostInfo.http_base_url is empty: there is no HTTP front, whatever was declared.
    no_front_url: bool = False

    @classmethod
    def of(cls, info: control_pb2.HostInfo) -> HostCapabilities:
        if info.HasField("capabilities"):
            declared = frozenset(c for c in Capability if getattr(info.capabilities, c.field))
        else:
            declared = frozenset(Capability)
        return cls(declared, not info.http_base_url.strip())

    def has(self, capability: Capability) -> bool:
        if capability is Capability.HTTP_FRONT and self.no_front_url:
            return False
        return capability in self.declared

    def why_missing(self, capability: Capability, go_plugin_based: bool) -> str:
        """The reason a case gives when it needs ``capability`` and the host lacks it."""
        if capability is Capability.HTTP_FRONT and self.no_front_url:
            said = "the host reports no HTTP front (HostInfo.http_base_url is empty)"
        else:
            said = f"the host declares no {capability.what} (HostCapabilities.{capability.field})"
        if go_plugin_based:
            return f"{said}: {_GO_PLUGIN_HAS_NONE[capability]}"
        return said
