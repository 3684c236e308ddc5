"""Results as a run reports them: per case, the summary, the JSON report, the exit status."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pluginconf.runner.model import Case, Level, Outcome

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2

# The summary's keys, in the contract's order (../shared/DESIGN.md).
SUMMARY_KEYS = ("passed", "failed", "skipped", "xfailed", "xpassed", "errors")


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

    @property
    def fails_run(self) -> bool:
        if self.outcome in (Outcome.ERROR, Outcome.XPASSED):
            return True
        return self.outcome is Outcome.FAILED and self.level is Level.MUST

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "requirement": list(self.requirements),
            "level": str(self.level),
            "outcome": str(self.outcome),
            "duration_s": round(self.duration_s, 4),
            "message": self.message,
            "profile": self.profile,
            **({"known_failing": self.known_failing} if self.known_failing is not None else {}),
        }


def final_outcome(outcome: Outcome, known_failing: str | None) -> Outcome:
    """A known-failing case's outcome: failures become xfailed, a pass becomes xpassed."""
    if known_failing is None:
        return outcome
    if outcome in (Outcome.FAILED, Outcome.ERROR):
        return Outcome.XFAILED
    if outcome is Outcome.PASSED:
        return Outcome.XPASSED
    return outcome


def report_for(
    case: Case, outcome: Outcome, duration_s: float, message: str, known_failing: str | None
) -> CaseReport:
    return CaseReport(
        id=case.id,
        requirements=case.requirements,
        level=case.level,
        profile=str(case.profile),
        outcome=final_outcome(outcome, known_failing),
        duration_s=duration_s,
        message=message,
        known_failing=known_failing,
    )


def summarize(reports: Iterable[CaseReport], duration_s: float) -> dict[str, Any]:
    counts = {key: 0 for key in SUMMARY_KEYS}
    for report in reports:
        key = "errors" if report.outcome is Outcome.ERROR else str(report.outcome)
        counts[key] += 1
    return {**counts, "duration_s": round(duration_s, 3)}


def exit_code(reports: Iterable[CaseReport]) -> int:
    """0 when every MUST case passed and nothing unexpectedly passed; else 1."""
    return EXIT_FAILURES if any(r.fails_run for r in reports) else EXIT_OK


def json_report(
    suite: str,
    target: Sequence[str],
    profile: str,
    reports: Sequence[CaseReport],
    duration_s: float,
) -> dict[str, Any]:
    return {
        "suite": suite,
        "target": list(target),
        "profile": profile,
        "summary": summarize(reports, duration_s),
        "cases": [r.to_json() for r in reports],
    }


def write_json(path: str, report: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
