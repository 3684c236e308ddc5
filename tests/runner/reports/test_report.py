"""A run's results as reported (runner/reports/report.py): final outcomes and exit codes."""

from __future__ import annotations

from pluginconf.runner.model import Level, Outcome
from pluginconf.runner.registry import load_cases
from pluginconf.runner.reports.report import exit_code, final_outcome, report_for, summarize
from pluginconf.runner.reports.result import Result
from pluginconf.runner.verdict import Judging, judge_result

CASES = load_cases("plugin")


def _reported(case, outcome, message="", known=None):
    result = Result(case.id, outcome, message, 0.1)
    return report_for(case, judge_result(case, result, Judging()), known)


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


def test_the_summary_counts_each_outcome_under_its_key():
    must = next(c for c in CASES if c.level is Level.MUST)
    outcomes = [Outcome.PASSED, Outcome.PASSED, Outcome.ERROR, Outcome.SKIPPED, Outcome.NOT_MET]
    reports = [report_for(must, Result(must.id, o, "", 0.1), None) for o in outcomes]
    assert summarize(reports, 1.23456) == {
        "passed": 2, "failed": 0, "skipped": 1, "xfailed": 0, "xpassed": 0, "errors": 1,
        "recommendations_not_met": 1, "duration_s": 1.235,
    }  # fmt: skip


def test_a_reports_origin_is_that_of_what_broke_else_of_what_the_case_cites():
    shutdown = next(c for c in CASES if c.id == "plugin/controller/shutdown")
    assert (
        report_for(shutdown, Result(shutdown.id, Outcome.PASSED, "", 0.1), None).origin
        == "go-plugin+pluginconf"
    )
    broke = report_for(shutdown, Result(shutdown.id, Outcome.FAILED, "late", 0.1, ("CT-3",)), None)
    assert broke.origin == "pluginconf"
    assert broke.to_json()["violated"] == ["CT-3"]


def test_a_pass_keeps_what_it_said_out_of_its_message():
    """A message is evidence; whatever a passing case still said goes to notes."""
    case = next(c for c in CASES if c.id == "plugin/handshake/line-format")
    log_line = "2026-01-01 INFO plugin started"
    passed = report_for(case, Result(case.id, Outcome.PASSED, log_line, 0.1), None)
    assert passed.message == "" and passed.to_json()["notes"] == log_line
    failed = report_for(case, Result(case.id, Outcome.FAILED, "the evidence", 0.1), None)
    assert failed.message == "the evidence" and "notes" not in failed.to_json()
