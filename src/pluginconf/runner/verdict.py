"""Judging a case's result under a target: does a failure decide the run?

A failure decides the run when one of the requirements it breaks is a MUST requirement of an
origin the target holds decisive (all origins under ``--strict``) and the case is a MUST case.
Any other failure is a recommendation not met (Outcome.NOT_MET): reported, counted on its own,
never failing the run. A failure of a versioned go-plugin rule says which go-plugin release
brought it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pluginconf.runner.model import Case, Level, Outcome
from pluginconf.runner.reports.result import Result
from pluginconf.runner.spec import Origin, origins_label, requirements
from pluginconf.runner.targets import EVERY_RULE


@dataclass(frozen=True)
class Judging:
    decisive: frozenset[Origin] = EVERY_RULE
    strict: bool = False

    def decides(self, requirement_id: str) -> bool:
        requirement = requirements()[requirement_id]
        if requirement.level != "MUST":
            return False
        return self.strict or requirement.origin in self.decisive


@dataclass(frozen=True)
class Judged:
    """A case's result as reported: outcome, evidence, what it breaks, where that comes from."""

    outcome: Outcome
    message: str
    violated: tuple[str, ...]
    origin: str


def judge(
    case: Case, outcome: Outcome, message: str, violated: tuple[str, ...], judging: Judging
) -> Judged:
    """The reported outcome of ``case`` (before any known-failing list is applied)."""
    known = requirements()
    if outcome is not Outcome.FAILED:
        origin = origins_label({known[r].origin for r in case.requirements})
        return Judged(outcome, message, (), origin)
    broken = violated or case.requirements
    origin = origins_label({known[r].origin for r in broken})
    hints = [known[r].upgrade_hint() for r in broken if known[r].upgrade_hint()]
    if hints:
        message = message + "\n" + "\n".join(hints)
    decides = case.level is Level.MUST and any(judging.decides(r) for r in broken)
    if not decides:
        return Judged(Outcome.NOT_MET, message, broken, origin)
    return Judged(Outcome.FAILED, message, broken, origin)


def judge_result(case: Case, result: Result, judging: Judging) -> Result:
    """``case``'s result with its verdict (:func:`judge`): as the reports carry it."""
    verdict = judge(case, result.outcome, result.message, result.violated, judging)
    return replace(
        result,
        outcome=verdict.outcome,
        message=verdict.message,
        violated=verdict.violated,
        origin=verdict.origin,
    )
