"""The host mutants of the HTTP front, crashes and stopping."""

from __future__ import annotations

from host_matrix.mutant import HEAVY_BYTES, HostMutant

from pluginconf.units import MIB

MUTANTS = [
    # the HTTP front
    HostMutant(
        "content-length-dropped",
        ("host/serve-http/body-exact/0", "host/serve-http/request-fields"),
        violates=("SH-7", "SH-9"),
    ),
    HostMutant(
        "last-body-frame-lost",
        (
            "host/serve-http/body-exact/1",
            "host/serve-http/body-exact/65535",
            "host/serve-http/body-exact/65536",
            "host/serve-http/body-exact/65537",
            "host/serve-http/body-exact/1048577",
            "host/serve-http/body-exact/4194305",
            "host/serve-http/body-exact/16777216",
            "host/serve-http/status-codes/200",
        ),
        violates=("SE-10",),
    ),
    HostMutant(
        # The case is skipped under a smaller --max-body; the 413 comes before any body byte.
        "default-body-limit",
        ("host/serve-http/body-exact/268435456",),
        heavy=True,
        options={"max_body": 256 * MIB},
        violates=("SH-9",),
    ),
    HostMutant("hop-by-hop-forwarded", ("host/serve-http/hop-by-hop",), violates=("SE-8",)),
    HostMutant(
        "response-hop-by-hop-forwarded", ("host/serve-http/hop-by-hop",), violates=("SE-8",)
    ),
    HostMutant(
        "response-headers-joined", ("host/serve-http/response-headers",), violates=("SE-9",)
    ),
    HostMutant(
        "status-always-200",
        tuple(f"host/serve-http/status-codes/{n}" for n in (201, 204, 301, 404, 418, 500, 503)),
        violates=("SE-1",),
    ),
    HostMutant(
        "buffers-bodies",
        (
            "host/serve-http/response-streams",
            "host/serve-http/response-unflushed",
            "host/serve-http/full-duplex",
            "host/serve-http/request-streams",
        ),
        violates=("SH-15", "SH-16", "SH-17", "SH-19"),
    ),
    HostMutant(
        "buffers-bodies",
        ("host/serve-http/bounded-memory",),
        heavy=True,
        options={"max_body": HEAVY_BYTES},
        violates=("SH-19",),
    ),
    HostMutant(
        "client-disconnect-ignored", ("host/serve-http/client-disconnect",), violates=("SH-20",)
    ),
    HostMutant("502-becomes-500", ("host/serve-http/crash-before-response",), violates=("SE-5",)),
    HostMutant(
        "truncated-as-complete", ("host/serve-http/crash-after-start",), violates=("SE-6", "SE-11")
    ),
    HostMutant("inactive-404", ("host/serve-http/inactive-503",), violates=("SE-3",)),
    HostMutant("serve-http-unlisted", ("host/serve-http/not-implemented-404",), violates=("SE-2",)),
    HostMutant("serve-http-deadline", ("host/serve-http/no-deadline",), violates=("SH-23",)),
    # crashes
    HostMutant("no-restart", ("host/crash/give-up",), violates=("SV-9",)),
    HostMutant("exit-unwatched", ("host/crash/detection-within-1s",), violates=("SV-4",)),
    HostMutant("exit-zero-is-stop", ("host/crash/exit-zero-is-crash",), violates=("SV-6",)),
    HostMutant("exit-noticed-late", ("host/crash/restart-after-kill",), violates=("SV-3",)),
    HostMutant("retries-until-deadline", ("host/crash/in-flight-fails-fast",), violates=("SV-5",)),
    HostMutant("no-backoff", ("host/crash/backoff",), violates=("SV-8",)),
    HostMutant("backoff-too-long", ("host/crash/backoff",), violates=("SV-8",)),
    # Under the pluginconf target, a host that declares no supervision fails the one case
    # that says what every host must have; the cases that need supervision are skipped.
    HostMutant(
        "no-supervision", ("host/capabilities/declared",), violates=("SV-7", "SV-8", "SV-11")
    ),
    HostMutant(
        "no-circuit-breaker",
        ("host/crash/circuit-opens", "host/crash/circuit-503"),
        violates=("SV-11", "SE-4"),
    ),
    HostMutant(
        "half-open-lets-all-through", ("host/crash/circuit-half-opens",), violates=("SV-12",)
    ),
    HostMutant("deactivate-through-circuit", ("host/crash/circuit-bypass",), violates=("SV-13",)),
    # stopping
    HostMutant("no-on-deactivate", ("host/shutdown/sequence",), violates=("SV-21",)),
    HostMutant(
        "deactivate-unlisted", ("host/shutdown/no-deactivate-when-not-listed",), violates=("LC-9",)
    ),
    HostMutant("never-sigkill", ("host/shutdown/ignores-shutdown-killed",), violates=("SV-14",)),
    HostMutant("no-sigterm-step", ("host/shutdown/ignores-shutdown-killed",), violates=("SV-22",)),
    HostMutant(
        "stop-waits-tripled", ("host/shutdown/ignores-shutdown-killed",), violates=("SV-22",)
    ),
    HostMutant(
        "kills-pid-only",
        (
            "host/launch/refuses/protocol",
            "host/launch/start-timeout",
            "host/crash/reaped",
            "host/shutdown/ignores-shutdown-killed",
        ),
        violates=("HS-25", "SV-16", "SV-22"),
    ),
    HostMutant(
        "socket-dir-kept",
        ("host/shutdown/no-leaks", "host/crash/reaped"),
        violates=("SV-18", "SV-23"),
    ),
]
