"""The host mutant matrix: every host case fails against at least one broken host.

Each mutant is the reference host's adapter with one fault switched on, a host that breaks
one rule on purpose (tests/mutants/host_mutant.py). ``HOST_MUTANTS``, by area in
tests/mutants/host_matrix/, says which cases each must fail; the tests run every mutant
against those cases with the real runner (one adapter per mutant, as `pluginconf host --
python tests/mutants/host_mutant.py FAULT` would), and check that together the mutants leave
no host case unable to fail.
"""

from __future__ import annotations

import fnmatch
import sys
from pathlib import Path

import pytest

from pluginconf.runner.host.session import HostSuiteSession
from pluginconf.runner.model import Outcome
from pluginconf.runner.options import HostSuiteOptions
from pluginconf.runner.registry import load_cases
from pluginconf.runner.targets import target_named
from pluginconf.runner.verdict import Judged, Judging, judge

sys.path.insert(0, str(Path(__file__).resolve().parent / "mutants"))
from host_matrix import hostapi_broker, http_supervision, launch, rules
from host_matrix.mutant import MUTANT, HostMutant
from host_matrix.targets import PER_TARGET_CASES, TARGET_VERDICTS, TargetVerdict
from host_mutant import FAULTS
from violations import problems

# Mutants whose cases fail only once a bound of the case has passed (a 30 s flood, a 15 s
# start timeout, a 10 s wait...), with about how long each takes (runs_long): started first,
# they do not end the run alone.
SLOW = {
    "no-stdout-drain": 65,
    "no-stderr-drain": 33,
    "stderr-drain-stops": 33,
    "stdout-stops-at-long-line": 33,
    "buffers-bodies": 28,
    "never-sigkill": 27,
    "backoff-too-long": 26,
    "ignores-start-timeout": 22,
    "exit-seen-not-reaped": 22,
    "broker-servers-left-running": 22,
    "exit-noticed-late": 22,
    "kills-pid-only": 21,
    "exit-unwatched": 18,
    "configuration-error-deactivates": 17,
    "no-backoff": 16,
    "generic-error-kind": 14,
}

# The matrix, by area of the SPEC (tests/mutants/host_matrix/).
HOST_MUTANTS = [*launch.MUTANTS, *http_supervision.MUTANTS, *hostapi_broker.MUTANTS, *rules.MUTANTS]

CASES = load_cases("host")


def _selected(mutant: HostMutant) -> list[str]:
    return [c.id for c in CASES if any(fnmatch.fnmatchcase(c.id, p) for p in mutant.breaks)]


def test_every_host_case_has_a_mutant_that_it_fails():
    covered = {case_id for m in HOST_MUTANTS for case_id in _selected(m)}
    uncovered = [c.id for c in CASES if c.id not in covered]
    assert not uncovered, f"host cases no mutant breaks (they could never fail): {uncovered}"


def test_every_fault_is_in_the_matrix_and_every_pattern_matches():
    named = {m.name for m in HOST_MUTANTS}
    assert named == set(FAULTS), (
        f"faults without a matrix entry: {sorted(set(FAULTS) - named)}; "
        f"entries without a fault: {sorted(named - set(FAULTS))}"
    )
    for mutant in HOST_MUTANTS:
        assert mutant.breaks, f"{mutant.id} lists no case: every fault must fail one"
        for pattern in mutant.breaks:
            assert fnmatch.filter([c.id for c in CASES], pattern), (mutant.name, pattern)
    ids = [m.id for m in HOST_MUTANTS]
    assert len(ids) == len(set(ids)), ids
    assert set(SLOW) <= set(named), set(SLOW) - named


def test_heavy_cases_run_only_in_heavy_entries():
    heavy = {c.id for c in CASES if c.heavy}
    for mutant in HOST_MUTANTS:
        runs_heavy = bool(heavy & set(_selected(mutant)))
        assert runs_heavy == mutant.heavy, (mutant.id, sorted(heavy & set(_selected(mutant))))


def _params() -> list[object]:
    params = []
    for m in HOST_MUTANTS:
        bound = 60 + sum(c.timeout_s for c in CASES if c.id in set(_selected(m)))
        marks = [pytest.mark.timeout(bound)] + ([pytest.mark.heavy] if m.heavy else [])
        if m.name in SLOW and not m.heavy:
            marks.append(pytest.mark.runs_long(SLOW[m.name]))
        params.append(pytest.param(m, id=m.id, marks=marks))
    return params


@pytest.mark.parametrize("mutant", _params())
async def test_host_mutant_fails_its_cases(mutant: HostMutant):
    settings: dict[str, object] = {"start_timeout_s": 30, **mutant.options}
    options = HostSuiteOptions(
        command=(sys.executable, str(MUTANT), mutant.name),
        **settings,  # type: ignore[arg-type]
    )
    cases = [c for c in CASES if c.id in set(_selected(mutant))]
    results = {}
    async with HostSuiteSession(options) as session:
        for case in cases:
            results[case.id] = await session.run(case)
    wrong = {
        case_id: f"{r.outcome}: {r.message[:600]}"
        for case_id, r in results.items()
        if r.outcome is not Outcome.FAILED
    }
    assert not wrong, f"host mutant {mutant.name} should fail these cases, but: {wrong}"
    unexplained = problems(mutant.name, mutant.violates, results, cases)
    assert not unexplained, unexplained
    # The verdicts under both targets of the cases this run has already made (_FROM_MATRIX).
    by_id = {c.id: c for c in cases}
    misjudged = {}
    for verdict in _FROM_MATRIX.get(mutant.id, []):
        case, result = by_id[verdict.case_id], results[verdict.case_id]
        for name, judging in (("go-plugin", _GO_PLUGIN_JUDGING), ("pluginconf", Judging())):
            judged = judge(case, result.outcome, result.message, result.violated, judging)
            found = _problems(verdict, name, judged)
            if found:
                misjudged[f"{case.id} ({name})"] = "; ".join(found) + f"\n{judged.message[:1500]}"
    assert not misjudged, misjudged


