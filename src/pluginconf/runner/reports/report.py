"""Results as a run reports them: per case, the summary, the JSON report, the exit status."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pluginconf import __version__
from pluginconf.runner.cli.shard import Shard
from pluginconf.runner.model import Case, Level, Outcome
from pluginconf.runner.reports.result import Result
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
    # What a case that passed still said (a plugin's log line, say): kept apart, since a
    # message is evidence, which a pass has none of.
    notes: str = ""

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
            **({"notes": self.notes} if self.notes else {}),
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


def report_for(case: Case, result: Result, known_failing: str | None) -> CaseReport:
    """The report of ``case`` from its ``result``, whose outcome is already judged
    (verdict.py)."""
    origin = result.origin
    if not origin:
        known = requirements()
        origin = origins_label({known[r].origin for r in (result.violated or case.requirements)})
    final = final_outcome(result.outcome, known_failing)
    message, notes = result.message, ""
    if final in (Outcome.PASSED, Outcome.XPASSED):
        message, notes = "", message
    return CaseReport(
        id=case.id,
        requirements=case.requirements,
        level=case.level,
        profile=str(case.profile),
        outcome=final,
        duration_s=result.duration_s,
        message=message,
        known_failing=known_failing,
        origin=origin,
        violated=result.violated,
        notes=notes,
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
    shard: Shard | None = None  # --shard: which slice of the selection this run is

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
        "shard": info.shard.to_json() if info.shard is not None else None,
        "requirements": requirement_texts(r.requirements for r in reports),
    }


def requirement_texts(cited: Iterable[Sequence[str]]) -> dict[str, dict[str, str]]:
    """The text, level and origin of each requirement the cases cite, by id."""
    known = requirements()
    ids = sorted({rid for ids in cited for rid in ids})
    return {
        rid: {
            "text": known[rid].text,
            "level": known[rid].level,
            "origin": known[rid].origin_label,
        }
        for rid in ids
        if rid in known
    }


def write_json(path: str, report: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
