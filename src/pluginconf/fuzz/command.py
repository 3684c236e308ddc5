"""`pluginconf fuzz plugin|host`: a fuzz campaign over pytest (and xdist for -n).

It checks its arguments and that the target starts at all (exit 2 otherwise, with why),
runs the properties through the fuzz pytest plugin, prints each property's result as it
ends, then every failure with its shrunk example and the command that replays it exactly,
and writes the JSON report. Exit 0: no property failed; 1: a property failed; 2: usage.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.markup import escape

from pluginconf.fuzz.campaign import CampaignSettings
from pluginconf.fuzz.model import FuzzProperty, FuzzTarget
from pluginconf.fuzz.pytest_plugin import (
    NODE_PREFIX,
    RESULT_PROPERTY,
    FuzzConfig,
    build_fuzz_config,
)
from pluginconf.fuzz.registry import load_properties
from pluginconf.fuzz.report import fuzz_report
from pluginconf.fuzz.shard import parse_shard
from pluginconf.runner.cli.preflight import PreflightError, check_target
from pluginconf.runner.reports.report import EXIT_FAILURES, EXIT_USAGE, write_json
from pluginconf.runner.reports.result import Result, carried
from pluginconf.runner.targets import DEFAULT_TARGET


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else (words or word + 's')}"


def examples_each(properties: Sequence[FuzzProperty], campaign: CampaignSettings) -> str:
    """How many examples each property runs: without --examples, the costly ones a share."""
    text = f"{plural(campaign.examples, 'example')} each"
    shares = [f"{p.full_id} {campaign.examples_of(p)}" for p in properties if p.scale != 1]
    if shares and not campaign.exact:
        text += f", but {', '.join(shares)} (each example starts processes; --examples N runs N)"
    return text


def _usage(message: str) -> int:
    print(f"pluginconf fuzz: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def list_properties(target: FuzzTarget) -> int:
    for prop in load_properties(target):
        share = "" if prop.scale == 1 else f"  ({prop.scale:g} x the default 100 examples)"
        profile = f"  {prop.profile}" if target is FuzzTarget.PLUGIN else ""
        print(f"{prop.full_id}{profile}{share}  [{' '.join(prop.requirements)}]")
        print(textwrap.fill(prop.summary, 100, initial_indent="    ", subsequent_indent="    "))
    return 0


class FuzzConsole:
    """Receives every share's report (from xdist workers too) and prints it as it ends."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.results: list[Result] = []
        self.errors: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.nodeid.startswith(NODE_PREFIX) or report.when != "call":
            if report.failed and report.nodeid.startswith(NODE_PREFIX):
                self.errors.append(f"{report.nodeid}: {report.longreprtext}")
            return
        result = carried(report, RESULT_PROPERTY)
        if result is None:
            self.errors.append(f"{report.nodeid}: {report.longreprtext}")
            return
        self.results.append(result)
        rate = result.examples / result.duration_s if result.duration_s else 0.0
        mark = "[red]FAILED[/red]" if result.failed else "[green]ok[/green]"
        notes = "".join(f"; {note}" for note in result.notes)
        self.console.print(
            f"{mark} {escape(result.id)}  seed {result.seed}: "
            f"{plural(result.examples, 'example')} in {result.duration_s:.1f}s "
            f"({rate:.1f}/s)" + escape(notes)
        )


def reproduce_command(args: argparse.Namespace, failure: Result) -> str:
    words = ["pluginconf", "fuzz", args.suite, "--property", failure.id]
    if failure.blob:
        words += ["--reproduce", failure.blob]
    if args.profile:
        words += ["--profile", args.profile]
    if args.target_name != DEFAULT_TARGET:
        words += ["--target", args.target_name]
    if args.magic_cookie is not None:
        words += ["--magic-cookie", args.magic_cookie]
    if args.protocol_versions is not None:
        words += ["--protocol-versions", args.protocol_versions]
    words += ["--max-body", str(args.max_body)]
    if args.target:
        words += ["--", *args.target]
    return shlex.join(words)


