"""The mutant matrix: every plugin case fails against at least one broken plugin.

Each mutant is a plugin that breaks one rule on purpose: the reference plugin with a fault
switched on (tests/mutants/reference_mutant.py) or a fake-interpreter scenario
(fake_interpreters/README.md). ``MUTANTS``, by area in tests/mutants/plugin_matrix/, says
which cases each must fail; the tests run every mutant against those cases with the real
runner, and check that together the mutants leave no case unable to fail.
"""

from __future__ import annotations

import fnmatch
import sys
from pathlib import Path

import pytest

from pluginconf.runner.cli.preflight import check_target
from pluginconf.runner.engine import SuiteSession
from pluginconf.runner.model import Outcome, Profile
from pluginconf.runner.options import PluginSuiteOptions
from pluginconf.runner.registry import load_cases
from pluginconf.runner.targets import target_named
from pluginconf.runner.verdict import Judging, judge

sys.path.insert(0, str(Path(__file__).resolve().parent / "mutants"))
from plugin_matrix import behaviours, rules, transport
from plugin_matrix.mutant import MUTANT, Mutant
from reference_mutant import FAULTS
from violations import problems

# The matrix, by area of the SPEC (tests/mutants/plugin_matrix/).
MUTANTS = [*transport.MUTANTS, *behaviours.MUTANTS, *rules.MUTANTS]

CASES = load_cases("plugin")
# Mutants whose cases fail only once a wait of the case has passed, with about how long each
# takes (runs_long): started first, they do not end the run alone.
SLOW = {
    "ignore-shutdown": 48,
    "serialized-calls": 37,
    "stdio-blocks-unsubscribed": 37,
    "shutdown-exit-3s": 35,
    "stdio-swapped": 20,
    "cookie-slow-refusal": 19,
    "echo-buffers": 16,
    "ignore-host-exit": 11,
    "disconnect-swallowed": 11,
    "listen-after-handshake": 10,
}


def _selected(mutant: Mutant) -> list[str]:
    return [c.id for c in CASES if any(fnmatch.fnmatchcase(c.id, p) for p in mutant.breaks)]


def test_every_case_has_a_mutant_that_it_fails():
    covered = {case_id for m in MUTANTS for case_id in _selected(m)}
    uncovered = [c.id for c in CASES if c.id not in covered]
    assert not uncovered, f"cases no mutant breaks (they could never fail): {uncovered}"


def test_every_fault_is_in_the_matrix_and_every_pattern_matches():
    named = {m.name for m in MUTANTS if m.scenario is None}
    assert named == set(FAULTS), (
        f"faults without a matrix entry: {sorted(set(FAULTS) - named)}; "
        f"entries without a fault: {sorted(named - set(FAULTS))}"
    )
    assert set(SLOW) <= {m.name for m in MUTANTS}, set(SLOW) - {m.name for m in MUTANTS}
    for mutant in MUTANTS:
        for pattern in mutant.breaks:
            assert fnmatch.filter([c.id for c in CASES], pattern), (mutant.name, pattern)


def _params() -> list[object]:
    return [
        pytest.param(
            m, id=m.name, marks=[pytest.mark.runs_long(SLOW[m.name])] if m.name in SLOW else []
        )
        for m in MUTANTS
    ]


@pytest.mark.parametrize("mutant", _params())
async def test_mutant_fails_its_cases(mutant, tmp_path):
    changes: dict[str, object] = {"start_timeout_s": 30, **mutant.options}
    options = PluginSuiteOptions(
        command=mutant.command(tmp_path),
        profile=Profile.SDK,
        **changes,  # type: ignore[arg-type]
    )
    cases = [c for c in CASES if c.id in set(_selected(mutant))]
    results = {}
    async with SuiteSession(options) as session:
        for case in cases:
            results[case.id] = await session.run(case)
    wrong = {
        case_id: f"{r.outcome}: {r.message[:300]}"
        for case_id, r in results.items()
        if r.outcome is not Outcome.FAILED
    }
    assert not wrong, f"{mutant.name} should fail these cases, but: {wrong}"
    unexplained = problems(mutant.name, mutant.violates, results, cases)
    assert not unexplained, unexplained
    go_plugin = target_named("go-plugin")
    by_id = {c.id: c for c in cases}
    for case_id, (violated, outcome) in mutant.verdicts.items():
        result = results[case_id]
        assert result.violated == violated, (case_id, result.violated, result.message)
        judged = judge(
            by_id[case_id],
            result.outcome,
            result.message,
            result.violated,
            Judging(go_plugin.decisive),
        )
        assert judged.outcome is outcome, (case_id, judged.outcome, judged.message)


def _mutant_options(name: str, tmp_path: Path, **changes: object) -> PluginSuiteOptions:
    command = (sys.executable, str(MUTANT), name, "--state-dir", str(tmp_path))
    return PluginSuiteOptions(
        command=command,
        profile=Profile.TRANSPORT,
        start_timeout_s=30,
        **changes,  # type: ignore[arg-type]
    )


async def test_a_process_on_another_ones_address_fails_tr14_naming_it(tmp_path):
    """A fresh process announces the port the shared one holds: the case fails TR-14 with
    the other process's pid and command line, instead of talking to whichever answers;
    with one process at a time, the same case judges the port range instead."""
    case = next(c for c in CASES if c.id == "plugin/transport/tcp-port-range")
    async with SuiteSession(_mutant_options("tcp-fixed-port", tmp_path)) as session:
        result = await session.run(case)
        shared = session._pool.current
        assert shared is not None
        holder = shared.pid
    assert result.outcome is Outcome.FAILED, result.message
    assert result.violated == ("TR-14",), result.message
    assert f"pid {holder} (" in result.message
    assert "reference_mutant.py tcp-fixed-port" in result.message
    one = _mutant_options("tcp-fixed-port", tmp_path, one_process_at_a_time=True)
    async with SuiteSession(one) as session:
        result = await session.run(case)
    assert result.violated == ("TR-5",), result.message


@pytest.mark.parametrize(
    ("name", "fixed"),
    [("tcp-fixed-port", True), ("tcp-fixed-port-exclusive", True), ("tcp", False)],
)
def test_the_preflight_tells_a_plugin_on_a_fixed_address(name, fixed, tmp_path):
    options = check_target(_mutant_options(name, tmp_path))
    assert options.one_process_at_a_time is fixed
