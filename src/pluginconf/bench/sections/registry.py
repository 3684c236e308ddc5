"""Every benchmark, in the order they run: cases as data, separate from the command."""

from __future__ import annotations

from pluginconf.bench.context import Section
from pluginconf.bench.sections import fuzzing, hooks, memory, recovery, streams, suites

SECTIONS: tuple[Section, ...] = (
    Section("hooks", "hook round trip, host client against raw grpcio unary", hooks.run),
    Section(
        "streams",
        "ServeHTTP echo over gRPC and end-to-end HTTP, against a raw grpcio bidi echo",
        streams.run,
    ),
    Section("memory", "RSS growth of host and plugin during an HTTP echo", memory.run),
    Section("crash", "crash detection and restart, beside a cold start", recovery.run_crash),
    Section("shutdown", "graceful shutdown of an idle plugin", recovery.run_shutdown),
    Section("suites", "wall time of pluginconf plugin and pluginconf host", suites.run),
    Section("fuzz", "examples per second of the echo property", fuzzing.run),
)

NAMES = tuple(s.name for s in SECTIONS)
