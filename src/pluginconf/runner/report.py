"""Results as a run reports them: per case, the summary, the JSON report, the exit status."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pluginconf import __version__
from pluginconf.runner.model import Case, Level, Outcome
from pluginconf.runner.spec import origins_label, requirements

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2

# The summary's keys, in the contract's order (../shared/DESIGN.md), then ours.
SUMMARY_KEYS = ("passed", "failed", "skipped", "xfailed", "xpassed", "errors")
NOT_MET_KEY = "recommendations_not_met"


@dataclass(frozen=True)
class CaseReport:
    id: str
    requirements: tuple[str, ...]
    level: Level
    profile: str
    outcome: Outcome
    duration_s: float
    message: str = ""
    known_failing: str | None = None  # the reason, when listed in --known-failing
    # Where the requirements the verdict rests on come from: those a failure broke, else
    # those the case cites ("go-plugin", "pluginconf", "go-plugin+pluginconf", ...).
    origin: str = ""
    violated: tuple[str, ...] = ()  # for a failure or a recommendation not met

    @property
    def fails_run(self) -> bool:
        return self.outcome in (Outcome.FAILED, Outcome.ERROR, Outcome.XPASSED)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "requirement": list(self.requirements),
            "level": str(self.level),
            "outcome": str(self.outcome),
            "duration_s": round(self.duration_s, 4),
            "message": self.message,
            "origin": self.origin,
            "profile": self.profile,
            **({"violated": list(self.violated)} if self.violated else {}),
            **({"known_failing": self.known_failing} if self.known_failing is not None else {}),
        }


def final_outcome(outcome: Outcome, known_failing: str | None) -> Outcome:
    """A known-failing case's outcome: failures become xfailed, a pass becomes xpassed."""
    if known_failing is None:
        return outcome
    if outcome in (Outcome.FAILED, Outcome.NOT_MET, Outcome.ERROR):
        return Outcome.XFAILED
    if outcome is Outcome.PASSED:
        return Outcome.XPASSED
    return outcome


def report_for(
    case: Case,
    outcome: Outcome,
    duration_s: float,
    message: str,
    known_failing: str | None,
    *,
    violated: Sequence[str] = (),
    origin: str = "",
) -> CaseReport:
    """The report of a case whose ``outcome`` is already judged (verdict.py)."""
    if not origin:
        known = requirements()
        origin = origins_label({known[r].origin for r in (violated or case.requirements)})
    return CaseReport(
        id=case.id,
        requirements=case.requirements,
        level=case.level,
        profile=str(case.profile),
        outcome=final_outcome(outcome, known_failing),
        duration_s=duration_s,
        message=message,
        known_failing=known_failing,
        origin=origin,
        violated=tuple(violated),
    )


def summarize(reports: Iterable[CaseReport], duration_s: float) -> dict[str, Any]:
    counts = {key: 0 for key in (*SUMMARY_KEYS, NOT_MET_KEY)}
    for report in reports:
        if report.outcome is Outcome.ERROR:
            key = "errors"
        elif report.outcome is Outcome.NOT_MET:
            key = NOT_MET_KEY
        else:
            key = str(report.outcome)
        counts[key] += 1
    return {**counts, "duration_s": round(duration_s, 3)}


def exit_code(reports: Iterable[CaseReport]) -> int:
    """0 when no decisive failure, no error and nothing listed as known failing passed."""
    return EXIT_FAILURES if any(r.fails_run for r in reports) else EXIT_OK


# Bumped when a key changes meaning; new keys do not bump it.
SCHEMA_VERSION = 2


@dataclass(frozen=True)
class RunInfo:
    """What a report says about the run as a whole."""

    suite: str
    target: Sequence[str]  # the command under test
    profile: str
    target_name: str  # the application preset (--target)
    strict: bool
    started_at: float  # seconds since the epoch
    options: dict[str, Any] = field(default_factory=dict)
    completed: bool = True
    exit_status: int | None = None
    reason: str = ""  # why the run stopped early, when it did
    not_run: tuple[str, ...] = ()

    def ended(self, exit_status: int, reason: str, not_run: Sequence[str] = ()) -> RunInfo:
        return replace(
            self,
            completed=not reason,
            exit_status=exit_status,
            reason=reason,
            not_run=tuple(not_run),
        )


def json_report(info: RunInfo, reports: Sequence[CaseReport], duration_s: float) -> dict[str, Any]:
    return {
        "suite": info.suite,
        "target": list(info.target),
        "profile": info.profile,
        "summary": summarize(reports, duration_s),
        "cases": [r.to_json() for r in reports],
        "schema_version": SCHEMA_VERSION,
        "pluginconf_version": __version__,
        "started_at": datetime.fromtimestamp(info.started_at, UTC).isoformat(timespec="seconds"),
        "target_name": info.target_name,
        "strict": info.strict,
        "options": info.options,
        "run": {
            "completed": info.completed,
            "exit_status": info.exit_status,
            "reason": info.reason,
            "not_run": list(info.not_run),
        },
    }


def write_json(path: str, report: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2, ensure_ascii=False)
        fh.write("\n")


def write_junit_failure(path: str, info: RunInfo, reports: Sequence[CaseReport]) -> None:
    """A JUnit file for a run pytest could not report: the cases that ran, and one errored
    test case that says why the run stopped, so that CI shows the reason, not "no results"."""
    suites = ET.Element("testsuites")
    suite = ET.SubElement(suites, "testsuite", name=f"pluginconf {info.suite}")
    errors = 0
    for report in reports:
        element = ET.SubElement(
            suite,
            "testcase",
            classname=f"pluginconf.{info.suite}",
            name=report.id,
            time=f"{report.duration_s:.3f}",
        )
        if report.outcome in (Outcome.FAILED, Outcome.ERROR, Outcome.XPASSED):
            ET.SubElement(element, "failure", message=report.message[:200]).text = report.message
        elif report.outcome is Outcome.SKIPPED:
            ET.SubElement(element, "skipped", message=report.message[:200])
    if info.reason:
        errors = 1
        element = ET.SubElement(
            suite, "testcase", classname=f"pluginconf.{info.suite}", name="run", time="0"
        )
        ET.SubElement(element, "error", message=info.reason[:200]).text = info.reason
    suite.set("tests", str(len(reports) + errors))
    suite.set("errors", str(errors))
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
