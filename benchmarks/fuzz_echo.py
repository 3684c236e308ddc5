"""Examples per second of the echo property (plugin/serve-http/echo-roundtrip), beside the
same-run rate of plain echo exchanges, without Hypothesis, on the same plugin process.

    .venv/bin/python benchmarks/fuzz_echo.py [--examples N] [--max-body BYTES] [--json FILE]

Two figures: one worker in this process, and a campaign as users run it,
``pluginconf fuzz plugin -n 2`` (two workers, each with its plugin process; the rate counts
the campaign's whole wall time, start-up included). The goal is at least 50 examples/s on a
2-core machine, for the campaign; exit status 1 when it is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def campaign_rate(examples: int, max_body: int, seed: int, workers: int) -> float:
    """``pluginconf fuzz plugin`` on the echo property: its examples per second."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp, "fuzz.json")
        subprocess.run(
            [sys.executable, "-m", "pluginconf", "fuzz", "plugin",
             "--property", "serve-http/echo-roundtrip", "--examples", str(examples),
             "--max-body", str(max_body), "--seed", str(seed), "-n", str(workers),
             "--json", str(report)],
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip
        rate: float = json.loads(report.read_text())["examples_per_s"]
        return rate


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
    two = campaign_rate(args.examples, args.max_body, args.seed, 2)
    figures = [
        {
            "name": "fuzz_echo_examples_per_s_one_worker",
            "unit": "1/s",
            "value": round(rate, 1),
            "baseline_name": "plain_echo_exchanges_per_s",
            "baseline": round(baseline, 1),
            "ratio": round(rate / baseline, 3),
            "examples": result.examples,
            "max_body": args.max_body,
        },
        {
            "name": "fuzz_echo_examples_per_s_campaign_n2",
            "unit": "1/s",
            "value": two,
            "baseline_name": "plain_echo_exchanges_per_s",
            "baseline": round(baseline, 1),
            "ratio": round(two / baseline, 3),
            "target": f">= {GOAL_PER_S:g}/s",
            "met": two >= GOAL_PER_S,
            "examples": args.examples,
            "max_body": args.max_body,
        },
    ]
    print(
        f"echo property, one worker: {rate:.1f} examples/s ({result.examples} examples, max "
        f"body {args.max_body} B); plain echo exchanges: {baseline:.1f}/s (ratio "
        f"{rate / baseline:.2f})\n"
        f"pluginconf fuzz plugin -n 2: {two:.1f} examples/s, start-up included (goal "
        f">= {GOAL_PER_S:g}: {'met' if two >= GOAL_PER_S else 'missed'})"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"figures": figures}, fh, indent=2)
    return 0 if two >= GOAL_PER_S else 1


if __name__ == "__main__":
    sys.exit(main())
