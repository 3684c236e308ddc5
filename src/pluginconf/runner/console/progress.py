"""The console of `pluginconf plugin`: a progress line, the failures, the closing line.

As a pytest plugin object registered in the controlling process only, it receives every
case's report (from xdist workers too) and turns it into a :class:`CaseReport`.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

import pytest
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pluginconf.runner.cli.known_failing import KnownFailing
from pluginconf.runner.console.text import (
    collapse_repeats,
    group_alike,
    more_alike,
    skip_groups,
    slowest,
)
from pluginconf.runner.model import Case, Level, Outcome
from pluginconf.runner.pytest_plugin import NODE_PREFIX, RESULT_PROPERTY
from pluginconf.runner.reports.report import NOT_MET_KEY, CaseReport, report_for, summarize
from pluginconf.runner.reports.result import Result, carried

_XDIST_MAXFAIL = re.compile(r"stopping after \d+ failures")
_MARK = {
    Outcome.PASSED: ".",
    Outcome.FAILED: "F",
    Outcome.SKIPPED: "s",
    Outcome.XFAILED: "x",
    Outcome.XPASSED: "X",
    Outcome.ERROR: "E",
    Outcome.NOT_MET: "r",
}
_STYLE = {
    Outcome.PASSED: "green",
    Outcome.FAILED: "red",
    Outcome.SKIPPED: "yellow",
    Outcome.XFAILED: "yellow",
    Outcome.XPASSED: "red",
    Outcome.ERROR: "red",
    Outcome.NOT_MET: "yellow",
}


def _body(report: CaseReport) -> str:
    return report.message or (
        f"known failing: {report.known_failing}" if report.known_failing else ""
    )


class ConsoleReporter:
    def __init__(
        self,
        cases: Sequence[Case],
        known: KnownFailing,
        verbose: bool,
        stream: IO[str] | None = None,
    ) -> None:
        self._cases = {c.id: c for c in cases}
        self._order = [c.id for c in cases]
        self._known = known
        self._verbose = verbose
        self.console = Console(file=stream or sys.stdout, highlight=False, soft_wrap=True)
        self.reports: dict[str, CaseReport] = {}
        self._started = time.monotonic()
        self._progress: Progress | None = None
        self._task: Any = None
        self._marks = 0
        # Why pytest-xdist ended the run as interrupted, when it did.
        self._interrupted_because = ""

    # -- progress ----------------------------------------------------------------------------

    def start(self) -> None:
        if self.console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]pluginconf"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[last]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._task = self._progress.add_task("cases", total=len(self._order), last="")
            self._progress.start()

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        elif self._marks:
            self.console.print()

    def _advance(self, report: CaseReport) -> None:
        if self._verbose:
            # A skip says why on its line too.
            why = report.message.strip().splitlines()[0] if report.message.strip() else ""
            reason = f"  {escape(why)}" if report.outcome is Outcome.SKIPPED and why else ""
            self.console.print(
                f"[{_STYLE[report.outcome]}]{report.outcome.upper():8}[/] {escape(report.id)} "
                f"[dim]({report.duration_s:.2f}s)[/]{reason}"
            )
        if self._progress is not None:
            self._progress.update(self._task, advance=1, last=report.id)
        elif not self._verbose:
            self.console.print(_MARK[report.outcome], end="")
            self._marks += 1

    # -- pytest hooks ------------------------------------------------------------------------

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.nodeid.startswith(NODE_PREFIX):
            return
        case_id = report.nodeid[len(NODE_PREFIX) :]
        case = self._cases.get(case_id)
        if case is None or case_id in self.reports:
            return
        result = carried(report, RESULT_PROPERTY)
        if result is None and (report.when == "call" or report.failed):
            # No result: the worker running it died, or pytest failed around it.
            result = Result(case_id, Outcome.ERROR, str(report.longrepr), report.duration)
        if result is None:
            return
        made = report_for(case, result, self._known.reason_for(case_id))
        self.reports[case_id] = made
        self._advance(made)

    @pytest.hookimpl
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self._interrupted_because = str(excinfo.value)

    @property
    def stopped_by_maxfail(self) -> bool:
        """Whether xdist stopped the run for --maxfail: it ends such a run as interrupted
        ("stopping after N failures"), not as a signal does."""
        return _XDIST_MAXFAIL.match(self._interrupted_because) is not None

    # -- the end -----------------------------------------------------------------------------

    def finish(self, interrupted: bool = False) -> list[CaseReport]:
        """Every selected case's report, in case order; those never run are errors, unless the
        run was interrupted: then only the cases that ran."""
        if interrupted:
            return [self.reports[i] for i in self._order if i in self.reports]
        for case_id in self._order:
            if case_id not in self.reports:
                case = self._cases[case_id]
                unrun = Result(case_id, Outcome.ERROR, "not run: the run ended before this case")
                self.reports[case_id] = report_for(case, unrun, None)
        return [self.reports[i] for i in self._order]

    def _print_skips(self, reports: Sequence[CaseReport]) -> None:
        """Why cases were skipped, one entry per reason (as pytest's -rs)."""
        groups = skip_groups([r for r in reports if r.outcome is Outcome.SKIPPED])
        if not groups:
            return
        self.console.rule("[bold]skipped", style="yellow")
        for reason, ids in groups:
            self.console.print(f"SKIPPED {escape(', '.join(ids))}")
            self.console.print("        " + escape(reason))

    def _print_durations(self, reports: Sequence[CaseReport], count: int) -> None:
        title = (
            "every case, slowest first"
            if count == 0 or count >= len(reports)
            else (f"the {count} slowest case{'' if count == 1 else 's'}")
        )
        self.console.rule(f"[bold]{title}", style="blue")
        for line in slowest(reports, count):
            self.console.print(escape(line))

    def print_summary(
        self, reports: Sequence[CaseReport], duration_s: float, durations: int | None = None
    ) -> None:
        sections = [
            (
                "FAILED",
                [r for r in reports if r.outcome is Outcome.FAILED and r.level is Level.MUST],
            ),
            ("ERROR", [r for r in reports if r.outcome is Outcome.ERROR]),
            ("XPASSED", [r for r in reports if r.outcome is Outcome.XPASSED]),
            ("NOT MET", [r for r in reports if r.outcome is Outcome.NOT_MET]),
        ]
        titles = {
            "FAILED": "failures",
            "ERROR": "errors of the suite itself",
            "XPASSED": "listed as known failing, but passed (remove them from the list)",
            "NOT MET": "recommendations not met: SHOULD requirements, and rules stricter than "
            "the target's (these do not fail the run)",
        }
        for key, items in sections:
            if not items:
                continue
            style = "yellow" if key == "NOT MET" else "red"
            self.console.rule(f"[bold]{titles[key]}", style=style)
            # Cases that failed for one cause (the same evidence) print it once.
            for first, *rest in group_alike(items, _body):
                cited = " ".join(first.violated or first.requirements)
                head = f"{key:7} {first.id}  [{first.level} {cited}] ({first.origin})"
                self.console.print(f"[bold]{escape(head)}[/]")
                for line in _body(first).splitlines():
                    self.console.print("        " + escape(collapse_repeats(line)))
                if rest:
                    self.console.print("        " + escape(more_alike(key, rest)))
        self._print_skips(reports)
        if durations is not None:
            self._print_durations(reports, durations)
        if self._verbose:
            for r in reports:
                if r.outcome is Outcome.XFAILED:
                    self.console.print(f"XFAILED {escape(r.id)}  ({escape(r.known_failing or '')})")
        counts = summarize(reports, duration_s)
        extra = [f"{counts[k]} {k}" for k in ("xfailed", "xpassed", "errors") if counts[k]]
        self.console.print(
            f"{len(reports)} case{'' if len(reports) == 1 else 's'} in {duration_s:.1f}s"
            + (f" ({', '.join(extra)})" if extra else "")
        )
        # The closing line is a contract: N passed, N failed, N skipped.
        not_met = counts[NOT_MET_KEY]
        self.console.print(
            f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
            + (
                f", {not_met} recommendation{'' if not_met == 1 else 's'} not met"
                if not_met
                else ""
            )
        )
