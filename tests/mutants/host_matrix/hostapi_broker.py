"""The host mutants of the HostAPI and the broker."""

from __future__ import annotations

from host_matrix.mutant import HostMutant

MUTANTS = [
    # HostAPI and broker
    HostMutant("hostapi-kv-shared", ("host/hostapi/per-plugin",), violates=("HA-5",)),
    HostMutant("hostapi-kv-per-process", ("host/hostapi/survives-restart",), violates=("HA-6",)),
    HostMutant("hostapi-empty-value-absent", ("host/hostapi/kv-semantics",), violates=("HA-7",)),
    HostMutant(
        "hostapi-cas-empty-old-as-absent", ("host/hostapi/compare-and-set",), violates=("HA-8",)
    ),
    HostMutant(
        "hostapi-cas-not-atomic", ("host/hostapi/compare-and-set-atomic",), violates=("HA-8",)
    ),
    HostMutant("hostapi-key-limit-off-by-one", ("host/hostapi/sizes",), violates=("HA-9",)),
    HostMutant(
        "hostapi-errors-as-status",
        ("host/hostapi/sizes", "host/hostapi/app-errors"),
        violates=("HA-9", "HA-12"),
    ),
    HostMutant(
        "hostapi-log-unspecified-refused", ("host/hostapi/log-levels",), violates=("HA-10",)
    ),
    HostMutant("hostapi-config-after-answer", ("host/hostapi/configuration",), violates=("HA-11",)),
    HostMutant(
        "hostapi-closed-before-deactivate",
        ("host/hostapi/during-activate-and-deactivate",),
        violates=("HA-3",),
    ),
    HostMutant("hostapi-under-hook-lock", ("host/hostapi/during-hook",), violates=("HA-4",)),
    HostMutant(
        "hostapi-announced-late", ("host/hostapi/announced-before-activate",), violates=("HA-1",)
    ),
    HostMutant(
        "broker-stream-closed-after-activate", ("host/broker/one-stream",), violates=("BR-2",)
    ),
    HostMutant("broker-before-health", ("host/broker/stream-order",), violates=("BR-13",)),
    HostMutant("broker-knock-set", ("host/broker/announcements",), violates=("BR-8",)),
    HostMutant("broker-id-zero", ("host/broker/announcements",), violates=("BR-4",)),
    HostMutant("broker-all-interfaces", ("host/broker/announcements",), violates=("BR-3",)),
    HostMutant("broker-plaintext-under-mtls", ("host/broker/auto-mtls",), violates=("BR-7",)),
    HostMutant(
        "broker-ends-on-bad-conninfo", ("host/broker/unusable-conninfo",), violates=("BR-9",)
    ),
    HostMutant(
        "broker-servers-left-running",
        ("host/broker/servers-closed-on-stop", "host/broker/servers-closed-on-exit"),
        violates=("BR-10", "BR-12"),
    ),
    HostMutant(
        "broker-kept-after-crash", ("host/broker/servers-closed-on-exit",), violates=("BR-12",)
    ),
]
