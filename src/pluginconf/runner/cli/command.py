"""`pluginconf plugin` and `pluginconf host`: the runner over pytest.

Each checks its arguments, the selection and the report paths, starts the target once (a
target that cannot be started at all is exit 2, with the reason), then runs the selected
cases with pytest and the plugin of pytest_plugin.py (xdist for -n), in a private directory
with an empty configuration so that no project's pytest settings apply. It prints its own
console (console.py) and writes the reports, whatever happened: after a start failure (exit
2) and after SIGINT or SIGTERM (exit 130 or 143, with the cases that ran) too.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from pluginconf.runner.cli.arguments import DEFAULT_HOST_MAX_BODY, DEFAULT_MAX_BODY
from pluginconf.runner.cli.known_failing import KnownFailing, load_known_failing
from pluginconf.runner.cli.lastfailed import LastFailed, cache_dir, narrow
from pluginconf.runner.cli.lastfailed import key as lastfailed_key
from pluginconf.runner.cli.preflight import PreflightError, check_target
from pluginconf.runner.cli.shard import Shard, take_shard
from pluginconf.runner.console.progress import ConsoleReporter
from pluginconf.runner.console.waiting import start_countdown
from pluginconf.runner.interrupt import sigterm_interrupts
from pluginconf.runner.model import Case, Profile
from pluginconf.runner.options import (
    HostSuiteOptions,
    PluginSuiteOptions,
    build_host_options,
    build_options,
)
from pluginconf.runner.pytest_plugin import HOST_PROFILE, REFERENCE_WORD
from pluginconf.runner.registry import Selection, SelectionError, load_cases
from pluginconf.runner.reports.html import write_html
from pluginconf.runner.reports.junit import write_junit
from pluginconf.runner.reports.report import (
    EXIT_FAILURES,
    EXIT_USAGE,
    CaseReport,
    RunInfo,
    exit_code,
    json_report,
    write_json,
)

EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM


def default_workers(cases: int) -> str:
    """One worker per CPU, at most 4 and one per 10 cases: each worker costs a process
    start-up and a shared plugin process, which a few cases do not repay."""
    workers = min(os.cpu_count() or 1, 4, cases // 10)
    return str(workers) if workers >= 2 else "0"


def usage_error(suite: str, message: str) -> int:
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
    shard: Shard | None = None


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


def _check_report_paths(args: argparse.Namespace) -> None:
    for option, path in (
        ("--json", args.json),
        ("--junit-xml", args.junit_xml),
        ("--html", args.html),
    ):
        check_report_path(option, path)


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
        _check_report_paths(args)
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
        if not selected:
            raise ValueError(f"no case of the {profile} profile is selected by --run/--skip")
        shard, selected = _sharded(args.shard, selected)
    except (ValueError, SelectionError) as exc:
        return usage_error("plugin", str(exc))
    suite_args = [
        "--pluginconf-plugin-cmd", shlex.join(command) if command else REFERENCE_WORD,
        "--pluginconf-magic-cookie", str(options.magic_cookie),
        "--pluginconf-protocol-versions", ",".join(map(str, options.protocol_versions)),
        "--pluginconf-profile", str(profile),
        *_target_args(args),
    ]  # fmt: skip
    run = _Run("plugin", options, profile, selected, known, suite_args, shard)
    return _run_suite(args, run, max_body)


def run_host(args: argparse.Namespace) -> int:
    command: list[str] = list(args.target)
    max_body = DEFAULT_HOST_MAX_BODY if args.max_body is None else args.max_body
    try:
        _check_report_paths(args)
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
        if not selected:
            raise ValueError("no host case is selected by --run/--skip")
        shard, selected = _sharded(args.shard, selected)
    except (ValueError, SelectionError) as exc:
        return usage_error("host", str(exc))
    suite_args = [
        "--pluginconf-host-cmd",
        shlex.join(command) if command else REFERENCE_WORD,
        *_target_args(args),
    ]
    run = _Run("host", options, HOST_PROFILE, selected, known, suite_args, shard)
    return _run_suite(args, run, max_body)


def _sharded(shard: Shard | None, selected: list[Case]) -> tuple[Shard | None, list[Case]]:
    """--shard: this run's slice of the selection, and the shard with the selection's size."""
    if shard is None:
        return None, selected
    return replace(shard, of_cases=len(selected)), take_shard(selected, shard)


def _info(args: argparse.Namespace, run: _Run, started: float) -> RunInfo:
    return RunInfo(
        suite=run.suite,
        target=run.options.report_target,
        profile=str(run.profile),
        target_name=run.options.target.name,
        strict=run.options.strict,
        started_at=started,
        shard=run.shard,
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
            "maxfail": args.maxfail,
            "last_failed": args.last_failed,
            "shard": str(run.shard) if run.shard is not None else None,
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


def _last_failed(args: argparse.Namespace, run: _Run) -> tuple[_Run, LastFailed, str]:
    """The run narrowed to the cases that failed last time under --last-failed; the cache and
    this run's key in it."""
    cache = LastFailed(cache_dir(args.cache_dir))
    run_key = lastfailed_key(run.suite, run.options.report_target, run.options.target.name)
    if args.last_failed:
        selected, said = narrow(run.selected, cache.failed(run_key), cache.path)
        print(f"pluginconf {run.suite}: {said}", file=sys.stderr)
        run = replace(run, selected=selected)
    return run, cache, run_key


