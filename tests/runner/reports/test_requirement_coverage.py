"""The coverage gate: every requirement of docs/SPEC.md is enforced by each suite it binds.

Enforced means: a case of the suite cites it (or conformance/exemptions.txt says, with a
reason, why the suite cannot observe it), and, for a cited MUST or SHOULD, a mutant of the
suite's matrix violates it and is caught by a case citing it. That the mutants really fail
those cases, naming those requirements, is checked where they run (test_mutant_matrix.py,
test_host_mutant_matrix.py); conformance/mutants.json is their summary.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pluginconf.runner.registry import load_cases
from pluginconf.runner.reports.coverage import (
    CoverageDataError,
    coverage,
    exemptions,
    mutants,
    parse_exemptions,
)
from pluginconf.runner.spec import requirements

ROOT = Path(__file__).resolve().parents[3]
SUITES = ("plugin", "host")


def _rows(suite: str):
    return coverage(suite, load_cases(suite), mutants(), exemptions())


def test_the_mutant_summary_matches_the_matrices():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "genmutants.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("suite", SUITES)
def test_every_requirement_is_cited_or_exempt(suite):
    missing = [r.requirement.id for r in _rows(suite) if not r.cases and not r.exemption]
    assert not missing, (
        f"requirements binding the {suite} suite that no {suite} case cites: {missing}; "
        "cite them from a case, or list them in conformance/exemptions.txt with the reason"
    )


@pytest.mark.parametrize("suite", SUITES)
def test_no_exemption_is_stale(suite):
    stale = [r.requirement.id for r in _rows(suite) if r.cases and r.exemption]
    assert not stale, f"exempt in the {suite} suite, yet cited by its cases: {stale}"


@pytest.mark.parametrize("suite", SUITES)
def test_every_cited_must_and_should_has_a_mutant_its_cases_catch(suite):
    missing = [r.requirement.id for r in _rows(suite) if r.needs_mutant and not r.mutants]
    assert not missing, (
        f"{suite} requirements that cases cite but no mutant violates (or none whose "
        f"listed cases cite it): {missing}"
    )


@pytest.mark.parametrize("suite", SUITES)
def test_every_mutant_violates_requirements_that_its_cases_cite(suite):
    cases = {c.id: c for c in load_cases(suite)}
    known = requirements()
    problems = []
    for mutant in (m for m in mutants() if m.suite == suite):
        if not mutant.violates:
            problems.append(f"{mutant.name}: no violates=")
        for rid in mutant.violates:
            if rid not in known or not known[rid].applies_to(suite):
                problems.append(f"{mutant.name}: {rid} does not bind the {suite} suite")
            elif not any(rid in cases[c].requirements for c in mutant.cases):
                problems.append(f"{mutant.name}: none of its cases cites {rid}")
    assert not problems, problems


def test_exemptions_are_rare():
    # Honest exemptions only: a requirement a suite cannot observe at all.
    assert len(exemptions()) <= 12, [f"{e.requirement} {e.suite}" for e in exemptions()]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("HS-1 host", "expected 'ID plugin|host reason'"),
        ("XX-99 host never", "XX-99 is not a requirement"),
        ("HS-1 both because", "suite 'both'; expected plugin or host"),
        ("HS-9 host the plugin checks the cookie", "HS-9 binds the plugin"),
        ("HS-1 host one\nHS-1 host two", "HS-1 host is listed twice"),
    ],
)
def test_a_bad_exemption_line_is_named(text, message):
    with pytest.raises(CoverageDataError, match="line") as caught:
        parse_exemptions(text)
    assert message in str(caught.value)


def test_list_coverage_prints_the_matrix():
    result = subprocess.run(
        [sys.executable, "-m", "pluginconf", "list", "--coverage", "-v"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("HS-1 ") and " host " in line for line in lines), lines[:5]
    assert any(line.startswith("plugin: ") and "requirements" in line for line in lines)
    assert any(line.startswith("host: ") and "requirements" in line for line in lines)
    assert any("mutants: " in line for line in lines)


def test_list_without_a_suite_says_what_it_needs():
    result = subprocess.run(
        [sys.executable, "-m", "pluginconf", "list"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "which suite? Expected plugin, host or targets" in result.stderr
