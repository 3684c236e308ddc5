"""The JUnit XML report (runner/reports/junit.py), built from a JSON report."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from pluginconf.runner.reports.junit import group_of, junit_tree, write_junit


def _report(**extra: Any) -> dict[str, Any]:
    case = {"requirement": ["HS-1"], "level": "MUST", "origin": "go-plugin", "duration_s": 0.5}
    return {
        "suite": "plugin",
        "target": ["./p", "--flag"],
        "target_name": "pluginconf",
        "profile": "sdk",
        "started_at": "2026-01-01T00:00:00+00:00",
        "summary": {"duration_s": 2.0},
        "cases": [
            {**case, "id": "plugin/handshake/line-format", "outcome": "passed"},
            {**case, "id": "plugin/handshake/cookie", "outcome": "failed", "message": "bad\x01"},
            {**case, "id": "plugin/a/b/error", "outcome": "error", "message": "Traceback"},
            {**case, "id": "plugin/a/xp", "outcome": "xpassed", "known_failing": "tracked"},
            {**case, "id": "plugin/a/xf", "outcome": "xfailed", "known_failing": "tracked"},
            {**case, "id": "plugin/a/nm", "outcome": "not_met", "message": "slow"},
            {**case, "id": "plugin/a/sk", "outcome": "skipped", "message": "n/a", "notes": "log"},
        ],
        **extra,
    }


def _cases(tree: Any) -> dict[str, Any]:
    suite = tree.getroot().find("testsuite")
    return {f"{c.get('classname')}/{c.get('name')}": c for c in suite.findall("testcase")}


def test_groups_are_the_id_without_its_last_part():
    assert group_of("plugin/transport/unix-socket-mode") == ("plugin.transport", "unix-socket-mode")
    assert group_of("host/a/b/c") == ("host.a.b", "c")


def test_each_outcome_is_a_testcase_counted_as_ci_counts_it():
    tree = junit_tree(_report())
    suite = tree.getroot().find("testsuite")
    assert suite.get("name") == "pluginconf plugin" and suite.get("time") == "2.000"
    counts = {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": "7", "failures": "2", "errors": "1", "skipped": "3"}
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["target"] == "./p --flag" and props["profile"] == "sdk"
    assert "shard" not in props
    cases = _cases(tree)
    failed = cases["plugin.handshake/cookie"].find("failure")
    assert failed.text == "bad\\x01"  # a control character XML cannot carry, escaped
    assert cases["plugin.a.b/error"].find("error").text == "Traceback"
    assert "known failing, but passed: tracked" in cases["plugin.a/xp"].find("failure").text
    assert cases["plugin.a/xf"].find("skipped").text == "known failing: tracked"
    assert cases["plugin.a/nm"].find("skipped").text == "recommendation not met: slow"
    assert cases["plugin.a/sk"].find("system-out").text == "log"
    passed = cases["plugin.handshake/line-format"]
    assert passed.find("failure") is None and passed.find("skipped") is None
    assert passed.get("time") == "0.500"
    assert [(p.get("name"), p.get("value")) for p in passed.find("properties")] == [
        ("requirement", "HS-1"), ("level", "MUST"), ("origin", "go-plugin"), ("outcome", "passed"),
    ]  # fmt: skip


def test_a_run_that_stopped_early_gets_an_errored_run_testcase(tmp_path):
    report = _report(run={"reason": "interrupted by SIGINT"}, shard={"index": 1, "count": 2})
    path = tmp_path / "r.xml"
    write_junit(str(path), report)
    assert path.read_text().startswith("<?xml version='1.0' encoding='utf-8'?>")
    tree = ET.parse(path)
    suite = tree.getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("errors")) == ("8", "2")
    assert _cases(tree)["plugin/run"].find("error").text == "interrupted by SIGINT"
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["shard"] == "1/2"
