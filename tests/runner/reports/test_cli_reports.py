"""Reports are always written: on a start failure (exit 2), on SIGINT and SIGTERM (130, 143,
with the cases that ran), and a report path that cannot be written is refused before the run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cli_process import PLUGINCONF, run_cli

FAILS_TO_START = [sys.executable, "-c", "import sys; sys.stderr.write('no luck\\n'); sys.exit(4)"]


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=timeout)


def test_a_plugin_that_cannot_start_still_gets_both_reports_with_the_reason(tmp_path):
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    result = run("plugin", "--json", str(report), "--junit-xml", str(junit), "--", *FAILS_TO_START)
    assert result.returncode == 2, result.stdout + result.stderr
    written = json.loads(report.read_text())
    assert written["run"]["completed"] is False
    assert written["run"]["exit_status"] == 2
    assert "the plugin could not be started" in written["run"]["reason"]
    assert "no luck" in written["run"]["reason"]
    assert written["cases"] == [] and written["summary"]["passed"] == 0
    assert written["pluginconf_version"] and written["schema_version"] >= 2
    assert written["target_name"] == "pluginconf"
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "1"
    error = suite.find("testcase/error")
    assert error is not None and "no luck" in (error.text or "")


def test_an_adapter_that_cannot_start_still_gets_a_report(tmp_path):
    report = tmp_path / "report.json"
    result = run("host", "--json", str(report), "--", *FAILS_TO_START)
    assert result.returncode == 2, result.stdout + result.stderr
    written = json.loads(report.read_text())
    assert written["suite"] == "host"
    assert "the host adapter could not be started" in written["run"]["reason"]


@pytest.mark.parametrize(
    ("option", "make", "message"),
    [
        ("--json", lambda d: d / "missing-dir" / "r.json", "does not exist; create it first"),
        ("--json", lambda d: d, "is a directory; give a file name"),
        ("--junit-xml", lambda d: d / "missing-dir" / "j.xml", "does not exist; create it first"),
    ],
)
def test_a_report_path_that_cannot_be_written_is_refused_before_the_run(
    tmp_path, option, make, message
):
    result = run("plugin", option, str(make(tmp_path)), timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""  # refused before any case ran


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_run_writes_the_cases_that_ran(tmp_path, sig, status):
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    process = subprocess.Popen(
        [*PLUGINCONF, "plugin", "-n", "0", "--json", str(report), "--junit-xml", str(junit)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        # Without a terminal the console prints one mark per case: wait for three.
        marks = ""
        while len(marks) < 3:
            char = process.stdout.read(1)
            assert char, "the run ended before three cases"
            marks += char.strip()
        process.send_signal(sig)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == status, out + err
    assert f"interrupted ({sig.name})" in err
    assert "Traceback" not in err
    written = json.loads(report.read_text())
    assert written["run"]["completed"] is False
    assert written["run"]["exit_status"] == status
    assert written["run"]["reason"] == f"interrupted by {sig.name}"
    ran = [c["id"] for c in written["cases"]]
    assert len(ran) >= 3 and written["run"]["not_run"]
    assert not set(ran) & set(written["run"]["not_run"])
    # One line for the cases not run, not one per case.
    not_run = len(written["run"]["not_run"])
    assert f"interrupted ({sig.name}): {not_run} case{'s' if not_run > 1 else ''} not run" in err
    assert "not run" not in out
    assert all(c["outcome"] != "error" for c in written["cases"])
    assert Path(junit).exists()
