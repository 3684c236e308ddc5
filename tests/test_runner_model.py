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
from pluginconf.runner.report import exit_code, final_outcome, report_for, summarize
from pluginconf.runner.spec import Origin, requirements
from pluginconf.runner.targets import TARGETS, AutoMTLS, target_named
from pluginconf.runner.verdict import Judging, judge

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


def _reported(case, outcome, message="", known=None, judging=None, violated=()):
    judged = judge(case, outcome, message, violated, judging or Judging())
    return report_for(
        case, judged.outcome, 0.1, judged.message, known, violated=judged.violated,
        origin=judged.origin,
    )  # fmt: skip


def test_outcomes_and_exit_codes():
    must = next(c for c in CASES if c.level is Level.MUST)
    should = next(c for c in CASES if c.level is Level.SHOULD)
    assert final_outcome(Outcome.FAILED, "known") is Outcome.XFAILED
    assert final_outcome(Outcome.NOT_MET, "known") is Outcome.XFAILED
    assert final_outcome(Outcome.PASSED, "known") is Outcome.XPASSED
    assert final_outcome(Outcome.SKIPPED, "known") is Outcome.SKIPPED
    passed = _reported(must, Outcome.PASSED)
    slow = _reported(should, Outcome.FAILED, "slow")
    # A SHOULD failure is a recommendation not met: reported, counted apart, never decisive.
    assert slow.outcome is Outcome.NOT_MET
    assert exit_code([passed, slow]) == 0
    assert summarize([passed, slow], 1.0)["recommendations_not_met"] == 1
    assert exit_code([passed, _reported(must, Outcome.FAILED, "bad")]) == 1
    assert exit_code([_reported(must, Outcome.PASSED, known="listed")]) == 1
    assert exit_code([_reported(must, Outcome.ERROR, "traceback")]) == 1
    assert exit_code([_reported(must, Outcome.FAILED, "bad", known="listed")]) == 0


def test_a_go_plugin_target_reports_pluginconf_rules_as_recommendations():
    known = requirements()
    shutdown = next(c for c in CASES if c.id == "plugin/controller/shutdown")
    # The case cites go-plugin's rules (CT-10: exit within 2 s) and pluginconf's (CT-3: 100 ms).
    assert known["CT-10"].origin is Origin.GO_PLUGIN
    assert known["CT-3"].origin is Origin.PLUGINCONF
    go_plugin = target_named("go-plugin")
    judging = Judging(go_plugin.decisive)
    late = _reported(shutdown, Outcome.FAILED, "150 ms", judging=judging, violated=("CT-3",))
    assert late.outcome is Outcome.NOT_MET and late.origin == "pluginconf"
    assert exit_code([late]) == 0
    strict = _reported(
        shutdown,
        Outcome.FAILED,
        "150 ms",
        judging=Judging(go_plugin.decisive, True),
        violated=("CT-3",),
    )
    assert strict.outcome is Outcome.FAILED
    never = _reported(shutdown, Outcome.FAILED, "3 s", judging=judging, violated=("CT-10",))
    assert never.outcome is Outcome.FAILED and never.origin == "go-plugin"
    # A failure that names no requirement breaks all the case cites: the go-plugin ones decide.
    anything = _reported(shutdown, Outcome.FAILED, "UNIMPLEMENTED", judging=judging)
    assert anything.outcome is Outcome.FAILED
    # Under the pluginconf target every rule decides.
    assert (
        _reported(shutdown, Outcome.FAILED, "150 ms", violated=("CT-3",)).outcome is Outcome.FAILED
    )


def test_a_versioned_go_plugin_rule_says_which_release_brought_it():
    socket_dir = next(c for c in CASES if c.id == "plugin/transport/unix-socket-dir")
    failed = _reported(socket_dir, Outcome.FAILED, "the socket is in /tmp", violated=("TR-1",))
    assert "upgrade go-plugin to 1.5.0 or later" in failed.message


def test_every_requirement_names_its_origin_and_pluginconf_rules_say_why():
    for requirement in requirements().values():
        assert requirement.origin in set(Origin)
        if requirement.origin is Origin.PLUGINCONF:
            assert requirement.rationale, requirement.id
        if requirement.since:
            assert requirement.origin is Origin.GO_PLUGIN, requirement.id


def test_targets_preset_what_their_applications_hosts_do():
    names = {t.name for t in TARGETS}
    assert names >= {
        "pluginconf", "go-plugin", "terraform", "vault", "vault-database", "nomad", "tflint",
        "waypoint", "mattermost",
    }  # fmt: skip
    terraform = target_named("terraform")
    assert terraform.protocol_versions == (5, 6) and terraform.auto_mtls is AutoMTLS.ALWAYS
    assert terraform.magic_cookie.key == "TF_PLUGIN_MAGIC_COOKIE"
    assert terraform.go_plugin_based and not target_named("pluginconf").go_plugin_based
    assert target_named("mattermost").protocol == "netrpc"
    with pytest.raises(ValueError, match="not a known target"):
        target_named("terraform-ish")


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
