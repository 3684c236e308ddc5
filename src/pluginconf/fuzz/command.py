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
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.markup import escape

from pluginconf.fuzz.model import FuzzTarget
from pluginconf.fuzz.pytest_plugin import NODE_PREFIX, FuzzConfig, build_fuzz_config, result_of
from pluginconf.fuzz.registry import load_properties
from pluginconf.runner.preflight import PreflightError, check_target
from pluginconf.runner.report import EXIT_FAILURES, EXIT_USAGE, write_json
from pluginconf.runner.targets import DEFAULT_TARGET


def _usage(message: str) -> int:
    print(f"pluginconf fuzz: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def list_properties(target: FuzzTarget) -> int:
    for prop in load_properties(target):
        share = "" if prop.scale == 1 else f"  ({prop.scale:g} x --examples)"
        profile = f"  {prop.profile}" if target is FuzzTarget.PLUGIN else ""
        print(f"{prop.full_id}{profile}{share}  [{' '.join(prop.requirements)}]")
        print(textwrap.fill(prop.summary, 100, initial_indent="    ", subsequent_indent="    "))
    return 0


class FuzzConsole:
    """Receives every share's report (from xdist workers too) and prints it as it ends."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.results: list[dict[str, Any]] = []
        self.errors: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.nodeid.startswith(NODE_PREFIX) or report.when != "call":
            if report.failed and report.nodeid.startswith(NODE_PREFIX):
                self.errors.append(f"{report.nodeid}: {report.longreprtext}")
            return
        result = result_of(report)
        if result is None:
            self.errors.append(f"{report.nodeid}: {report.longreprtext}")
            return
        self.results.append(result)
        failed = result["failure"] is not None
        rate = result["examples"] / result["duration_s"] if result["duration_s"] else 0.0
        mark = "[red]FAILED[/red]" if failed else "[green]ok[/green]"
        notes = "".join(f"; {note}" for note in result.get("notes", []))
        self.console.print(
            f"{mark} {escape(result['property'])}  seed {result['seed']}: "
            f"{result['examples']} examples in {result['duration_s']:.1f}s ({rate:.1f}/s)"
            + escape(notes)
        )


def reproduce_command(args: argparse.Namespace, failure: dict[str, Any]) -> str:
    words = ["pluginconf", "fuzz", args.suite, "--property", failure["property"]]
    if failure["blob"]:
        words += ["--reproduce", failure["blob"]]
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
        )
        check_target(fuzz.options)
    except ValueError as exc:
        return _usage(str(exc))
    except PreflightError as exc:
        print(f"pluginconf fuzz: {exc}", file=sys.stderr)
        return EXIT_USAGE
    console = Console(highlight=False, soft_wrap=True)
    console.print(
        f"pluginconf fuzz {args.suite}: {len(fuzz.properties)} properties, "
        f"{args.examples} examples each, seed {seed}, {fuzz.shares} worker(s)"
        + (f", database {args.db}" if args.db else "")
    )
    reporter = FuzzConsole(console)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pluginconf-fuzz-") as workdir:
        status = pytest.main(_pytest_args(args, fuzz, seed, workdir), plugins=[reporter])
    duration = time.monotonic() - started
    report = _report(args, fuzz, seed, reporter.results, duration)
    _print_failures(console, report, reporter.errors)
    if args.json:
        write_json(args.json, report)
    if status == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    if report["failures"] or reporter.errors or status not in (0, 1):
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
        "--pluginconf-fuzz-examples", str(args.examples),
        "--pluginconf-fuzz-seed", str(seed),
        "--pluginconf-fuzz-shares", str(fuzz.shares),
        "--pluginconf-fuzz-max-body", str(args.max_body),
        "--pluginconf-fuzz-start-timeout", str(args.start_timeout),
    ]  # fmt: skip
    if args.db:
        out += ["--pluginconf-fuzz-db", args.db]
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


def _report(
    args: argparse.Namespace,
    fuzz: FuzzConfig,
    seed: int,
    results: list[dict[str, Any]],
    duration: float,
) -> dict[str, Any]:
    examples = sum(r["examples"] for r in results)
    failures = []
    for r in results:
        if r["failure"] is not None:
            failure = dict(r["failure"])
            failure["seed"] = r["seed"]
            failure["reproduce"] = reproduce_command(args, failure)
            failures.append(failure)
    return {
        "target": args.suite,
        "command": fuzz.options.report_target,
        "examples": examples,
        "examples_per_s": round(examples / duration, 2) if duration else 0.0,
        "seed": seed,
        "workers": fuzz.shares,
        "duration_s": round(duration, 3),
        "properties": results,
        "failures": failures,
    }


def _print_failures(console: Console, report: dict[str, Any], errors: list[str]) -> None:
    for failure in report["failures"]:
        console.rule(f"[red]{escape(failure['property'])}[/red]")
        console.print(escape(failure["message"]))
        if failure["example"]:
            console.print("\n[bold]Shrunk example[/bold]\n" + escape(failure["example"]))
        console.print("\n[bold]Reproduce[/bold]\n  " + escape(failure["reproduce"]))
    for error in errors:
        console.rule("[red]error[/red]")
        console.print(escape(error))
    failed = len(report["failures"])
    passed = len(report["properties"]) - failed
    console.print(
        f"{passed} passed, {failed} failed, {report['examples']} examples in "
        f"{report['duration_s']:.1f}s ({report['examples_per_s']:.1f} examples/s), "
        f"seed {report['seed']}"
    )
