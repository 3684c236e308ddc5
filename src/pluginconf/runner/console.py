"""The console of `pluginconf plugin`: a progress line, the failures, the closing line.

As a pytest plugin object registered in the controlling process only, it receives every
case's report (from xdist workers too) and turns it into a :class:`CaseReport`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import IO, Any

import pytest
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pluginconf.runner.known_failing import KnownFailing
from pluginconf.runner.model import Case, Level, Outcome
from pluginconf.runner.pytest_plugin import NODE_PREFIX, result_of
from pluginconf.runner.report import NOT_MET_KEY, CaseReport, report_for, summarize

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
            self.console.print(
                f"[{_STYLE[report.outcome]}]{report.outcome.upper():8}[/] {escape(report.id)} "
                f"[dim]({report.duration_s:.2f}s)[/]"
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
        result = result_of(report)
        violated: list[str] = []
        origin = ""
        if result is not None:
            outcome, message = Outcome(result["outcome"]), str(result["message"])
            duration = float(result["duration_s"])
            violated = list(result.get("violated", []))
            origin = str(result.get("origin", ""))
        elif report.when == "call" or report.failed:
            # No result: the worker running it died, or pytest failed around it.
            outcome, message, duration = Outcome.ERROR, str(report.longrepr), report.duration
        else:
            return
        made = report_for(
            case,
            outcome,
            duration,
            message,
            self._known.reason_for(case_id),
            violated=violated,
            origin=origin,
        )
        self.reports[case_id] = made
        self._advance(made)

    # -- the end -----------------------------------------------------------------------------

    def finish(self, interrupted: bool = False) -> list[CaseReport]:
        """Every selected case's report, in case order; those never run are errors, unless the
        run was interrupted: then only the cases that ran."""
        if interrupted:
            return [self.reports[i] for i in self._order if i in self.reports]
        for case_id in self._order:
            if case_id not in self.reports:
                case = self._cases[case_id]
                self.reports[case_id] = report_for(
                    case,
                    Outcome.ERROR,
                    0.0,
                    "not run: the run ended before this case",
                    None,
                )
        return [self.reports[i] for i in self._order]

    def print_summary(self, reports: Sequence[CaseReport], duration_s: float) -> None:
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
            for r in items:
                cited = " ".join(r.violated or r.requirements)
                head = f"{key:7} {r.id}  [{r.level} {cited}] ({r.origin})"
                self.console.print(f"[bold]{escape(head)}[/]")
                body = r.message or (f"known failing: {r.known_failing}" if r.known_failing else "")
                for line in body.splitlines():
                    self.console.print("        " + escape(line))
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