def _waiting_for(suite: str) -> str:
    return (
        "the plugin's handshake" if suite == "plugin" else "the host adapter to serve HostControl"
    )


def _run_suite(args: argparse.Namespace, run: _Run, max_body: int) -> int:
    started_wall = time.time()
    started = time.monotonic()
    run, cache, run_key = _last_failed(args, run)
    info = _info(args, run, started_wall)
    try:
        with start_countdown(_waiting_for(run.suite), args.start_timeout):
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
    if run.shard is not None:
        print(
            f"pluginconf {run.suite}: shard {run.shard}: {len(run.selected)} of the "
            f"{run.shard.of_cases} selected cases"
        )
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
        # Narrowed here (--shard, --last-failed): pytest gets the ids this run keeps, so that
        # nothing is sliced twice.
        narrowed = args.last_failed or run.shard is not None
        patterns = [c.id for c in run.selected] if narrowed else args.run
        for pattern in patterns:
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
        if args.maxfail:
            pytest_args += ["--maxfail", str(args.maxfail)]
        reporter.start()
        with sigterm_interrupts() as signals:
            try:
                status = pytest.main(pytest_args, plugins=[reporter])
            except KeyboardInterrupt:
                status = pytest.ExitCode.INTERRUPTED
            finally:
                reporter.stop()
        # Under xdist, a stop for --maxfail ends as "interrupted" too.
        if status == pytest.ExitCode.INTERRUPTED and not reporter.stopped_by_maxfail:
            interrupted_by = signals[0] if signals else "SIGINT"
    duration = time.monotonic() - started
    stopped = not interrupted_by and _stopped_early(args, reporter, run)
    reports = reporter.finish(interrupted=bool(interrupted_by) or stopped)
    reporter.print_summary(reports, duration, args.durations)
    unwritten = cache.record(run_key, reports)
    if unwritten:
        print(
            f"pluginconf {run.suite}: could not record failures for --last-failed: {unwritten}",
            file=sys.stderr,
        )
    not_run = [c.id for c in run.selected if c.id not in {r.id for r in reports}]
    if interrupted_by:
        code = EXIT_SIGTERM if interrupted_by == "SIGTERM" else EXIT_SIGINT
        print(
            f"interrupted ({interrupted_by}): {_cases(len(not_run))} not run; the reports hold "
            f"the {_cases(len(reports))} that ran",
            file=sys.stderr,
        )
        info = info.ended(code, f"interrupted by {interrupted_by}", not_run)
        _write_reports(args, info, reports, duration)
        return code
    if stopped:
        reason = f"stopped after {_failures(args.maxfail)} (--maxfail {args.maxfail})"
        print(f"{reason}: {_cases(len(not_run))} not run", file=sys.stderr)
        code = exit_code(reports)
        _write_reports(args, info.ended(code, reason, not_run), reports, duration)
        return code
    if status == pytest.ExitCode.USAGE_ERROR:
        info = info.ended(EXIT_USAGE, "pytest refused the run's options")
        _write_reports(args, info, reports, duration)
        return EXIT_USAGE
    if status == pytest.ExitCode.INTERNAL_ERROR:
        print(f"pluginconf {run.suite}: the run did not complete (internal error)", file=sys.stderr)
        info = info.ended(EXIT_FAILURES, "the run did not complete (internal error)")
        _write_reports(args, info, reports, duration)
        return EXIT_FAILURES
    code = exit_code(reports)
    _write_reports(args, info.ended(code, ""), reports, duration)
    return code


def _cases(count: int) -> str:
    return f"{count} case{'' if count == 1 else 's'}"


def _failures(count: int) -> str:
    return f"{count} failure{'' if count == 1 else 's'}"


def _stopped_early(args: argparse.Namespace, reporter: ConsoleReporter, run: _Run) -> bool:
    """Whether -x/--maxfail ended the run: enough failures, and cases left unrun."""
    if not args.maxfail:
        return False
    failures = sum(1 for r in reporter.reports.values() if r.fails_run)
    return failures >= args.maxfail and len(reporter.reports) < len(run.selected)


def _write_reports(
    args: argparse.Namespace, info: RunInfo, reports: list[CaseReport], duration_s: float
) -> None:
    """Every report asked for, each made from the JSON report."""
    report = json_report(info, reports, duration_s)
    if args.json:
        write_json(args.json, report)
    if args.junit_xml:
        write_junit(args.junit_xml, report)
    if args.html:
        write_html(args.html, report)
