"""Fuzzing: examples per second of the echo property (plugin/serve-http/echo-roundtrip) in a
campaign as users run it, ``pluginconf fuzz plugin -n 2`` against the reference plugin,
start-up included; against plain echo exchanges per second, without Hypothesis, through the
same ServeHTTP client to the same plugin.
"""

from __future__ import annotations

import time

from pluginconf.bench.context import BenchContext
from pluginconf.bench.errors import BenchError
from pluginconf.bench.figures import Figure, at_least
from pluginconf.bench.processes.reference import reference_plugin
from pluginconf.bench.processes.runs import run_pluginconf
from pluginconf.runner.plugin.http import exchange

PROPERTY = "serve-http/echo-roundtrip"
WORKERS = 2
SEED = 1
RATE_TARGET = 50.0
PLAIN_EXCHANGES = 500
RUN_TIMEOUT_S = 900.0


async def plain_echoes_per_s(count: int) -> float:
    """Small echo exchanges per second on one plugin: the floor under every example."""
    async with reference_plugin() as plugin:
        started = time.perf_counter()
        for _ in range(count):
            response = await exchange(
                plugin.stub, "POST", "/echo", headers=[("x-a", ["1"])], body=b""
            )
            if response.status != 200:
                raise BenchError(f"a plain echo answered {response.status}, expected 200")
        return count / (time.perf_counter() - started)


async def campaign_rate(examples: int) -> tuple[float, int]:
    """``pluginconf fuzz plugin`` on the echo property: its examples per second and count."""
    words = ["fuzz", "plugin", "--property", PROPERTY, "--examples", str(examples)]
    words += ["--seed", str(SEED), "-n", str(WORKERS)]
    _, report = await run_pluginconf(words, RUN_TIMEOUT_S)
    return float(report["examples_per_s"]), int(report["examples"])


async def run(ctx: BenchContext) -> list[Figure]:
    plain = await plain_echoes_per_s(min(PLAIN_EXCHANGES, ctx.sizes.fuzz_examples * 5))
    rate, examples = await campaign_rate(ctx.sizes.fuzz_examples)
    ctx.progress(
        f"pluginconf fuzz plugin -n {WORKERS}: {examples} examples, {rate:.1f}/s; plain echo "
        f"exchanges {plain:.1f}/s"
    )
    return [
        Figure(
            "fuzz_echo_examples_per_s", "/s", rate, "plain_echo_exchanges_per_s", plain,
            at_least(RATE_TARGET, "/s"),
        )
    ]  # fmt: skip
