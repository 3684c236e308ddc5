"""The plugin mutants of the handshake, transport, AutoMTLS, health and the plugin process."""

from __future__ import annotations

from plugin_matrix.mutant import Mutant

from pluginconf.runner.model import Outcome

MUTANTS = [
    # transport
    Mutant("handshake-crlf", ("plugin/handshake/line-format",), violates=("HS-12",)),
    Mutant(
        "noise-before-handshake",
        ("plugin/handshake/first-bytes",),
        scenario={"noise_before_handshake": ["starting up..."]},
        violates=("HS-15",),
    ),
    Mutant(
        "listen-after-handshake",
        ("plugin/handshake/serving-at-handshake",),
        verdicts={"plugin/handshake/serving-at-handshake": (("HS-16",), Outcome.FAILED)},
        violates=("HS-16",),
    ),
    Mutant("ignore-cookie", ("plugin/handshake/magic-cookie-*",), violates=("HS-9",)),
    Mutant(
        "cookie-unrelated-message",
        ("plugin/handshake/magic-cookie-*",),
        verdicts={"plugin/handshake/magic-cookie-missing": (("HS-9",), Outcome.FAILED)},
        violates=("HS-9",),
    ),
    Mutant("cookie-after-listen", ("plugin/handshake/magic-cookie-*",), violates=("HS-9",)),
    Mutant("cookie-slow-refusal", ("plugin/handshake/magic-cookie-wrong",), violates=("HS-9",)),
    Mutant(
        "version-lowest",
        ("plugin/handshake/version-negotiation",),
        options={"protocol_versions": (1, 2)},
        violates=("HS-10",),
    ),
    Mutant(
        "version-exit-none-common", ("plugin/handshake/version-none-common",), violates=("HS-10",)
    ),
    Mutant(
        "version-invalid-fatal", ("plugin/handshake/version-invalid-entries",), violates=("HS-11",)
    ),
    Mutant("socket-outside-dir", ("plugin/transport/unix-socket-dir",), violates=("TR-1",)),
    Mutant(
        "socket-world-accessible",
        ("plugin/transport/unix-socket-mode",),
        verdicts={"plugin/transport/unix-socket-mode": (("TR-2",), Outcome.FAILED)},
        violates=("TR-2",),
    ),
    Mutant(
        "socket-in-tmpdir",
        ("plugin/transport/own-socket-dir",),
        verdicts={"plugin/transport/own-socket-dir": (("TR-12",), Outcome.NOT_MET)},
        violates=("TR-12",),
    ),
    Mutant("own-dir-left", ("plugin/transport/own-socket-dir",), violates=("TR-13",)),
    Mutant("tcp", ("plugin/transport/prefers-unix",), violates=("TR-7",)),
    Mutant(
        "tcp-ignore-port-range",
        ("plugin/transport/tcp-port-range", "plugin/transport/tcp-bad-port-range"),
        verdicts={
            "plugin/transport/tcp-port-range": (("TR-5",), Outcome.FAILED),
            "plugin/transport/tcp-bad-port-range": (("TR-6", "TR-15"), Outcome.FAILED),
        },
        violates=("TR-5", "TR-6"),
    ),
    Mutant(
        "port-error-exit-0",
        ("plugin/transport/tcp-bad-port-range",),
        verdicts={"plugin/transport/tcp-bad-port-range": (("TR-15",), Outcome.NOT_MET)},
        violates=("TR-15",),
    ),
    Mutant("port-range-unbounded", ("plugin/transport/tcp-bad-port-range",), violates=("TR-15",)),
    Mutant(
        "tcp-fixed-port",
        ("plugin/transport/address-per-process",),
        verdicts={"plugin/transport/address-per-process": (("TR-14", "TR-5"), Outcome.FAILED)},
        violates=("TR-14",),
    ),
    Mutant(
        "tcp-fixed-port-exclusive",
        ("plugin/transport/address-per-process",),
        options={"one_process_at_a_time": True},
        violates=("TR-14",),
    ),
    Mutant("exit-without-cleanup", ("plugin/transport/socket-removed",), violates=("TR-3",)),
    Mutant(
        "receive-limit-1mib",
        ("plugin/transport/accepts-4mib-messages", "plugin/hooks/payload-large"),
        violates=("TR-10",),
    ),
    Mutant(
        "mtls-ignored",
        ("plugin/mtls/handshake-certificate", "plugin/mtls/refuses-plaintext"),
        violates=("TLS-1",),
    ),
    # Under --auto-mtls auto the suite starts it plainly, and it refuses.
    Mutant("mtls-required", ("plugin/handshake/line-format",), violates=("HS-14",)),
    Mutant("mtls-fixed-key", ("plugin/mtls/fresh-key-per-process",), violates=("TLS-3",)),
    Mutant("mtls-no-client-auth", ("plugin/mtls/refuses-*-certificate",), violates=("TLS-7",)),
    Mutant(
        "mtls-bad-cert-ignored",
        ("plugin/mtls/unusable-client-certificate",),
        verdicts={"plugin/mtls/unusable-client-certificate": (("TLS-2",), Outcome.NOT_MET)},
        violates=("TLS-2",),
    ),
    Mutant("mtls-tls-1.0", ("plugin/mtls/tls-1.2-or-later",), violates=("TLS-6",)),
    Mutant("mtls-p521", ("plugin/mtls/p256-key",), violates=("TLS-5",)),
    Mutant(
        "not-serving",
        ("plugin/health/serving",),
        scenario={"health": "NOT_SERVING"},
        violates=("HL-2",),
    ),
    Mutant("health-any-service", ("plugin/health/unknown-service",), violates=("HL-3",)),
    Mutant(
        "ignore-shutdown",
        (
            "plugin/controller/shutdown",
            "plugin/controller/sigterm",
            "plugin/controller/exit-status",
        ),
        scenario={"ignore_shutdown": True},
        violates=("CT-10", "CT-5", "CT-7"),
    ),
    Mutant(
        "shutdown-exit-700ms",
        ("plugin/controller/shutdown",),
        verdicts={"plugin/controller/shutdown": (("CT-3",), Outcome.NOT_MET)},
        violates=("CT-3",),
    ),
    Mutant(
        "shutdown-exit-3s",
        ("plugin/controller/shutdown", "plugin/controller/host-exit"),
        verdicts={
            "plugin/controller/shutdown": (("CT-3", "CT-10"), Outcome.FAILED),
            # CT-8's 2 s, missed by a plugin that does exit: a timing verdict, re-measured.
            "plugin/controller/host-exit": (("CT-8",), Outcome.NOT_MET),
        },
        violates=("CT-10", "CT-8"),
    ),
    Mutant(
        "sigterm-default",
        (
            "plugin/controller/sigterm",
            "plugin/controller/exit-status",
            "plugin/transport/own-socket-dir",
        ),
        verdicts={
            "plugin/controller/sigterm": (("TR-13",), Outcome.NOT_MET),
            "plugin/controller/exit-status": (("CT-7",), Outcome.NOT_MET),
        },
        violates=("TR-13", "CT-7"),
    ),
    Mutant(
        "sigterm-slow",
        ("plugin/controller/sigterm",),
        verdicts={"plugin/controller/sigterm": (("CT-5",), Outcome.NOT_MET)},
        violates=("CT-5",),
    ),
    Mutant(
        "host-exit-no-cleanup",
        ("plugin/controller/host-exit",),
        verdicts={"plugin/controller/host-exit": (("TR-13",), Outcome.NOT_MET)},
        violates=("TR-13",),
    ),
    Mutant("exit-status-1", ("plugin/controller/exit-status",), violates=("CT-7",)),
    Mutant("sigint-exits", ("plugin/controller/sigint-ignored",), violates=("CT-6",)),
    Mutant(
        "ignore-host-exit",
        ("plugin/controller/host-exit",),
        verdicts={"plugin/controller/host-exit": (("CT-8",), Outcome.NOT_MET)},
        violates=("CT-8",),
    ),
    Mutant(
        "grandchild",
        ("plugin/controller/no-orphans",),
        scenario={"spawn_grandchild": {"seconds": 60}},
        violates=("CT-9",),
    ),
    Mutant("no-stdio", ("plugin/stdio/served",), violates=("IO-1",)),
    Mutant(
        "broker-ends-on-unusable", ("plugin/broker/unusable-announcements",), violates=("BR-9",)
    ),
]
