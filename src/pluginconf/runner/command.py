"""`pluginconf plugin`, `pluginconf host` and `pluginconf list`: the runner over pytest.

Each checks its arguments and the selection, starts the target once (a target that cannot
be started at all is exit 2, with the reason), then runs the selected cases with
pytest and the plugin of pytest_plugin.py (xdist for -n), in a private directory with an
empty configuration so that no project's pytest settings apply. It prints its own console
(console.py) and writes the JSON report.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from pluginconf.runner.arguments import DEFAULT_HOST_MAX_BODY, DEFAULT_MAX_BODY
from pluginconf.runner.console import ConsoleReporter
from pluginconf.runner.known_failing import KnownFailing, load_known_failing
from pluginconf.runner.model import Case, Profile
from pluginconf.runner.options import HostSuiteOptions, PluginSuiteOptions
from pluginconf.runner.preflight import PreflightError, check_target
from pluginconf.runner.pytest_plugin import (
    HOST_PROFILE,
    REFERENCE_WORD,
    build_host_options,
    build_options,
)
from pluginconf.runner.registry import Selection, SelectionError, load_cases
from pluginconf.runner.report import EXIT_FAILURES, EXIT_USAGE, exit_code, json_report, write_json
from pluginconf.runner.spec import requirements


def default_workers(cases: int) -> str:
    """One worker per CPU, at most 4 and one per 10 cases: each worker costs a process
    start-up and a shared plugin process, which a few cases do not repay."""
    workers = min(os.cpu_count() or 1, 4, cases // 10)
    return str(workers) if workers >= 2 else "0"


def _usage(suite: str, message: str) -> int:
    print(f"pluginconf {suite}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


@dataclass(frozen=True)
class _Run:
    """One suite run, ready for pytest: what to run, and the suite's own pytest options."""

    suite: str
    options: PluginSuiteOptions | HostSuiteOptions
    profile: Profile
    selected: list[Case]
    known: KnownFailing
    suite_args: list[str]


def run_plugin(args: argparse.Namespace) -> int:
    command: list[str] = list(args.target)
    max_body = DEFAULT_MAX_BODY if args.max_body is None else args.max_body
    try:
        options = build_options(
            command,
            profile=args.profile,
            magic_cookie=args.magic_cookie,
            protocol_versions=args.protocol_versions,
            start_timeout=args.start_timeout,
            max_body=max_body,
        )
        cases = load_cases("plugin")
        profile = options.effective_profile
        selected = Selection(profile, tuple(args.run), tuple(args.skip)).apply(cases)
        known = load_known_failing(args.known_failing, [c.id for c in cases])
    except (ValueError, SelectionError) as exc:
        return _usage("plugin", str(exc))
    if not selected:
        return _usage("plugin", f"no case of the {profile} profile is selected by --run/--skip")
    suite_args = [
        "--pluginconf-plugin-cmd", shlex.join(command) if command else REFERENCE_WORD,
        "--pluginconf-magic-cookie", args.magic_cookie,
        "--pluginconf-protocol-versions", args.protocol_versions,
        "--pluginconf-profile", str(profile),
    ]  # fmt: skip
    run = _Run("plugin", options, profile, selected, known, suite_args)
    return _run_suite(args, run, max_body)


def run_host(args: argparse.Namespace) -> int:
    command: list[str] = list(args.target)
    max_body = DEFAULT_HOST_MAX_BODY if args.max_body is None else args.max_body
    try:
        options = build_host_options(command, start_timeout=args.start_timeout, max_body=max_body)
        cases = load_cases("host")
        selected = Selection(HOST_PROFILE, tuple(args.run), tuple(args.skip)).apply(cases)
        known = load_known_failing(args.known_failing, [c.id for c in cases])
    except (ValueError, SelectionError) as exc:
        return _usage("host", str(exc))
    if not selected:
        return _usage("host", "no host case is selected by --run/--skip")
    suite_args = ["--pluginconf-host-cmd", shlex.join(command) if command else REFERENCE_WORD]
    run = _Run("host", options, HOST_PROFILE, selected, known, suite_args)
    return _run_suite(args, run, max_body)


def _run_suite(args: argparse.Namespace, run: _Run, max_body: int) -> int:
    started = time.monotonic()
    try:
        check_target(run.options)
    except PreflightError as exc:
        print(f"pluginconf {run.suite}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    reporter = ConsoleReporter(run.selected, run.known, args.verbose)
    with tempfile.TemporaryDirectory(prefix="pluginconf-run-") as workdir:
        ini = Path(workdir, "pytest.ini")
        ini.write_text("[pytest]\n", encoding="utf-8")
        pytest_args = [
            "-c", str(ini), "--rootdir", workdir, workdir,
            "-p", "pluginconf.runner.pytest_plugin",
            "-p", "no:cacheprovider", "-p", "no:terminal", "-p", "no:asyncio",
            "--capture", "no",  # the console writes to the real stdout while cases run
            *run.suite_args,
            "--pluginconf-no-preflight",
            "--pluginconf-start-timeout", str(args.start_timeout),
            "--pluginconf-max-body", str(max_body),
        ]  # fmt: skip
        for pattern in args.run:
            pytest_args += ["--pluginconf-run", pattern]
        for pattern in args.skip:
            pytest_args += ["--pluginconf-skip", pattern]
        if args.known_failing:
            pytest_args += ["--pluginconf-known-failing", args.known_failing]
        workers = args.workers if args.workers is not None else default_workers(len(run.selected))
        if workers != "0":
            pytest_args += ["-n", workers]
        if args.junit_xml:
            pytest_args += ["--junitxml", args.junit_xml, "-o", "junit_suite_name=pluginconf"]
        reporter.start()
        try:
            status = pytest.main(pytest_args, plugins=[reporter])
        finally:
            reporter.stop()
    duration = time.monotonic() - started
    reports = reporter.finish()
    reporter.print_summary(reports, duration)
    if args.json:
        report = json_report(
            run.suite, run.options.report_target, str(run.profile), reports, duration
        )
        write_json(args.json, report)
    if status == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    if status in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR):
        name = pytest.ExitCode(status).name.lower().replace("_", " ")
        print(f"pluginconf {run.suite}: the run did not complete ({name})", file=sys.stderr)
        return EXIT_FAILURES
    return exit_code(reports)


def run_list(args: argparse.Namespace) -> int:
    texts = requirements()
    cases = load_cases(args.suite)
    if args.profile:
        cases = [c for c in cases if c.profile == Profile(args.profile)]
    wrap = textwrap.TextWrapper(width=100, initial_indent="    ", subsequent_indent="          ")
    for case in cases:
        print(f"{case.id}  {case.level}  {case.profile}" + ("  heavy" if case.heavy else ""))
        for rid in case.requirements:
            print(wrap.fill(f"{rid:<5} {texts[rid].text}"))
        if args.verbose:
            for name, text in (
                ("Purpose", case.description.purpose),
                ("Procedure", case.description.procedure),
                ("Asserts", case.description.asserts),
            ):
                print(
                    textwrap.fill(
                        f"{name}: {text}", 100, initial_indent="    ", subsequent_indent="      "
                    )
                )
    print(f"{len(cases)} case{'' if len(cases) == 1 else 's'}")
    return 0
