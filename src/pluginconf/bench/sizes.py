"""How much each benchmark does: the full run, and ``--quick``.

The full sizes are the issue's; ``--quick`` only shows that every benchmark works, in under a
minute, so its figures come from few samples and its targets are reported but not enforced.
"""

from __future__ import annotations

from dataclasses import dataclass

from pluginconf.units import MIB


@dataclass(frozen=True)
class BenchSizes:
    hook_calls: int  # per side, after the warm-up
    stream_bytes: int  # ServeHTTP echo over gRPC, and end-to-end HTTP, each way
    stream_rounds: int  # alternating rounds of each transfer; the median is reported
    memory_bytes: int  # the transfer during which RSS is sampled, each way
    kills: int
    shutdowns: int
    quick_suites: bool  # a few cases of each suite instead of all of them
    fuzz_examples: int
    enforce_targets: bool

    @property
    def description(self) -> str:
        return (
            f"{self.hook_calls} hook calls per side; {self.stream_bytes // MIB} MiB streams "
            f"x{self.stream_rounds}; {self.memory_bytes // MIB} MiB for memory; "
            f"{self.kills} kills; {self.shutdowns} shutdowns; "
            f"{'a subset of each suite' if self.quick_suites else 'whole suites'}; "
            f"{self.fuzz_examples} fuzz examples"
        )


FULL = BenchSizes(
    hook_calls=2000,
    stream_bytes=256 * MIB,
    stream_rounds=3,
    memory_bytes=1024 * MIB,
    kills=10,
    shutdowns=10,
    quick_suites=False,
    fuzz_examples=1000,
    enforce_targets=True,
)

QUICK = BenchSizes(
    hook_calls=300,
    stream_bytes=16 * MIB,
    stream_rounds=1,
    memory_bytes=32 * MIB,
    kills=3,
    shutdowns=3,
    quick_suites=True,
    fuzz_examples=50,
    enforce_targets=False,
)
