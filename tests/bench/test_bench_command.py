"""The `pluginconf bench` command: usage errors, the JSON report of a quick run, interrupts
and a plugin that keeps dying, with every process it started reaped.

Timings are the benchmarks' business: these tests check that each figure is measured, and
that a benchmark that cannot run says why.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from cli_process import PLUGINCONF, run_cli
from test_bench_figures import DESIGN_KEYS

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=300, cwd=ROOT, env=env)


def test_bad_arguments_are_usage_errors():
    result = run("bench", "--only", "nope")
    assert result.returncode == 2
    assert "invalid choice: 'nope'" in result.stderr
    result = run("bench", "--", "./my-plugin")
    assert result.returncode == 2
    assert "takes no command after --" in result.stderr
    result = run("bench", "--json", "/no/such/dir/bench.json")
    assert result.returncode == 2
    assert "its directory does not exist" in result.stderr


def test_quick_run_of_two_sections_writes_every_figure_with_its_baseline(tmp_path):
    path = tmp_path / "bench.json"
    result = run("bench", "--quick", "--only", "hooks", "--only", "shutdown", "--json", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(path.read_text())
    names = [f["name"] for f in report["figures"]]
    assert names == [
        "hook_roundtrip_p50",
        "hook_roundtrip_p99",
        "graceful_shutdown_p50",
        "graceful_shutdown_max",
    ]
    for figure in report["figures"]:
        assert set(figure) >= DESIGN_KEYS
        assert figure["value"] > 0
    p50 = report["figures"][0]
    assert p50["baseline_name"] == "grpcio_unary_p50" and p50["baseline"] > 0
    # The report rounds value and baseline to 5 significant digits and the ratio to 3 decimals.
    assert p50["ratio"] == pytest.approx(p50["value"] / p50["baseline"], rel=1e-3, abs=6e-4)
    assert report["quick"] is True and report["targets_enforced"] is False
    assert report["sections"] == ["hooks", "shutdown"]
    assert "4 figures in" in result.stdout


def test_an_interrupted_run_stops_every_process_it_started():
    process = subprocess.Popen(
        [*PLUGINCONF, "bench", "--quick", "--only", "crash"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        # The first kill's line: a supervised plugin is running, and a cold start has run.
        for line in process.stdout:
            if "kill: crashed after" in line:
                break
        started = psutil.Process(process.pid).children(recursive=True)
        assert started, "the bench should have a plugin running now"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert "interrupted; the processes it started have been stopped" in stderr
    left = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"left running: {left}"


def test_a_plugin_that_keeps_dying_is_exit_2_with_the_reason_not_a_traceback():
    process = subprocess.Popen(
        [*PLUGINCONF, "bench", "--only", "hooks"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    seen: dict[int, psutil.Process] = {}
    try:
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(process.pid).children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        if "reference-plugin" in child.cmdline():
                            seen[child.pid] = child
                            child.kill()
            time.sleep(0.02)  # another process's children: nothing to wait on but polling
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert seen, "the bench never started a reference plugin"
    assert process.returncode == 2, stdout + stderr
    assert "pluginconf bench: a benchmark could not run: " in stderr
    assert "reference plugin" in stderr
    assert "Traceback" not in stderr
    left = [p for p in seen.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"left running: {left}"
