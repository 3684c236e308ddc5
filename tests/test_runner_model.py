"""The runner's own rules: case definitions, the registry, selection, known-failing lists,
reports and exit codes, and the shipped copy of SPEC.md's requirements."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pluginconf.runner.known_failing import load_known_failing
from pluginconf.runner.model import (
    CaseDefinitionError,
    Description,
    Level,
    Outcome,
    Profile,
    case,
)
from pluginconf.runner.registry import Selection, SelectionError, load_cases
from pluginconf.runner.report import exit_code, final_outcome, report_for
from pluginconf.runner.spec import requirements

ROOT = Path(__file__).resolve().parent.parent
CASES = load_cases("plugin")


def test_requirements_copy_matches_the_spec():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "genrequirements.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_every_case_is_described_and_cites_requirements_of_its_side():
    known = requirements()
    for c in CASES:
        assert c.description.purpose and c.description.procedure and c.description.asserts
        for rid in c.requirements:
            assert known[rid].binds in ("plugin", "both"), (c.id, rid)
        # A SHOULD case checks SHOULD requirements only; a MUST case at least one MUST.
        levels = {known[rid].level for rid in c.requirements}
        assert (c.level is Level.SHOULD) == (levels == {"SHOULD"}), (c.id, levels)


def test_case_definitions_are_checked():
    with pytest.raises(CaseDefinitionError, match="lacks Procedure, Asserts"):
        Description.parse("plugin/x", "Purpose: only this")
    with pytest.raises(CaseDefinitionError, match="not hierarchical"):

        @case("Plugin/Bad Id", requirements=["HS-1"], profile=Profile.TRANSPORT)
        async def bad(t):
            """
            Purpose: p
            Procedure: q
            Asserts: r
            """


def test_profiles_nest_and_selection_rejects_a_pattern_that_matches_nothing():
    transport = Selection(Profile.TRANSPORT).apply(CASES)
    hooks = Selection(Profile.HOOKS).apply(CASES)
    sdk = Selection(Profile.SDK).apply(CASES)
    assert set(transport) < set(hooks) < set(sdk) == set(CASES)
    assert {c.profile for c in transport} == {Profile.TRANSPORT}
    chosen = Selection(Profile.SDK, run=("plugin/sdk/echo/*",), skip=("*/16777216",)).apply(CASES)
    assert "plugin/sdk/echo/0" in [c.id for c in chosen]
    assert "plugin/sdk/echo/16777216" not in [c.id for c in chosen]
    with pytest.raises(SelectionError, match="matches no case"):
        Selection(Profile.SDK, run=("plugin/sdk/ecko/*",)).apply(CASES)


def test_known_failing_file(tmp_path):
    listed = tmp_path / "known"
    listed.write_text("# comment\n\nplugin/stdio/*   no GRPCStdio  # trailing\n")
    known = load_known_failing(str(listed), [c.id for c in CASES])
    assert known.reason_for("plugin/stdio/served") == "no GRPCStdio"
    assert known.reason_for("plugin/health/serving") is None
    listed.write_text("plugin/health/serving\nplugin/typo\n")
    with pytest.raises(SelectionError, match="line 2: 'plugin/typo' matches no case"):
        load_known_failing(str(listed), [c.id for c in CASES])


def test_outcomes_and_exit_codes():
    must = next(c for c in CASES if c.level is Level.MUST)
    should = next(c for c in CASES if c.level is Level.SHOULD)
    assert final_outcome(Outcome.FAILED, "known") is Outcome.XFAILED
    assert final_outcome(Outcome.PASSED, "known") is Outcome.XPASSED
    assert final_outcome(Outcome.SKIPPED, "known") is Outcome.SKIPPED
    passed = report_for(must, Outcome.PASSED, 0.1, "", None)
    assert exit_code([passed, report_for(should, Outcome.FAILED, 0.1, "slow", None)]) == 0
    assert exit_code([passed, report_for(must, Outcome.FAILED, 0.1, "bad", None)]) == 1
    assert exit_code([report_for(must, Outcome.PASSED, 0.1, "", "listed")]) == 1
    assert exit_code([report_for(must, Outcome.ERROR, 0.1, "traceback", None)]) == 1
    assert exit_code([report_for(must, Outcome.FAILED, 0.1, "bad", "listed")]) == 0


def test_every_package_is_installed():
    configured = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.relative_to(ROOT / "src").parent.parts)
        for p in (ROOT / "src").rglob("__init__.py")
    } | {
        "pluginconf." + ".".join(p.relative_to(ROOT).parent.parts)
        for p in (ROOT / "conformance").rglob("__init__.py")
    }
    assert configured == found