def run_fuzz(args: argparse.Namespace) -> int:
    target = FuzzTarget(args.suite)
    if args.list:
        return list_properties(target)
    command: list[str] = list(args.target)
    # --shard: the machines of one campaign must agree on its seed; a random one could not.
    if args.shard is not None and args.seed is None:
        try:
            count = parse_shard(args.shard).count
        except ValueError as exc:
            return _usage(str(exc))
        if count > 1:
            return _usage(
                f"--shard {args.shard}: give every shard the same --seed, so that the shards "
                "draw distinct seeds of one campaign"
            )
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    try:
        fuzz = build_fuzz_config(
            args.suite,
            command,
            examples=args.examples,
            seed=seed,
            database=args.db,
            shares=args.workers,
            patterns=args.property,
            reproduce=args.reproduce,
            profile=args.profile,
            max_body=args.max_body,
            start_timeout=args.start_timeout,
            app_target=args.target_name,
            magic_cookie=args.magic_cookie,
            protocol_versions=args.protocol_versions,
            shard=args.shard,
        )
        check_target(fuzz.options)
    except ValueError as exc:
        return _usage(str(exc))
    except PreflightError as exc:
        print(f"pluginconf fuzz: {exc}", file=sys.stderr)
        return EXIT_USAGE
    console = Console(highlight=False, soft_wrap=True)
    console.print(
        f"pluginconf fuzz {args.suite}: {plural(len(fuzz.properties), 'property', 'properties')}"
        f", {examples_each(fuzz.properties, fuzz.campaign)}, seed {seed}, "
        f"{plural(fuzz.shares, 'worker')}" + (f", database {args.db}" if args.db else "")
    )
    if args.shard is not None:
        first = fuzz.shard.first_share(fuzz.shares)
        console.print(
            f"shard {fuzz.shard}: shares {first + 1}-{first + fuzz.shares} of "
            f"{fuzz.shard.total_shares(fuzz.shares)}, seeds {seed + first}-"
            f"{seed + first + fuzz.shares - 1}"
        )
    reporter = FuzzConsole(console)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pluginconf-fuzz-") as workdir:
        status = pytest.main(_pytest_args(args, fuzz, seed, workdir), plugins=[reporter])
    duration = time.monotonic() - started
    failures = [
        replace(r, reproduce=reproduce_command(args, r)) for r in reporter.results if r.failed
    ]
    report = fuzz_report(
        target=args.suite,
        command=fuzz.options.report_target,
        seed=seed,
        workers=fuzz.shares,
        results=reporter.results,
        failures=failures,
        duration_s=duration,
        shard=str(fuzz.shard) if args.shard is not None else None,
    )
    _print_failures(console, report, failures, reporter.errors)
    if args.json:
        write_json(args.json, report)
    if status == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    if failures or reporter.errors or status not in (0, 1):
        return EXIT_FAILURES
    return 0


def _pytest_args(args: argparse.Namespace, fuzz: FuzzConfig, seed: int, workdir: str) -> list[str]:
    ini = Path(workdir, "pytest.ini")
    ini.write_text("[pytest]\n", encoding="utf-8")
    out = [
        "-c", str(ini), "--rootdir", workdir, workdir,
        # pytest's own temporary directories go with the run's, not into TMPDIR.
        "--basetemp", os.path.join(workdir, "basetemp"),
        "-p", "pluginconf.fuzz.pytest_plugin",
        "-p", "no:cacheprovider", "-p", "no:terminal", "-p", "no:asyncio",
        "-p", "no:randomly", "--capture", "no",
        "--pluginconf-fuzz", args.suite,
        "--pluginconf-fuzz-cmd", shlex.join(args.target) if args.target else "reference",
        "--pluginconf-fuzz-seed", str(seed),
        "--pluginconf-fuzz-shares", str(fuzz.shares),
        "--pluginconf-fuzz-max-body", str(args.max_body),
        "--pluginconf-fuzz-start-timeout", str(args.start_timeout),
    ]  # fmt: skip
    if args.examples is not None:
        out += ["--pluginconf-fuzz-examples", str(args.examples)]
    if args.db:
        out += ["--pluginconf-fuzz-db", args.db]
    if args.shard is not None:
        out += ["--pluginconf-fuzz-shard", args.shard]
    for pattern in args.property:
        out += ["--pluginconf-fuzz-property", pattern]
    if args.reproduce:
        out += ["--pluginconf-fuzz-reproduce", args.reproduce]
    if args.profile:
        out += ["--pluginconf-fuzz-profile", args.profile]
    out += ["--pluginconf-fuzz-target", args.target_name]
    if args.magic_cookie is not None:
        out += ["--pluginconf-fuzz-magic-cookie", args.magic_cookie]
    if args.protocol_versions is not None:
        out += ["--pluginconf-fuzz-protocol-versions", args.protocol_versions]
    if fuzz.shares > 1:
        out += ["-n", str(fuzz.shares)]
    return out


def _print_failures(
    console: Console, report: dict[str, Any], failures: list[Result], errors: list[str]
) -> None:
    for failure in failures:
        console.rule(f"[red]{escape(failure.id)}[/red]")
        console.print(escape(failure.message))
        if failure.example:
            console.print("\n[bold]Shrunk example[/bold]\n" + escape(failure.example))
        console.print("\n[bold]Reproduce[/bold]\n  " + escape(failure.reproduce))
    for error in errors:
        console.rule("[red]error[/red]")
        console.print(escape(error))
    failed = len(failures)
    passed = len(report["properties"]) - failed
    console.print(
        f"{passed} passed, {failed} failed, {plural(report['examples'], 'example')} in "
        f"{report['duration_s']:.1f}s ({report['examples_per_s']:.1f} examples/s), "
        f"seed {report['seed']}"
    )
