"""The host mutants that break one requirement each (issue 15)."""

from __future__ import annotations

from host_matrix.mutant import HostMutant

MUTANTS = [
    # requirement-level faults (issue 15): a rule each, caught by a case that cites it
    HostMutant("cookie-value-capitalised", ("host/launch/environment",), violates=("HS-1",)),
    HostMutant("protocol-versions-spaced", ("host/launch/environment",), violates=("HS-2",)),
    HostMutant("port-range-swapped", ("host/launch/environment",), violates=("HS-3",)),
    HostMutant(
        "tcp-private-accepted", ("host/launch/refuses/non-loopback-tcp",), violates=("HS-21",)
    ),
    HostMutant("mtls-no-client-cert", ("host/launch/mtls",), violates=("TLS-8",)),
    HostMutant("mtls-system-roots", ("host/launch/mtls",), violates=("TLS-9",)),
    HostMutant(
        "active-before-on-activate", ("host/dispatch/activation-order",), violates=("LC-2",)
    ),
    HostMutant(
        "plugin-id-from-executable", ("host/dispatch/activation-order",), violates=("LC-6",)
    ),
    HostMutant("notified-once-per-post-hook", ("host/dispatch/fan-out",), violates=("NT-1",)),
    HostMutant("notification-retried", ("host/dispatch/fan-out",), violates=("NT-4",)),
    HostMutant("filter-sees-original-post", ("host/filters/chain-order",), violates=("FL-1",)),
    HostMutant("modify-merged", ("host/filters/chain-order",), violates=("FL-3",)),
    HostMutant("command-text-trimmed", ("host/dispatch/payloads-exact",), violates=("RR-1",)),
    HostMutant("app-error-code-in-message", ("host/dispatch/app-error",), violates=("RR-2",)),
    HostMutant("timeout-as-unavailable", ("host/dispatch/hook-deadline",), violates=("RR-3",)),
    HostMutant("method-patch-as-post", ("host/serve-http/request-fields",), violates=("SH-2",)),
    HostMutant("path-decoded", ("host/serve-http/request-fields",), violates=("SH-3",)),
    HostMutant("query-re-encoded", ("host/serve-http/request-fields",), violates=("SH-4",)),
    HostMutant("request-headers-joined", ("host/serve-http/request-fields",), violates=("SH-5",)),
    HostMutant("request-headers-latin1", ("host/serve-http/request-fields",), violates=("SH-5",)),
    HostMutant("remote-addr-without-port", ("host/serve-http/request-fields",), violates=("SH-8",)),
    HostMutant(
        "flush-ignored",
        ("host/serve-http/response-streams", "host/serve-http/response-unflushed"),
        violates=("SH-15", "SH-16"),
    ),
    HostMutant("half-duplex", ("host/serve-http/full-duplex",), violates=("SH-17",)),
    HostMutant("failed-start-counted-twice", ("host/crash/give-up",), violates=("SV-10",)),
    HostMutant("stop-exit-is-crash", ("host/shutdown/sequence",), violates=("SV-15",)),
    HostMutant("exit-seen-not-reaped", ("host/shutdown/no-leaks",), violates=("SV-17",)),
    # request framing, headers, early responses, states, signals (issue 15)
    HostMutant("end-sent-twice", ("host/serve-http/request-frames/*",), violates=("SH-1",)),
    HostMutant("no-half-close", ("host/serve-http/request-frames/0",), violates=("SH-1",)),
    HostMutant("empty-body-frames", ("host/serve-http/request-frame-size",), violates=("SH-10",)),
    HostMutant("4mib-body-frames", ("host/serve-http/request-frame-size",), violates=("SH-10",)),
    HostMutant(
        "connection-names-case-sensitive", ("host/serve-http/header-names",), violates=("SH-6",)
    ),
    HostMutant(
        "empty-header-values-dropped", ("host/serve-http/header-names",), violates=("SH-5",)
    ),
    HostMutant(
        "response-after-request",
        ("host/serve-http/early-response",),
        violates=("SH-18", "SH-26"),
    ),
    HostMutant(
        "breaker-success-keeps-count", ("host/crash/circuit-success-resets",), violates=("SV-11",)
    ),
    HostMutant(
        "restart-first-configuration",
        ("host/dispatch/configuration-before-restart",),
        violates=("LC-1",),
    ),
    HostMutant(
        "refused-configuration-reverted",
        ("host/dispatch/configuration-error-active",),
        violates=("LC-5",),
    ),
    HostMutant("crash-without-reason", ("host/states/events",), violates=("SV-2",)),
    HostMutant("signal-kills-plugins", ("host/shutdown/host-signal/*",), violates=("SV-19",)),
    HostMutant(
        "signal-stops-one-by-one", ("host/shutdown/host-signal/sigterm",), violates=("SV-19",)
    ),
    HostMutant(
        "modify-without-post-passed",
        ("host/filters/odd-answer/modify-without-post",),
        violates=("FL-3",),
    ),
    HostMutant(
        "unknown-action-rejects", ("host/filters/odd-answer/unknown-action",), violates=("FL-6",)
    ),
    HostMutant(
        "413-after-plugin", ("host/serve-http/body-limit/declared-over",), violates=("SE-7",)
    ),
    HostMutant(
        "exact-limit-refused",
        ("host/serve-http/body-limit/declared-exact", "host/serve-http/body-limit/streamed-exact"),
        violates=("SE-7",),
    ),
    HostMutant(
        "streamed-limit-unchecked",
        ("host/serve-http/body-limit/streamed-over-before-response",),
        violates=("SE-7",),
    ),
    HostMutant("watch-newest-only", ("host/states/events",), violates=("SV-2",)),
    HostMutant("restart-window-ignored", ("host/crash/restart-window-slides",), violates=("SV-9",)),
    HostMutant("broker-servers-kept", ("host/shutdown/no-descriptor-growth",), violates=("SV-18",)),
    HostMutant("request-bodies-kept", ("host/serve-http/no-memory-growth",), violates=("SH-19",)),
    HostMutant(
        "over-limit-ends-cleanly",
        ("host/serve-http/body-limit/streamed-over-after-response",),
        violates=("SE-7",),
    ),
    # handshake field 6, AutoMTLS, transport, stdio, Implemented, lifecycle (issue 15)
    HostMutant(
        "six-fields-need-certificate", ("host/handshake/empty-sixth-field",), violates=("HS-19",)
    ),
    HostMutant(
        "certificate-padded-base64", ("host/handshake/unpadded-certificate",), violates=("HS-19",)
    ),
    HostMutant("host-cert-server-auth-only", ("host/tls/host-certificate",), violates=("TLS-4",)),
    HostMutant("host-cert-not-backdated", ("host/tls/host-certificate",), violates=("TLS-4",)),
    HostMutant("host-cert-p521", ("host/tls/host-curve",), violates=("TLS-5",)),
    HostMutant("tls-1-0-allowed", ("host/tls/refuses-old-tls",), violates=("TLS-6",)),
    HostMutant(
        "mtls-plaintext-fallback", ("host/tls/no-plaintext-fallback/*",), violates=("TLS-10",)
    ),
    HostMutant(
        "unrequested-certificate-ignored",
        ("host/tls/unrequested-certificate",),
        violates=("TLS-11",),
    ),
    HostMutant("stdio-before-health", ("host/stdio/stream-once-after-health",), violates=("IO-7",)),
    HostMutant("stdio-end-is-death", ("host/stdio/not-a-failure/*",), violates=("IO-8",)),
    HostMutant(
        "unknown-hook-fails-plugin", ("host/implemented/unknown-names",), violates=("HK-6",)
    ),
    HostMutant(
        "implemented-unimplemented-means-none",
        ("host/implemented/fails/unimplemented",),
        violates=("HK-7",),
    ),
    HostMutant(
        "implemented-error-means-all",
        ("host/implemented/fails/internal",),
        violates=("HK-7",),
    ),
    HostMutant(
        "configuration-error-deactivates",
        ("host/dispatch/configuration-error-active",),
        violates=("LC-5",),
    ),
    HostMutant(
        "start-hook-failure-final", ("host/lifecycle/start-hook-fails/*",), violates=("LC-8",)
    ),
    HostMutant("receive-limit-4mb", ("host/transport/receives-4mib",), violates=("TR-10",)),
    HostMutant("body-frames-8mib", ("host/transport/sends-at-most-4mib",), violates=("TR-11",)),
    # states
    HostMutant("restart-skips-restarting", ("host/states/events",), violates=("SV-1",)),
]
