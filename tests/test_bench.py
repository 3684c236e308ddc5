"""`pluginconf bench`: figures and targets, the JSON report, failures, interrupts and leaks.

Timings are the benchmarks' business: these tests check that each figure is measured, that
a target can be missed, and that a benchmark that cannot run says why.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pluginconf.bench.arguments import SECTION_NAMES
from pluginconf.bench.errors import BenchError
from pluginconf.bench.figures import (
    Figure,
    at_least,
    at_most,
    baseline_plus,
    p99,
    ratio_at_least,
    ratio_at_most,
)
from pluginconf.bench.processes import raw_server, reference_plugin, run_pluginconf, serve_process
from pluginconf.bench.report import exit_status, missed_lines
from pluginconf.bench.sections import NAMES
from pluginconf.bench.sizes import FULL, QUICK
from pluginconf.bench.streams import ECHO_PATH
from pluginconf.bench.transfers import grpc_echo, http_echo

ROOT = Path(__file__).resolve().parent.parent
PLUGINCONF = [sys.executable, "-m", "pluginconf"]
DESIGN_KEYS = {"name", "unit", "value", "baseline_name", "baseline", "ratio", "target", "met"}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PLUGINCONF, *args], capture_output=True, text=True, timeout=300, cwd=ROOT,
        stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip


# -- figures and targets ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "value", "baseline", "met", "text"),
    [
        (ratio_at_most(1.25), 1.25, 1.0, True, "<= 1.25x baseline"),
        (ratio_at_most(1.25), 1.26, 1.0, False, "<= 1.25x baseline"),
        (ratio_at_least(0.9), 90.0, 100.0, True, ">= 0.9x baseline"),
        (ratio_at_least(0.9), 89.9, 100.0, False, ">= 0.9x baseline"),
        (ratio_at_least(0.5), 10.0, None, False, ">= 0.5x baseline"),
        (at_most(64, "MiB"), 64.0, None, True, "<= 64 MiB"),
        (at_most(64, "MiB"), 64.1, None, False, "<= 64 MiB"),
        (at_most(0.05, "s"), 0.051, None, False, "<= 50 ms"),
        (at_most(30, "s"), 29.0, None, True, "<= 30 s"),
        (at_least(50, "/s"), 49.9, 200.0, False, ">= 50/s"),
        (baseline_plus(0.1, "s"), 0.40, 0.30, True, "<= baseline + 100 ms"),
        (baseline_plus(0.1, "s"), 0.41, 0.30, False, "<= baseline + 100 ms"),
    ],
)
def test_a_target_is_met_or_missed_by_its_rule(target, value, baseline, met, text):
    figure = Figure("x", "s", value, "b" if baseline else None, baseline, target)
    assert figure.met is met
    assert target.describe() == text
    assert figure.to_json()["met"] is met


def test_a_figure_reports_the_design_keys_with_its_ratio():
    figure = Figure(
        "hook_roundtrip_p50", "s", 0.00134, "grpcio_unary_p50", 0.00107, ratio_at_most(1.25)
    )
    data = figure.to_json()
    assert set(data) == DESIGN_KEYS
    assert data["ratio"] == round(0.00134 / 0.00107, 3)
    assert data["met"] is False
    assert Figure("graceful_shutdown_max", "s", 0.01).to_json()["ratio"] is None


def test_p99_is_the_nearest_rank():
    assert p99(list(range(1, 101))) == 99
    assert p99([5.0]) == 5.0


def test_a_missed_target_fails_a_full_run_but_not_a_quick_one():
    missed = [Figure("http_echo_throughput", "MiB/s", 10.0, "raw", 100.0, ratio_at_least(0.5))]
    met = [Figure("plugin_rss_growth", "MiB", 3.0, target=at_most(64, "MiB"))]
    assert exit_status(met + missed, FULL) == 1
    assert exit_status(met, FULL) == 0
    assert exit_status(met + missed, QUICK) == 0
    assert missed_lines(missed) == [
        "target not met: http_echo_throughput = 10.0 MiB/s (ratio 0.10), target >= 0.5x baseline"
    ]


def test_the_sections_are_the_ones_the_cli_offers():
    assert NAMES == SECTION_NAMES


# -- a benchmark that cannot run says why -------------------------------------------------


async def test_an_echo_that_does_not_come_back_intact_is_a_bench_error():
    async with serve_process() as served:
        await http_echo(served.base_url, ECHO_PATH, 65536, 30)  # the real echo is fine
        with pytest.raises(BenchError, match="did not return what was sent: status 200"):
            await http_echo(served.base_url, "/plugins/ref/sha256", 65536, 30)


async def test_a_grpc_echo_that_does_not_come_back_intact_is_a_bench_error():
    async with raw_server() as raw, reference_plugin() as sdk:
        await grpc_echo(raw.stub, 3 * 65536 + 1)
        await grpc_echo(sdk.stub, 3 * 65536 + 1)
        # /sha256 reads the body and answers with its length and digest instead.
        with pytest.raises(BenchError, match="did not return what was sent: 196609 bytes sent"):
            await grpc_echo(sdk.stub, 3 * 65536 + 1, path="/sha256")


async def test_a_run_that_fails_is_a_bench_error_quoting_its_output():
    with pytest.raises(BenchError) as caught:
        await run_pluginconf(["plugin", "--run", "plugin/no-such-case/*"], 60)
    message = str(caught.value)
    assert "exited with status 2 (0 expected)" in message
    assert "plugin/no-such-case/*" in message


# -- the command --------------------------------------------------------------------------


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
