"""The plugin mutants that break one requirement each (issue 15)."""

from __future__ import annotations

from plugin_matrix.mutant import Mutant

from pluginconf.runner.model import Outcome

MUTANTS = [
    # requirements no plugin case cited before
    Mutant(
        "stdio-blocks-unsubscribed",
        ("plugin/sdk/stdio/unread-output-does-not-block",),
        violates=("IO-3",),
        verdicts={"plugin/sdk/stdio/unread-output-does-not-block": (("IO-3",), Outcome.NOT_MET)},
    ),
    Mutant(
        "stdio-drops-newest",
        ("plugin/sdk/stdio/kept-before-subscriber",),
        violates=("IO-6",),
        verdicts={"plugin/sdk/stdio/kept-before-subscriber": (("IO-6",), Outcome.NOT_MET)},
    ),
    Mutant("stdio-buffer-shared", ("plugin/sdk/stdio/kept-before-subscriber",), violates=("IO-6",)),
    Mutant(
        "health-serving-while-stopping",
        ("plugin/health/not-serving-when-stopping",),
        violates=("HL-5",),
    ),
    Mutant(
        "slow-startup",
        ("plugin/handshake/within-start-timeout",),
        options={"start_timeout_s": 1.0},
        violates=("HS-17",),
        verdicts={"plugin/handshake/within-start-timeout": (("HS-17",), Outcome.FAILED)},
    ),
    Mutant(
        "response-type-unset",
        ("plugin/hooks/command-response-type",),
        violates=("RR-4",),
        verdicts={"plugin/hooks/command-response-type": (("RR-4",), Outcome.NOT_MET)},
    ),
    Mutant(
        "broker-dial-no-client-cert",
        ("plugin/sdk/broker/dial-auto-mtls",),
        violates=("BR-7",),
        verdicts={"plugin/sdk/broker/dial-auto-mtls": (("BR-7",), Outcome.FAILED)},
    ),
    Mutant("broker-dial-no-verify", ("plugin/sdk/broker/dial-auto-mtls",), violates=("BR-7",)),
    Mutant(
        "dial-error-without-id",
        ("plugin/sdk/broker/dial-failure-names-id",),
        violates=("BR-11",),
        verdicts={"plugin/sdk/broker/dial-failure-names-id": (("BR-11",), Outcome.NOT_MET)},
    ),
    # issue 15, item 2: plugin requirements cited by cases but violated by no mutant
    Mutant("handshake-app-zero-padded", ("plugin/handshake/line-format",), violates=("HS-13",)),
    Mutant("tcp-wildcard", ("plugin/transport/tcp-port-range",), violates=("TR-4",)),
    Mutant(
        "mtls-cert-server-auth-only", ("plugin/mtls/handshake-certificate",), violates=("TLS-4",)
    ),
    Mutant("mtls-cert-not-before-now", ("plugin/mtls/handshake-certificate",), violates=("TLS-4",)),
    Mutant(
        "controller-unserved",
        ("plugin/handshake/serving-at-handshake",),
        violates=("CT-1", "TR-9"),
    ),
    Mutant("health-unserved", ("plugin/health/serving",), violates=("HL-1",)),
    Mutant("shutdown-returns-none", ("plugin/controller/shutdown",), violates=("CT-4",)),
    Mutant("broker-unserved", ("plugin/broker/unusable-announcements",), violates=("BR-1",)),
    Mutant("broker-drops-early-announcements", ("plugin/sdk/hostapi/kv",), violates=("BR-6",)),
    Mutant(
        "unimplemented-answers-ok",
        ("plugin/hooks/implemented-consistent",),
        violates=("HK-3", "HK-4"),
    ),
    Mutant("app-error-camel-case", ("plugin/sdk/commands/unknown",), violates=("HK-8",)),
    Mutant("app-error-as-status", ("plugin/sdk/commands/unknown",), violates=("HK-8",)),
    Mutant(
        "cancel-noticed-late",
        ("plugin/sdk/cancel/reaches-handler",),
        violates=("HK-12", "SH-21"),
    ),
    Mutant("command-nfc", ("plugin/sdk/commands/echo",), violates=("HK-14",)),
    Mutant("hostapi-fixed-id", ("plugin/sdk/hostapi/no-broker",), violates=("HA-2",)),
    Mutant("headers-joined", ("plugin/sdk/headers/response-multi-valued",), violates=("RB-5",)),
    Mutant("disconnects-newest-first", ("plugin/sdk/cancel/reaches-handler",), violates=("RB-7",)),
    Mutant(
        "header-names-case-sensitive",
        ("plugin/sdk/headers/request-multi-valued",),
        violates=("SH-6",),
    ),
    Mutant(
        "stdio-language-level",
        ("plugin/sdk/stdio/capture",),
        violates=("IO-2",),
        verdicts={"plugin/sdk/stdio/capture": (("IO-2",), Outcome.NOT_MET)},
    ),
    Mutant(
        "broker-offer-before-listen",
        ("plugin/broker/plugin-announcements",),
        violates=("BR-3",),
        verdicts={"plugin/broker/plugin-announcements": (("BR-3",), Outcome.FAILED)},
    ),
    Mutant("broker-offer-id-zero", ("plugin/broker/plugin-announcements",), violates=("BR-4",)),
    Mutant("broker-offer-knock", ("plugin/broker/plugin-announcements",), violates=("BR-8",)),
    Mutant(
        "broker-offer-left-at-shutdown",
        ("plugin/broker/plugin-announcements",),
        violates=("BR-10",),
        verdicts={"plugin/broker/plugin-announcements": (("BR-10",), Outcome.FAILED)},
    ),
    Mutant(
        "broker-offer-left-at-stream-end",
        ("plugin/broker/plugin-announcements",),
        violates=("BR-12",),
        verdicts={"plugin/broker/plugin-announcements": (("BR-12",), Outcome.NOT_MET)},
    ),
    Mutant(
        "no-drain",
        ("plugin/sdk/streaming/unread-request-drained",),
        violates=("SH-25",),
        verdicts={"plugin/sdk/streaming/unread-request-drained": (("SH-25",), Outcome.NOT_MET)},
    ),
    # issue 15: branches, boundaries, resources and samples the first cases missed
    Mutant("chunk-off-by-one", ("plugin/sdk/bytes/irregular-chunks",), violates=("RB-3",)),
    Mutant(
        "bytes-piece-restarts-block", ("plugin/sdk/bytes/irregular-chunks",), violates=("RB-3",)
    ),
    Mutant("empty-frame-is-end", ("plugin/sdk/echo/irregular-frames",), violates=("SH-24",)),
    Mutant(
        "fourth-header-value",
        ("plugin/sdk/headers/request-repeated-values",),
        violates=("SH-24",),
    ),
    Mutant(
        "header-values-deduplicated",
        ("plugin/sdk/headers/request-repeated-values",),
        violates=("SH-24",),
    ),
    Mutant(
        "socket-dir-empty-is-cwd",
        ("plugin/transport/own-socket-dir-shutdown",),
        violates=("TR-12",),
        verdicts={"plugin/transport/own-socket-dir-shutdown": (("TR-12",), Outcome.NOT_MET)},
    ),
    Mutant(
        "own-dir-left-on-shutdown",
        ("plugin/transport/own-socket-dir-shutdown",),
        violates=("TR-13",),
    ),
    Mutant("sigterm-no-grace", ("plugin/sdk/controller/sigterm-grace",), violates=("CT-5",)),
    Mutant("helper-left-on-sigterm", ("plugin/controller/sigterm-no-orphans",), violates=("CT-9",)),
    Mutant(
        "cancelled-body-spool-leaks",
        ("plugin/sdk/endurance/bodies-cancels-hostapi",),
        violates=("HK-15",),
    ),
    Mutant(
        "hostapi-audit-handler-per-command",
        ("plugin/sdk/endurance/bodies-cancels-hostapi",),
        violates=("HK-15",),
    ),
    Mutant("port-range-excludes-max", ("plugin/transport/tcp-one-port-range",), violates=("TR-5",)),
    # Shows for about 4 certificates in 10: one process's certificate proves nothing.
    Mutant(
        "mtls-cert-single-pad-left",
        ("plugin/mtls/certificate-encoding-samples",),
        violates=("HS-14",),
        verdicts={"plugin/mtls/certificate-encoding-samples": (("HS-14",), Outcome.FAILED)},
    ),
]
