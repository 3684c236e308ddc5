"""`pluginconf plugin`, `pluginconf host` and `pluginconf list`: the runner over pytest.

Each checks its arguments, the selection and the report paths, starts the target once (a
target that cannot be started at all is exit 2, with the reason), then runs the selected
cases with pytest and the plugin of pytest_plugin.py (xdist for -n), in a private directory
with an empty configuration so that no project's pytest settings apply. It prints its own
console (console.py) and writes the reports, whatever happened: after a start failure (exit
2) and after SIGINT or SIGTERM (exit 130 or 143, with the cases that ran) too.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType

import psutil
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
from pluginconf.runner.report import (
    EXIT_FAILURES,
    EXIT_USAGE,
    CaseReport,
    RunInfo,
    exit_code,
    json_report,
    write_json,
    write_junit_failure,
)
from pluginconf.runner.spec import requirements
from pluginconf.runner.targets import TARGETS

EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM


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


def check_report_path(option: str, path: str | None) -> None:
    """A report path that cannot be written is a usage error before the run, not a
    traceback after it."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{option} {path}: is a directory; give a file name")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"{option} {path}: the directory {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ValueError(f"{option} {path}: cannot write there (permission denied)")


def _target_args(args: argparse.Namespace) -> list[str]:
    out = ["--pluginconf-target", args.target_name]
    if args.strict:
        out.append("--pluginconf-strict")
    if args.auto_mtls is not None:
        out += ["--pluginconf-auto-mtls", args.auto_mtls]
    return out


def run_plugin(args: argparse.Namespace) -> int:
    command: list[str] = list(args.target)
    max_body = DEFAULT_MAX_BODY if args.max_body is None else args.max_body
    try:
        check_report_path("--json", args.json)
        check_report_path("--junit-xml", args.junit_xml)
        options = build_options(
            command,
            profile=args.profile,
            magic_cookie=args.magic_cookie,
            protocol_versions=args.protocol_versions,
            start_timeout=args.start_timeout,
            max_body=max_body,
            target=args.target_name,
            strict=args.strict,
            auto_mtls=args.auto_mtls,
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
        "--pluginconf-magic-cookie", str(options.magic_cookie),
        "--pluginconf-protocol-versions", ",".join(map(str, options.protocol_versions)),
        "--pluginconf-profile", str(profile),
        *_target_args(args),
    ]  # fmt: skip
    run = _Run("plugin", options, profile, selected, known, suite_args)
    return _run_suite(args, run, max_body)


