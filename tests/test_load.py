"""Verdicts that do not depend on load: both suites pass against the references while two
CPU burners per core run, with no failure and no recommendation not met.

Marked ``load`` and left out of the default run (the burners would slow every other test);
CI runs them on their own: ``pytest -m load``. They are also the whole-suite checks of the
reports' shape.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from pluginconf.runner.registry import load_cases

pytestmark = [pytest.mark.load, pytest.mark.timeout(1200)]

PLUGINCONF = [sys.executable, "-m", "pluginconf"]
BURNERS_PER_CORE = 2
REPORT_KEYS = {"suite", "target", "profile", "summary", "cases", "run", "options", "target_name"}
SUMMARY_KEYS = {
    "passed", "failed", "skipped", "xfailed", "xpassed", "errors", "recommendations_not_met",
    "duration_s",
}  # fmt: skip
CASE_KEYS = {"id", "requirement", "level", "outcome", "duration_s", "message", "origin"}
# The largest body a case sends here. The load test is about time bounds, not sizes (the
# default run streams the heavy bodies): 16 MiB keeps every size boundary of the cases,
# 64 KiB and 4 MiB included, and spares the burners' CPU for the cases' own work.
MAX_BODY = str(16 * 1024 * 1024)
# What the reference plugin skips: the tcp cases (it listens on unix), the broker offers.
NOT_APPLICABLE = {
    "plugin/transport/tcp-port-range",
    "plugin/transport/tcp-bad-port-range",
    "plugin/transport/tcp-one-port-range",
    "plugin/broker/plugin-announcements",
}


@pytest.fixture
def burners() -> Iterator[int]:
    """Two busy loops per core, each in a process group of its own, killed and reaped after."""
    count = BURNERS_PER_CORE * (os.cpu_count() or 1)
    started = [
        subprocess.Popen(
            [sys.executable, "-c", "while True: pass"],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(count)
    ]
    try:
        yield count
    finally:
        for process in started:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _run_both(
    plugin_args: list[str], host_args: list[str], timeout_s: float
) -> dict[str, tuple[subprocess.CompletedProcess[str], float]]:
    """Both suites at once, each as `pluginconf` would be run by hand; their results and
    wall times. Running them together adds their load to the burners' and halves the wait."""
    started = time.monotonic()
    running = {
        name: subprocess.Popen(
            [*PLUGINCONF, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in (("plugin", plugin_args), ("host", host_args))
    }
    done: dict[str, tuple[subprocess.CompletedProcess[str], float]] = {}
    try:
        for name, process in running.items():
            out, err = process.communicate(
                timeout=max(1.0, timeout_s - (time.monotonic() - started))
            )
            result = subprocess.CompletedProcess(process.args, process.returncode, out, err)
            done[name] = (result, time.monotonic() - started)
    finally:
        for process in running.values():
            if process.poll() is None:
                process.kill()
                process.communicate()
    return done


def _check_report(report: dict, suite: str, ids: list[str]) -> None:
    assert set(report) >= REPORT_KEYS
    assert report["suite"] == suite
    assert set(report["summary"]) >= SUMMARY_KEYS
    assert [c["id"] for c in report["cases"]] == ids
    for case in report["cases"]:
        assert set(case) >= CASE_KEYS
        assert case["requirement"] and case["level"] in ("MUST", "SHOULD")
        assert case["origin"]
    assert report["run"] == {"completed": True, "exit_status": 0, "reason": "", "not_run": []}


def _not_passed(report: dict) -> dict[str, str]:
    return {
        c["id"]: f"{c['outcome']}: {c['message'][:400]}"
        for c in report["cases"]
        if c["outcome"] != "passed"
    }


def test_both_suites_pass_the_references_under_load(tmp_path: Path, burners: int):
    plugin_report, junit = tmp_path / "plugin.json", tmp_path / "junit.xml"
    host_report = tmp_path / "host.json"
    done = _run_both(
        [
            "plugin",
            "-n",
            "2",
            "--max-body",
            MAX_BODY,
            "--json",
            str(plugin_report),
            "--junit-xml",
            str(junit),
        ],
        ["host", "-n", "4", "--max-body", MAX_BODY, "--json", str(host_report)],
        timeout_s=1100,
    )
    (plugin, plugin_s), (host, host_s) = done["plugin"], done["host"]
    print(
        f"under {burners} burners, both suites at once: plugin {plugin_s:.1f} s, host {host_s:.1f} s"
    )

    # The plugin suite: the reference plugin listens on unix, so the tcp cases do not apply,
    # and it offers nothing through the broker.
    report = json.loads(plugin_report.read_text())
    not_passed = _not_passed(report)
    assert not_passed.keys() == NOT_APPLICABLE, (plugin_s, not_passed)
    assert plugin.returncode == 0, plugin.stdout[-4000:] + plugin.stderr[-4000:]
    ids = [c.id for c in load_cases("plugin")]
    _check_report(report, "plugin", ids)
    assert report["target"] == ["pluginconf", "reference-plugin"]
    assert report["profile"] == "sdk"
    closing = plugin.stdout.strip().splitlines()[-1]
    skipped = len(NOT_APPLICABLE)
    assert closing == f"{len(ids) - skipped} passed, 0 failed, {skipped} skipped"
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and int(suite.get("tests", "0")) == len(ids)

    # The host suite: only the fixed body sizes above --max-body are skipped.
    report = json.loads(host_report.read_text())
    not_passed = _not_passed(report)
    too_large = {
        c["id"]
        for c in report["cases"]
        if c["id"].startswith("host/serve-http/body-exact/")
        and c["id"].rsplit("/", 1)[1].isdigit()
        and int(c["id"].rsplit("/", 1)[1]) > int(MAX_BODY)
    }
    assert not_passed.keys() == too_large, (host_s, not_passed)
    assert all(not_passed[i].startswith("skipped") for i in too_large)
    assert host.returncode == 0, host.stdout[-4000:] + host.stderr[-4000:]
    _check_report(report, "host", [c.id for c in load_cases("host")])
    assert report["target"] == ["pluginconf", "reference-host-adapter"]
