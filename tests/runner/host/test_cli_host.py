"""`pluginconf host` and `pluginconf list host`: the host suite's command line, reports, exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_process import run_cli

from pluginconf.runner.registry import load_cases

ROOT = Path(__file__).resolve().parents[3]
MINIMAL_ADAPTER = [sys.executable, str(ROOT / "docs" / "examples" / "minimal_adapter.py")]
# CI runs the heavy transfers at a reduced size; the full suite sends 256 MiB.
MAX_BODY = os.environ.get("PLUGINCONF_HEAVY_BYTES", str(256 * 1024 * 1024))


def run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=timeout)


@pytest.mark.runs_long(20)
def test_the_minimal_example_adapter_passes_the_launch_cases_and_skips_what_it_lacks():
    # Under --target go-plugin a feature the host declares it lacks (AutoMTLS) is a skip.
    result = run(
        "host", "-n", "2", "--target", "go-plugin", "--run", "host/launch/*",
        "--run", "host/broker/one-stream", "-v", "--", *MINIMAL_ADAPTER,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    launch = [c for c in load_cases("host") if c.id.startswith("host/launch/")]
    # Every go-plugin host opens the broker stream, HostAPI or not (BR-2).
    assert result.stdout.strip().splitlines()[-1] == f"{len(launch)} passed, 0 failed, 1 skipped"
    assert "SKIPPED  host/launch/mtls" in result.stdout


def test_a_missing_capability_is_a_skip_and_one_case_says_what_a_host_must_have(tmp_path):
    # The minimal adapter declares no HTTP front and no AutoMTLS. AutoMTLS is optional: its
    # case is skipped under every target. The front is not: under the pluginconf target
    # host/capabilities/declared fails, once, naming SE-1.
    report_path = tmp_path / "report.json"
    result = run(
        "host", "-n", "0", "--run", "host/launch/mtls", "--run", "host/capabilities/*",
        "--run", "host/serve-http/body-exact/1", "--json", str(report_path),
        "--", *MINIMAL_ADAPTER,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    cases = {c["id"]: c for c in json.loads(report_path.read_text())["cases"]}
    assert cases["host/launch/mtls"]["outcome"] == "skipped"
    assert "the host declares no AutoMTLS" in cases["host/launch/mtls"]["message"]
    declared = cases["host/capabilities/declared"]
    assert declared["outcome"] == "failed" and declared["violated"] == ["SE-1"], declared
    assert "the host reports no HTTP front" in declared["message"]
    for case_id, case in cases.items():
        if case_id.startswith("host/serve-http/"):
            assert case["outcome"] == "skipped", case
            assert "host/capabilities/declared reports what the host lacks" in case["message"]


def test_without_an_http_front_every_serve_http_case_skips_with_the_reason(tmp_path):
    cases_ = [c for c in load_cases("host") if c.id.startswith("host/serve-http/")]
    serve_http = [c.id for c in cases_]
    reason = "the host reports no HTTP front (HostInfo.http_base_url is empty)"
    for target in ("go-plugin", "pluginconf"):
        report_path = tmp_path / f"{target}.json"
        result = run(
            "host", "-n", "0", "--target", target, "--run", "host/serve-http/*",
            "--max-body", MAX_BODY, "--json", str(report_path), "--", *MINIMAL_ADAPTER,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        cases = json.loads(report_path.read_text())["cases"]
        assert [c["id"] for c in cases] == serve_http
        wrong = {
            c["id"]: f"{c['outcome']}: {c['message'][:300]}"
            for c in cases
            if c["outcome"] != "skipped" or reason not in c["message"]
        }
        assert not wrong, (target, wrong)
        assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.runs_long(35)
def test_auto_mtls_always_starts_every_plugin_with_it_and_never_skips_the_mtls_case(tmp_path):
    report_path = tmp_path / "always.json"
    always = run(
        "host", "-n", "2", "--auto-mtls", "always", "--run", "host/launch/*",
        "--json", str(report_path),
    )  # fmt: skip
    assert always.returncode == 0, always.stdout + always.stderr
    outcomes = {c["id"]: c for c in json.loads(report_path.read_text())["cases"]}
    skipped = {k: v["message"] for k, v in outcomes.items() if v["outcome"] != "passed"}
    assert list(skipped) == ["host/launch/no-inherited-secrets"], skipped
    assert "--auto-mtls always" in skipped["host/launch/no-inherited-secrets"]
    never = run(
        "host", "-n", "0", "--auto-mtls", "never", "--run", "host/launch/mtls", "-v",
    )  # fmt: skip
    assert never.returncode == 0, never.stdout + never.stderr
    assert "SKIPPED  host/launch/mtls" in never.stdout
    assert never.stdout.strip().splitlines()[-1] == "0 passed, 0 failed, 1 skipped"


def test_a_hook_the_adapter_cannot_fire_is_exit_1_with_the_evidence():
    result = run("host", "-n", "0", "--run", "host/filters/chain-order", "--", *MINIMAL_ADAPTER)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "host/filters/chain-order" in result.stdout
    assert "UNIMPLEMENTED" in result.stdout and "fires ExecuteCommand only" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "0 passed, 1 failed, 0 skipped"


def test_an_adapter_that_cannot_serve_is_exit_2_with_the_reason():
    result = run(
        "host", "--", sys.executable, "-c",
        "import sys; sys.stderr.write('no config\\n'); sys.exit(3)",
    )  # fmt: skip
    assert result.returncode == 2
    assert "the host adapter could not be started" in result.stderr
    assert "exited before serving HostControl" in result.stderr
    assert "no config" in result.stderr
    # An adapter that runs but never listens.
    silent = run(
        "host", "--start-timeout", "1", "--", sys.executable, "-c", "import time; time.sleep(60)"
    )
    assert silent.returncode == 2
    assert "PLUGINCONF_CONTROL_ADDRESS" in silent.stderr
    missing = run("host", "--", "/nonexistent/adapter")
    assert missing.returncode == 2
    assert "could not execute the adapter" in missing.stderr


def test_host_usage_errors_are_exit_2_with_a_specific_message():
    cases = {
        ("host", "--run", "host/no-such/*"): "pattern 'host/no-such/*' matches no case",
        ("host", "--run", "plugin/handshake/*"): "matches no case",
        ("host", "--start-timeout", "-1"): "--start-timeout -1 must be more than 0",
        ("host", "--max-body", "-5"): "--max-body: '-5' is not a size",
        ("host", "--profile", "sdk"): "unrecognized option '--profile'",
    }
    for args, message in cases.items():
        result = run(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)


def test_list_host_gives_ids_levels_and_requirement_text():
    result = run("list", "host")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "host/launch/environment  MUST  hooks" in lines
    assert any(line.split()[:5] == ["HS-1", "[go-plugin]", "The", "host", "MUST"] for line in lines)
    assert lines[-1] == f"{len(load_cases('host'))} cases"


def test_pytest_usage_with_the_host_suite(tmp_path):
    (tmp_path / "test_own.py").write_text("def test_own():\n    assert True\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:asyncio", "-q",
         "--pluginconf-host-cmd", "reference", "--pluginconf-run", "host/launch/environment",
         "--pluginconf-run", "host/dispatch/implemented-first", str(tmp_path)],
        capture_output=True, text=True, timeout=180, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
    both = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "--pluginconf-host-cmd", "reference", "--pluginconf-plugin-cmd", "reference",
         str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert both.returncode == 4, both.stdout + both.stderr
    assert "not both" in both.stderr
