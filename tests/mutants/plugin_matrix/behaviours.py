"""The plugin mutants of hooks and of the conformance plugin's behaviours (the SDK profile)."""

from __future__ import annotations

from plugin_matrix.mutant import Mutant

MUTANTS = [
    # hooks
    Mutant("implemented-lie", ("plugin/hooks/implemented-consistent",), violates=("HK-4",)),
    Mutant("implemented-duplicates", ("plugin/hooks/implemented-stable",), violates=("HK-2",)),
    Mutant("exit-on-deactivate", ("plugin/hooks/lifecycle-sequence",), violates=("LC-10",)),
    Mutant("exception-escapes", ("plugin/hooks/payload-empty",), violates=("HK-10",)),
    Mutant("crash-on-non-bmp", ("plugin/hooks/payload-unicode",), violates=("HK-10",)),
    Mutant("oversize-answer", ("plugin/hooks/message-limit",), violates=("TR-11",)),
    Mutant(
        "serialized-calls",
        ("plugin/hooks/concurrent-calls", "plugin/sdk/concurrency/32-streams"),
        violates=("HK-13",),
    ),
    Mutant("rpc-limit", ("plugin/hooks/health-under-load",), violates=("HL-4",)),
    Mutant("fd-leak", ("plugin/hooks/endurance",), violates=("HK-15",)),
    Mutant("body-before-init", ("plugin/serve-http/framing",), violates=("SH-12",)),
    # the conformance plugin's behaviours
    Mutant("no-posts-hook", ("plugin/sdk/implemented-all",), violates=("RB-1",)),
    Mutant("filter-broken", ("plugin/sdk/filter/*",), violates=("RB-9", "FL-7")),
    Mutant("command-strips", ("plugin/sdk/commands/echo",), violates=("RB-10",)),
    Mutant("unknown-command-crashes", ("plugin/sdk/commands/unknown",), violates=("RB-10",)),
    Mutant("lifecycle-unlogged", ("plugin/sdk/commands/lifecycle",), violates=("RB-10",)),
    Mutant("config-unsorted", ("plugin/sdk/commands/posts-and-config",), violates=("RB-10",)),
    Mutant("kv-local", ("plugin/sdk/hostapi/kv",), violates=("RB-10",)),
    Mutant("log-dropped", ("plugin/sdk/hostapi/log-and-config",), violates=("RB-10",)),
    Mutant("broker-no-wait", ("plugin/sdk/hostapi/late-announcement",), violates=("BR-5",)),
    Mutant("no-hostapi-crashes", ("plugin/sdk/hostapi/no-broker",), violates=("RB-10",)),
    Mutant("stdio-swapped", ("plugin/sdk/stdio/capture",), violates=("IO-4",)),
    Mutant("stdio-replayed", ("plugin/sdk/stdio/single-delivery",), violates=("IO-5",)),
    Mutant("no-grace", ("plugin/sdk/controller/grace",), violates=("CT-2",)),
    Mutant(
        "echo-flip-65536",
        (
            "plugin/sdk/echo/65537",
            "plugin/sdk/echo/271828",
            "plugin/sdk/echo/314159",
            "plugin/sdk/echo/16777216",
            "plugin/sdk/echo/max-body",
        ),
        violates=("RB-2",),
    ),
    Mutant("echo-appends-newline", ("plugin/sdk/echo/*",), violates=("RB-2",)),
    Mutant("bytes-extra-byte", ("plugin/sdk/bytes/*",), violates=("RB-3",)),
    Mutant(
        "oversize-frames",
        ("plugin/sdk/limits/message-size", "plugin/sdk/limits/frame-size"),
        violates=("TR-11", "SH-14"),
    ),
    Mutant(
        "echo-buffers",
        ("plugin/sdk/streaming/response-before-request-end", "plugin/sdk/memory/echo-max-body"),
        violates=("SH-17", "SH-19"),
    ),
    Mutant("flush-ignored", ("plugin/sdk/streaming/flush",), violates=("RB-6",)),
    Mutant("disconnect-swallowed", ("plugin/sdk/cancel/reaches-handler",), violates=("SH-21",)),
    Mutant("half-close-is-end", ("plugin/sdk/cancel/half-close-without-end",), violates=("SH-11",)),
    Mutant("first-header-value", ("plugin/sdk/headers/request-multi-valued",), violates=("SH-24",)),
    Mutant("path-decoded", ("plugin/sdk/headers/request-line",), violates=("SH-24",)),
    Mutant("headers-ungrouped", ("plugin/sdk/headers/response-multi-valued",), violates=("SH-13",)),
    Mutant("status-off-by-one", ("plugin/sdk/status/*",), violates=("RB-4",)),
    Mutant("handler-error-as-status", ("plugin/sdk/errors/before-response",), violates=("SH-22",)),
    Mutant("truncation-hidden", ("plugin/sdk/errors/after-response-started",), violates=("SH-22",)),
    Mutant("delay-ignored", ("plugin/sdk/routes/sha256-and-delay",), violates=("RB-8",)),
]
