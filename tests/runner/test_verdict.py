"""Judging a case's result under a target (runner/verdict.py): failed or not met."""

from __future__ import annotations

from pluginconf.runner.model import Case, Level, Outcome, Profile, case
from pluginconf.runner.registry import load_cases
from pluginconf.runner.reports.report import exit_code, report_for
from pluginconf.runner.reports.result import Result
from pluginconf.runner.spec import Origin, requirements
from pluginconf.runner.targets import target_named
from pluginconf.runner.verdict import Judging, judge, judge_result

CASES = load_cases("plugin")
GO_PLUGIN = target_named("go-plugin")


def _case(*cited: str, level: Level = Level.MUST) -> Case:
    @case("plugin/selftest/judged", requirements=cited, profile=Profile.TRANSPORT, level=level)
    async def judged(t):
        """
        Purpose: p
        Procedure: q
        Asserts: r
        """

    return judged


def _reported(case, outcome, message="", known=None, judging=None, violated=()):
    result = Result(case.id, outcome, message, 0.1, violated)
    return report_for(case, judge_result(case, result, judging or Judging()), known)


def test_a_go_plugin_target_reports_pluginconf_rules_as_recommendations():
    known = requirements()
    shutdown = next(c for c in CASES if c.id == "plugin/controller/shutdown")
    # The case cites go-plugin's rules (CT-10: exit within 2 s) and pluginconf's (CT-3: 100 ms).
    assert known["CT-10"].origin is Origin.GO_PLUGIN
    assert known["CT-3"].origin is Origin.PLUGINCONF
    judging = Judging(GO_PLUGIN.decisive)
    late = _reported(shutdown, Outcome.FAILED, "150 ms", judging=judging, violated=("CT-3",))
    assert late.outcome is Outcome.NOT_MET and late.origin == "pluginconf"
    assert exit_code([late]) == 0
    strict = _reported(
        shutdown,
        Outcome.FAILED,
        "150 ms",
        judging=Judging(GO_PLUGIN.decisive, True),
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


def test_a_failure_of_only_pluginconf_rules_is_not_met_under_go_plugin():
    judged = judge(_case("CT-3"), Outcome.FAILED, "150 ms", (), Judging(GO_PLUGIN.decisive))
    assert judged.outcome is Outcome.NOT_MET
    assert judged.violated == ("CT-3",) and judged.origin == "pluginconf"
    assert judge(_case("CT-3"), Outcome.FAILED, "150 ms", (), Judging()).outcome is Outcome.FAILED


def test_a_failure_naming_a_go_plugin_rule_fails_under_go_plugin():
    cited = _case("CT-3", "CT-10")
    judged = judge(cited, Outcome.FAILED, "3 s", ("CT-10",), Judging(GO_PLUGIN.decisive))
    assert judged.outcome is Outcome.FAILED
    assert judged.violated == ("CT-10",) and judged.origin == "go-plugin"
    # Naming none breaks every requirement the case cites; their origins are all reported.
    judged = judge(cited, Outcome.FAILED, "dead", (), Judging(GO_PLUGIN.decisive))
    assert judged.outcome is Outcome.FAILED
    assert judged.violated == ("CT-3", "CT-10") and judged.origin == "go-plugin+pluginconf"


def test_a_should_failure_is_never_decisive_even_strict():
    should = next(r for r in requirements().values() if r.level == "SHOULD" and r.binds == "plugin")
    cited = _case(should.id, level=Level.SHOULD)
    assert not Judging(strict=True).decides(should.id)
    judged = judge(cited, Outcome.FAILED, "slow", (), Judging(strict=True))
    assert judged.outcome is Outcome.NOT_MET
    # A SHOULD case is a recommendation even where it breaks a MUST requirement.
    judged = judge(_case("CT-10", level=Level.SHOULD), Outcome.FAILED, "x", (), Judging())
    assert judged.outcome is Outcome.NOT_MET


def test_outcomes_other_than_failed_pass_through_with_the_cases_origins():
    cited = _case("CT-3", "CT-10")
    for outcome in (Outcome.PASSED, Outcome.SKIPPED, Outcome.ERROR):
        judged = judge(cited, outcome, "said", ("CT-3",), Judging(GO_PLUGIN.decisive))
        assert (judged.outcome, judged.message, judged.violated) == (outcome, "said", ())
        assert judged.origin == "go-plugin+pluginconf"


def test_only_a_failure_gets_the_upgrade_hint():
    cited = _case("TR-1")
    assert judge(cited, Outcome.SKIPPED, "n/a", (), Judging()).message == "n/a"
    failed = judge(cited, Outcome.FAILED, "in /tmp", (), Judging())
    assert failed.message.startswith("in /tmp\nTR-1 is go-plugin's behaviour since")
