"""The host mutants of launching, health and activation, hooks and filters."""

from __future__ import annotations

from host_matrix.mutant import SHORT_START, HostMutant

MUTANTS = [
    # launching
    HostMutant("inherited-env-wins", ("host/launch/environment",), violates=("HS-6",)),
    HostMutant("multiplex-passed", ("host/launch/no-inherited-secrets",), violates=("HS-7",)),
    HostMutant("client-cert-passed", ("host/launch/no-inherited-secrets",), violates=("HS-23",)),
    HostMutant(
        "environment-passed-through",
        ("host/launch/socket-dir", "host/launch/no-inherited-secrets"),
        violates=("HS-4", "HS-7", "HS-23"),
    ),
    HostMutant("shared-socket-dir", ("host/launch/socket-dir",), violates=("HS-4",)),
    HostMutant("no-process-group", ("host/launch/process-group",), violates=("HS-8",)),
    HostMutant(
        "generic-error-kind",
        (
            "host/launch/refuses/*",
            "host/launch/exited-before-handshake",
            "host/health/never-serving",
        ),
        violates=("HS-25", "HL-6"),
    ),
    HostMutant(
        "stderr-tail-one-line", ("host/launch/exited-before-handshake",), violates=("HS-26",)
    ),
    HostMutant("error-without-line", ("host/launch/refuses/core-version",), violates=("HS-27",)),
    HostMutant(
        "version-mismatch-unexplained",
        ("host/launch/refuses/core-version", "host/launch/refuses/app-version"),
        violates=("HS-22",),
    ),
    HostMutant("refused-left-running", ("host/launch/refuses/app-version",), violates=("HS-20",)),
    HostMutant("ignores-start-timeout", ("host/launch/start-timeout",), violates=("HS-18",)),
    HostMutant("start-timeout-halved", ("host/launch/start-timeout",), violates=("HS-18",)),
    HostMutant(
        "noise-refused",
        ("host/launch/noise-before-handshake",),
        options=SHORT_START,
        violates=("HS-24",),
    ),
    HostMutant("no-stderr-drain", ("host/launch/stderr-flood/before",), violates=("IO-9",)),
    HostMutant("stderr-drain-stops", ("host/launch/stderr-flood/after",), violates=("IO-9",)),
    HostMutant("no-stdout-drain", ("host/launch/stdout-flood/*",), violates=("IO-9", "IO-10")),
    HostMutant(
        "stdout-stops-at-long-line", ("host/launch/stdout-flood/long-lines",), violates=("IO-10",)
    ),
    HostMutant(
        "tcp-unsupported", ("host/launch/tcp-plugin",), options=SHORT_START, violates=("TR-8",)
    ),
    HostMutant("mtls-ignored", ("host/launch/mtls",), violates=("HS-5",)),
    # health and activation
    HostMutant(
        "calls-before-serving",
        ("host/health/waits-for-serving", "host/dispatch/implemented-first"),
        violates=("HL-6",),
    ),
    HostMutant("implemented-asked-again", ("host/dispatch/implemented-first",), violates=("HK-1",)),
    HostMutant("checks-empty-service", ("host/health/waits-for-serving",), violates=("HL-6",)),
    HostMutant("slow-health-poll", ("host/health/waits-for-serving",), violates=("HL-6",)),
    HostMutant("no-health-checks", ("host/health/hung-plugin-restarted",), violates=("SV-7",)),
    HostMutant("activation-order-swapped", ("host/dispatch/activation-order",), violates=("LC-1",)),
    HostMutant(
        "activation-error-restarts", ("host/dispatch/activation-error",), violates=("LC-7",)
    ),
    HostMutant(
        "configuration-error-ignored", ("host/dispatch/configuration-error",), violates=("LC-4",)
    ),
    HostMutant(
        "restart-without-configuration", ("host/crash/restart-after-kill",), violates=("LC-1",)
    ),
    # hooks
    HostMutant(
        "calls-unimplemented-hooks",
        ("host/dispatch/unimplemented-never-called",),
        violates=("HK-5",),
    ),
    HostMutant("payload-strings-trimmed", ("host/dispatch/payloads-exact",), violates=("HK-14",)),
    HostMutant("app-error-trips-breaker", ("host/dispatch/app-error",), violates=("HK-9", "SV-11")),
    HostMutant("hook-deadline-not-sent", ("host/dispatch/hook-deadline",), violates=("HK-11",)),
    HostMutant(
        "configuration-changes-concurrent",
        ("host/dispatch/configuration-change",),
        violates=("LC-3",),
    ),
    HostMutant(
        "crash-restarts-all",
        ("host/dispatch/isolation", "host/chaos/kills-during-traffic"),
        violates=("SV-20",),
    ),
    HostMutant("fan-out-sequential", ("host/dispatch/fan-out",), violates=("NT-2",)),
    HostMutant("notify-waits-longer", ("host/dispatch/fan-out",), violates=("NT-3",)),
    HostMutant("timeout-reported-late", ("host/dispatch/hook-deadline",), violates=("HK-11",)),
    # filters
    HostMutant("filter-chain-reversed", ("host/filters/chain-order",), violates=("FL-8",)),
    HostMutant("keep-takes-response-post", ("host/filters/keep-ignores-post",), violates=("FL-2",)),
    HostMutant("reject-does-not-stop", ("host/filters/reject-stops",), violates=("FL-4",)),
    HostMutant("filter-fails-closed", ("host/filters/fails-open/*",), violates=("FL-5", "FL-6")),
]
