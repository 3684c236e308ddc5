"""Examples per second of the echo property (plugin/serve-http/echo-roundtrip), beside the
same-run rate of plain echo exchanges, without Hypothesis, on the same plugin process.

    .venv/bin/python benchmarks/fuzz_echo.py [--examples N] [--max-body BYTES] [--json FILE]

The goal is at least 50 examples/s on a 2-core machine; exit status 1 when it is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from pluginconf.fuzz.campaign import CampaignSettings, run_property
from pluginconf.fuzz.http import FuzzRequest
from pluginconf.fuzz.plugin_context import PluginFuzzContext
from pluginconf.fuzz.plugin_properties import PROPERTIES, send_request
from pluginconf.fuzz.pytest_plugin import DEFAULT_FUZZ_MAX_BODY
from pluginconf.runner.options import PluginSuiteOptions

GOAL_PER_S = 50.0


async def plain_echoes(ctx: PluginFuzzContext, count: int) -> float:
    """Echo exchanges per second with one fixed small request: the floor of the property."""
    request = FuzzRequest("POST", "/echo", "", (("x-a", ("1",)),))
    start = time.monotonic()
    for _ in range(count):
        await send_request(ctx, request, None, b"", expected_body=b"")
        await ctx.check_healthy("a plain echo")
    return count / (time.monotonic() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--max-body", type=int, default=DEFAULT_FUZZ_MAX_BODY)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    echo = next(p for p in PROPERTIES if p.id == "serve-http/echo-roundtrip")
    with asyncio.Runner() as runner:
        ctx = PluginFuzzContext(runner, PluginSuiteOptions(max_body=args.max_body))
        try:
            baseline = runner.run(plain_echoes(ctx, min(args.examples, 500)))
            result = run_property(echo, ctx, CampaignSettings(args.examples, args.seed))
        finally:
            runner.run(ctx.aclose())
    if result.failure is not None:
        print(f"the echo property failed: {result.failure.message}", file=sys.stderr)
        return 1
    rate = result.examples / result.duration_s
    figures = {
        "name": "fuzz_echo_examples_per_s",
        "unit": "1/s",
        "value": round(rate, 1),
        "baseline_name": "plain_echo_exchanges_per_s",
        "baseline": round(baseline, 1),
        "ratio": round(rate / baseline, 3),
        "target": f">= {GOAL_PER_S:g}/s",
        "met": rate >= GOAL_PER_S,
        "examples": result.examples,
        "max_body": args.max_body,
    }
    print(
        f"echo property: {rate:.1f} examples/s ({result.examples} examples, max body "
        f"{args.max_body} B); plain echo exchanges: {baseline:.1f}/s; ratio {rate / baseline:.2f}"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"figures": [figures]}, fh, indent=2)
    return 0 if figures["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
