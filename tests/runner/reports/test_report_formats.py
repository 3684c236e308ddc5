"""The reports of one real run with every kind of outcome: JUnit (classname the case's group,
the suite's name, requirement properties), the JSON's run fields, and the HTML page rendered
in a real headless browser, whose outcome filter must work."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import test_plugin

import pluginconf
from pluginconf.runner.registry import load_cases

PLUGINCONF = [sys.executable, "-m", "pluginconf"]
FAILS = "plugin/hooks/command-response-type"  # the configurable plugin answers no type
SKIPS = "plugin/transport/tcp-port-range"  # it listens on unix
PASSES = "plugin/handshake/line-format"
XPASSES = "plugin/handshake/first-bytes"  # listed as known failing, but passes


def test_the_reports_of_a_run_with_every_kind_of_outcome(tmp_path):
    """One run (xdist would repeat a shared fixture in each worker), every report checked;
    the HTML page last, in a browser: skipped without one, unless PLUGINCONF_REQUIRE_BROWSER."""
    reports = _run(tmp_path / "run")
    _check_junit(reports)
    _check_json(reports)
    _check_html(reports, tmp_path)


def _run(out: Path) -> dict[str, Any]:
    """One run of four cases, each with another outcome; every report written."""
    out.mkdir()
    known = out / "known.txt"
    known.write_text(f"{XPASSES}  tracked elsewhere\n")
    args = ["--json", "r.json", "--junit-xml", "r.xml", "--html", "r.html", "-n", "0"]
    for case_id in (FAILS, SKIPS, PASSES, XPASSES):
        args += ["--run", case_id]
    result = subprocess.run(
        [*PLUGINCONF, "plugin", "--known-failing", str(known), *args, "--",
         *test_plugin("configurable")],
        capture_output=True, text=True, timeout=120, cwd=out, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    return {"dir": out, "json": json.loads((out / "r.json").read_text())}


def _check_junit(reports: dict[str, Any]) -> None:
    suite = ET.parse(reports["dir"] / "r.xml").getroot().find("testsuite")
    assert suite is not None
    assert suite.get("name") == "pluginconf plugin"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "2", "1")
    cases = {f"{c.get('classname')}/{c.get('name')}": c for c in suite.findall("testcase")}
    assert set(cases) == {"plugin.hooks/command-response-type", "plugin.transport/tcp-port-range",
                          "plugin.handshake/line-format", "plugin.handshake/first-bytes"}  # fmt: skip
    failed = cases["plugin.hooks/command-response-type"]
    props = [(p.get("name"), p.get("value")) for p in failed.findall("properties/property")]
    cited = next(c for c in load_cases("plugin") if c.id == FAILS)
    assert [v for n, v in props if n == "requirement"] == list(cited.requirements)
    assert ("level", "MUST") in props
    assert any(n == "origin" and v for n, v in props)
    failure = failed.find("failure")
    assert failure is not None and "response_type" in (failure.text or "")
    xpassed = cases["plugin.handshake/first-bytes"].find("failure")
    assert xpassed is not None and "known failing, but passed" in xpassed.get("message", "")
    assert cases["plugin.transport/tcp-port-range"].find("skipped") is not None
    assert cases["plugin.handshake/line-format"].find("failure") is None


def _check_json(reports: dict[str, Any]) -> None:
    report = reports["json"]
    assert report["pluginconf_version"] == pluginconf.__version__
    assert report["schema_version"] == 2
    started = datetime.fromisoformat(report["started_at"])
    assert started.utcoffset() == timedelta(0)
    assert abs((datetime.now(started.tzinfo) - started).total_seconds()) < 600
    options = report["options"]
    assert options["run"] == [FAILS, SKIPS, PASSES, XPASSES]
    assert options["known_failing"].endswith("known.txt") and options["workers"] == "0"
    assert options["shard"] is None and report["shard"] is None
    cited = {r for c in report["cases"] for r in c["requirement"]}
    assert set(report["requirements"]) == cited
    assert all(t["text"] and t["level"] and t["origin"] for t in report["requirements"].values())
    by_id = {c["id"]: c for c in report["cases"]}
    assert by_id[PASSES]["message"] == "" and by_id[XPASSES]["message"] == ""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("PLUGINCONF_REQUIRE_BROWSER") == "1":
        pytest.fail(
            "PLUGINCONF_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install chromium)"
        )
    pytest.skip("no headless browser: apt-get install chromium (Debian) to test the HTML report")


def _rendered(page: Path, fragment: str, tmp_path: Path) -> str:
    """The DOM after the page's script ran, as a real browser renders it."""
    result = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000",
         "--dump-dom", page.as_uri() + fragment],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "</html>" in result.stdout
    return result.stdout


def _rows(dom: str) -> list[tuple[str, bool]]:
    """(outcome, hidden) of each case row, in page order."""
    return [
        (m.group(1), "hidden" in m.group(2))
        for m in re.finditer(r'<tr class="case [a-z_]+" data-outcome="([a-z_]+)"([^>]*)>', dom)
    ]


def _check_html(reports: dict[str, Any], tmp_path: Path) -> None:
    page = reports["dir"] / "r.html"
    text = page.read_text()
    assert "<link" not in text and "src=" not in text and "http://" not in text  # self-contained
    dom = _rendered(page, "", tmp_path)
    assert re.search(r'<p id="summary"[^>]*>.*1 passed.*</p>', dom)
    assert "4 of 4 cases shown" in dom
    rows = _rows(dom)
    # Failures first: what fails the run, then what does not, passes last.
    assert [o for o, _ in rows] == ["failed", "xpassed", "skipped", "passed"]
    assert not any(hidden for _, hidden in rows)
    assert "response_type" in dom and "HS-15" in dom  # evidence, requirements
    dom = _rendered(page, "#outcome=failed", tmp_path)
    assert "1 of 4 cases shown (failed)" in dom
    assert _rows(dom) == [("failed", False), ("xpassed", True), ("skipped", True),
                          ("passed", True)]  # fmt: skip
    dom = _rendered(page, "#outcome=passed,skipped", tmp_path)
    assert [o for o, hidden in _rows(dom) if not hidden] == ["skipped", "passed"]