def run_host(args: argparse.Namespace) -> int:
    command: list[str] = list(args.target)
    max_body = DEFAULT_HOST_MAX_BODY if args.max_body is None else args.max_body
    try:
        check_report_path("--json", args.json)
        check_report_path("--junit-xml", args.junit_xml)
        options = build_host_options(
            command,
            start_timeout=args.start_timeout,
            max_body=max_body,
            target=args.target_name,
            strict=args.strict,
            auto_mtls=args.auto_mtls,
        )
        cases = load_cases("host")
        selected = Selection(HOST_PROFILE, tuple(args.run), tuple(args.skip)).apply(cases)
        known = load_known_failing(args.known_failing, [c.id for c in cases])
    except (ValueError, SelectionError) as exc:
        return _usage("host", str(exc))
    if not selected:
        return _usage("host", "no host case is selected by --run/--skip")
    suite_args = [
        "--pluginconf-host-cmd",
        shlex.join(command) if command else REFERENCE_WORD,
        *_target_args(args),
    ]
    run = _Run("host", options, HOST_PROFILE, selected, known, suite_args)
    return _run_suite(args, run, max_body)


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that the run ends as on Ctrl-C."""


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[list[str]]:
    """While the run lasts, SIGTERM interrupts it as a terminal's Ctrl-C does; the list
    names the signal. The workers (xdist) get SIGINT too, so that each ends its case through
    its own clean-up (asyncio.Runner cancels the case on SIGINT) instead of being killed with
    its plugin processes and directories left behind; then this process gets it."""
    received: list[str] = []

    def on_term(signum: int, frame: FrameType | None) -> None:
        received.append("SIGTERM")
        for child in psutil.Process().children():
            with contextlib.suppress(psutil.Error):
                child.send_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def _info(args: argparse.Namespace, run: _Run, started: float) -> RunInfo:
    return RunInfo(
        suite=run.suite,
        target=run.options.report_target,
        profile=str(run.profile),
        target_name=run.options.target.name,
        strict=run.options.strict,
        started_at=started,
        options={
            "target": run.options.target.name,
            "strict": run.options.strict,
            "auto_mtls": str(run.options.auto_mtls),
            "run": list(args.run),
            "skip": list(args.skip),
            "known_failing": args.known_failing,
            "start_timeout_s": args.start_timeout,
            "max_body": run.options.max_body,
            "workers": args.workers,
            **(
                {
                    "magic_cookie": str(run.options.magic_cookie),
                    "protocol_versions": list(run.options.protocol_versions),
                    # Found by the preflight: the plugin serves one fixed address.
                    "one_process_at_a_time": run.options.one_process_at_a_time,
                }
                if isinstance(run.options, PluginSuiteOptions)
                else {}
            ),
        },
    )


def _run_suite(args: argparse.Namespace, run: _Run, max_body: int) -> int:
    started_wall = time.time()
    started = time.monotonic()
    info = _info(args, run, started_wall)
    try:
        run = replace(run, options=check_target(run.options))
    except PreflightError as exc:
        reason = str(exc)
        print(f"pluginconf {run.suite}: {reason}", file=sys.stderr)
        info = info.ended(EXIT_USAGE, f"the run did not start: {reason}")
        _write_reports(args, info, [], time.monotonic() - started)
        return EXIT_USAGE
    except KeyboardInterrupt:
        info = info.ended(EXIT_SIGINT, "interrupted (SIGINT) before the first case")
        _write_reports(args, info, [], time.monotonic() - started)
        return EXIT_SIGINT
    info = _info(args, run, started_wall)  # with what the preflight found
    reporter = ConsoleReporter(run.selected, run.known, args.verbose)
    interrupted_by = ""
    with tempfile.TemporaryDirectory(prefix="pluginconf-run-") as workdir:
        ini = Path(workdir, "pytest.ini")
        ini.write_text("[pytest]\n", encoding="utf-8")
        pytest_args = [
            "-c", str(ini), "--rootdir", workdir, workdir,
            # pytest's own temporary directories go with the run's, not into TMPDIR.
            "--basetemp", os.path.join(workdir, "basetemp"),
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
        if getattr(run.options, "one_process_at_a_time", False):
            # Two processes of a plugin that serves a fixed address would answer each
            # other's calls; the run keeps one at a time.
            print(
                f"pluginconf {run.suite}: the plugin serves one fixed address; the cases run "
                "one plugin process at a time, in one worker",
                file=sys.stderr,
            )
            pytest_args.append("--pluginconf-one-process-at-a-time")
            workers = "0"
        else:
            workers = (
                args.workers if args.workers is not None else default_workers(len(run.selected))
            )
        if workers != "0":
            pytest_args += ["-n", workers]
        if args.junit_xml:
            pytest_args += ["--junitxml", args.junit_xml, "-o", "junit_suite_name=pluginconf"]
        reporter.start()
        with _sigterm_interrupts() as signals:
            try:
                status = pytest.main(pytest_args, plugins=[reporter])
            except KeyboardInterrupt:
                status = pytest.ExitCode.INTERRUPTED
            finally:
                reporter.stop()
        if status == pytest.ExitCode.INTERRUPTED:
            interrupted_by = signals[0] if signals else "SIGINT"
    duration = time.monotonic() - started
    reports = reporter.finish(interrupted=bool(interrupted_by))
    reporter.print_summary(reports, duration)
    if interrupted_by:
        code = EXIT_SIGTERM if interrupted_by == "SIGTERM" else EXIT_SIGINT
        not_run = [c.id for c in run.selected if c.id not in {r.id for r in reports}]
        print(
            f"pluginconf {run.suite}: interrupted ({interrupted_by}); {len(reports)} case(s) "
            f"ran, {len(not_run)} not run; the reports hold those that ran",
            file=sys.stderr,
        )
        info = info.ended(code, f"interrupted by {interrupted_by}", not_run)
        _write_reports(args, info, reports, duration, junit_written=True)
        return code
    if status == pytest.ExitCode.USAGE_ERROR:
        info = info.ended(EXIT_USAGE, "pytest refused the run's options")
        _write_reports(args, info, reports, duration)
        return EXIT_USAGE
    if status == pytest.ExitCode.INTERNAL_ERROR:
        print(f"pluginconf {run.suite}: the run did not complete (internal error)", file=sys.stderr)
        info = info.ended(EXIT_FAILURES, "the run did not complete (internal error)")
        _write_reports(args, info, reports, duration, junit_written=True)
        return EXIT_FAILURES
    code = exit_code(reports)
    _write_reports(args, info.ended(code, ""), reports, duration, junit_written=True)
    return code


def _write_reports(
    args: argparse.Namespace,
    info: RunInfo,
    reports: list[CaseReport],
    duration_s: float,
    junit_written: bool = False,
) -> None:
    """The JSON report, and a JUnit file when pytest wrote none (the run never began)."""
    if args.json:
        write_json(args.json, json_report(info, reports, duration_s))
    if args.junit_xml and (not junit_written or not Path(args.junit_xml).exists()):
        write_junit_failure(args.junit_xml, info, reports)


def run_list(args: argparse.Namespace) -> int:
    if args.suite == "targets":
        return _list_targets()
    texts = requirements()
    cases = load_cases(args.suite)
    if args.profile:
        cases = [c for c in cases if c.profile == Profile(args.profile)]
    wrap = textwrap.TextWrapper(width=100, initial_indent="    ", subsequent_indent="          ")
    for case in cases:
        print(f"{case.id}  {case.level}  {case.profile}" + ("  heavy" if case.heavy else ""))
        for rid in case.requirements:
            requirement = texts[rid]
            print(wrap.fill(f"{rid:<5} [{requirement.origin_label}] {requirement.text}"))
            if args.verbose and requirement.rationale:
                print(wrap.fill(f"      why: {requirement.rationale}"))
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


def _list_targets() -> int:
    wrap = textwrap.TextWrapper(width=100, initial_indent="    ", subsequent_indent="    ")
    for target in TARGETS:
        decisive = (
            "every rule"
            if not target.go_plugin_based
            else "+".join(sorted(str(o) for o in target.decisive))
        )
        print(f"{target.name}")
        print(wrap.fill(target.summary))
        print(f"    cookie: {target.magic_cookie}")
        print(f"    protocol versions: {','.join(map(str, target.protocol_versions))}")
        print(
            f"    profile: {target.profile}   AutoMTLS: {target.auto_mtls}   "
            f"protocol: {target.protocol}"
        )
        print(f"    decides the run: {decisive}")
        if target.env:
            print("    environment: " + " ".join(f"{k}={v}" for k, v in target.env))
        print(wrap.fill(f"source: {target.source}"))
    print(f"{len(TARGETS)} targets")
    return 0