# -- verdicts under targets (tests/mutants/host_matrix/targets.py) ---------------------------


def _from_matrix() -> dict[str, list[TargetVerdict]]:
    """The verdicts that a run of the matrix already makes: one fault, a case of the mutant's
    own, run with no other option, that fails (a skip's reason names the target) and runs
    alike under both targets (not PER_TARGET_CASES). The matrix test judges them from its
    run, under both targets, instead of a run of their own; by mutant id."""
    plain = {m.name: m for m in HOST_MUTANTS if not m.options and not m.heavy}
    found: dict[str, list[TargetVerdict]] = {}
    for verdict in TARGET_VERDICTS:
        mutant = plain.get(verdict.faults[0]) if len(verdict.faults) == 1 else None
        if (
            mutant is not None
            and verdict.case_id in _selected(mutant)
            and verdict.case_id not in PER_TARGET_CASES
            and Outcome.SKIPPED not in (verdict.pluginconf, verdict.go_plugin)
        ):
            found.setdefault(mutant.id, []).append(verdict)
    return found


_FROM_MATRIX = _from_matrix()
_GO_PLUGIN_JUDGING = Judging(target_named("go-plugin").decisive)


def test_the_matrix_judges_target_verdicts_of_its_own_runs():
    """The runs that _FROM_MATRIX spares are the slowest of the target verdicts."""
    shared = {v.faults[0] for verdicts in _FROM_MATRIX.values() for v in verdicts}
    assert {"no-stdout-drain", "stdout-stops-at-long-line", "never-sigkill"} <= shared


def _target_params() -> list[object]:
    judged_by_matrix = {id(v) for verdicts in _FROM_MATRIX.values() for v in verdicts}
    by_faults: dict[tuple[str, ...], list[TargetVerdict]] = {}
    for verdict in TARGET_VERDICTS:
        if id(verdict) in judged_by_matrix:
            continue
        by_faults.setdefault(verdict.faults, []).append(verdict)
    return [
        pytest.param(faults, verdicts, id="+".join(faults))
        for faults, verdicts in by_faults.items()
    ]


def _problems(verdict: TargetVerdict, target: str, judged: Judged) -> list[str]:
    wanted = verdict.go_plugin if target == "go-plugin" else verdict.pluginconf
    problems = []
    if judged.outcome is not wanted:
        problems.append(f"reported {judged.outcome} under {target}, expected {wanted}")
    if wanted is not Outcome.SKIPPED and not verdict.violated <= set(judged.violated):
        problems.append(f"breaks {judged.violated}, expected {sorted(verdict.violated)}")
    if target == "go-plugin" and verdict.message not in judged.message:
        problems.append(f"the message lacks {verdict.message!r}")
    return problems


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("faults", "verdicts"), _target_params())
async def test_a_broken_host_is_judged_by_the_rules_of_its_target(
    faults: tuple[str, ...], verdicts: list[TargetVerdict]
):
    """Each case runs once, under --target go-plugin, and its result is judged as both
    targets would judge it: the targets differ in which origins decide, not in what the
    cases do (but for PER_TARGET_CASES, which run under each target). The verdicts that a
    run of the matrix makes are judged from it (_FROM_MATRIX)."""
    by_id = {c.id: c for c in CASES}
    wrong = {}
    runs = [("go-plugin", [v for v in verdicts if v.case_id not in PER_TARGET_CASES], True)]
    per_target = [v for v in verdicts if v.case_id in PER_TARGET_CASES]
    if per_target:
        runs += [("go-plugin", per_target, False), ("pluginconf", per_target, False)]
    for target, chosen, judge_both in runs:
        if not chosen:
            continue
        options = HostSuiteOptions(
            command=(sys.executable, str(MUTANT), *faults),
            start_timeout_s=30,
            target=target_named(target),
        )
        async with HostSuiteSession(options) as session:
            for verdict in chosen:
                case = by_id[verdict.case_id]
                result = await session.run(case)
                judgings = {target: options.judging}
                if judge_both:
                    judgings["pluginconf"] = Judging()
                for name, judging in judgings.items():
                    judged = judge(case, result.outcome, result.message, result.violated, judging)
                    problems = _problems(verdict, name, judged)
                    if problems:
                        wrong[f"{case.id} ({name})"] = (
                            "; ".join(problems) + f"\n{judged.message[:1500]}"
                        )
    assert not wrong, wrong


@pytest.mark.runs_long(18)
async def test_a_host_passing_its_environment_through_fails_only_the_cases_about_it():
    """One cause, one case: the decoys only a pluginconf host must scrub reach only the hosts
    of the cases that check them, so a host that passes its environment through to plugins,
    as go-plugin's client does, fails those and no other; under --target go-plugin they are
    recommendations not met."""
    options = HostSuiteOptions(
        command=(sys.executable, str(MUTANT), "environment-passed-through"),
        start_timeout_s=30,
        target=target_named("go-plugin"),
    )
    launch = [c for c in CASES if c.id.startswith("host/launch/")]
    outcomes = {}
    async with HostSuiteSession(options) as session:
        for case in launch:
            result = await session.run(case)
            judged = judge(case, result.outcome, result.message, result.violated, options.judging)
            outcomes[case.id] = judged.outcome
    not_passed = {k: v for k, v in outcomes.items() if v is not Outcome.PASSED}
    assert not_passed == {
        "host/launch/socket-dir": Outcome.NOT_MET,
        "host/launch/no-inherited-secrets": Outcome.NOT_MET,
    }
