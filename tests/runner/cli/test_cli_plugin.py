"""The command line: `pluginconf plugin` and `pluginconf list`, their reports and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_process import PLUGINCONF, run_cli

from pluginconf.runner.registry import load_cases

TESTS = Path(__file__).resolve().parents[2]
MUTANT = [sys.executable, str(TESTS / "mutants" / "reference_mutant.py")]


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=timeout)


def test_the_reference_plugin_on_tcp_passes_the_tcp_cases(tmp_path):
    report_path = tmp_path / "report.json"
    result = run(
        "plugin", "--profile", "transport", "--run", "plugin/transport/*", "--json",
        str(report_path), "--", *PLUGINCONF, "reference-plugin", "--network", "tcp",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    outcomes = {c["id"]: c["outcome"] for c in json.loads(report_path.read_text())["cases"]}
    assert outcomes["plugin/transport/tcp-port-range"] == "passed"
    assert outcomes["plugin/transport/tcp-bad-port-range"] == "passed"
    # A SHOULD failure is a recommendation not met: reported, and it does not fail the run.
    assert outcomes["plugin/transport/prefers-unix"] == "not_met"
    assert "recommendations not met" in result.stdout
    assert result.stdout.strip().splitlines()[-1].endswith(", 1 recommendation not met")


def test_a_failing_case_is_exit_1_with_its_evidence(tmp_path):
    report_path = tmp_path / "report.json"
    result = run(
        "plugin", "--profile", "sdk", "--run", "plugin/sdk/echo/65537", "--run", "plugin/sdk/echo/1",
        "--json", str(report_path), "--", *MUTANT, "echo-flip-65536",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    # The failure names the requirement it breaks, of the three the case cites.
    assert "FAILED  plugin/sdk/echo/65537  [MUST RB-2] (pluginconf.v1)" in result.stdout
    assert "first difference at offset 65536" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "1 passed, 1 failed, 0 skipped"
    cases = {c["id"]: c for c in json.loads(report_path.read_text())["cases"]}
    assert cases["plugin/sdk/echo/65537"]["outcome"] == "failed"
    assert "offset 65536" in cases["plugin/sdk/echo/65537"]["message"]
    assert cases["plugin/sdk/echo/1"]["outcome"] == "passed"


def test_a_plugin_crash_is_recorded_with_its_stderr_and_the_run_goes_on(tmp_path):
    report_path = tmp_path / "report.json"
    result = run(
        "plugin", "--profile", "sdk", "--run", "plugin/hooks/payload-unicode",
        "--run", "plugin/sdk/status/2*",
        "--json", str(report_path), "--", *MUTANT, "crash-on-non-bmp",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    cases = {c["id"]: c for c in json.loads(report_path.read_text())["cases"]}
    crashed = cases["plugin/hooks/payload-unicode"]
    assert crashed["outcome"] == "failed"
    assert "the plugin process exited during this case" in crashed["message"]
    assert "exit status: 3" in crashed["message"]
    # The next cases ran against a new process.
    assert cases["plugin/sdk/status/200"]["outcome"] == "passed"
    assert cases["plugin/sdk/status/204"]["outcome"] == "passed"


def test_known_failing_turns_failures_into_xfailed_and_a_pass_into_a_failure(tmp_path):
    known = tmp_path / "known"
    known.write_text("# why each fails\nplugin/sdk/echo/65537   flips a byte at offset 65536\n")
    args = (
        "plugin",
        "--profile",
        "sdk",
        "--run",
        "plugin/sdk/echo/6553*",
        "--known-failing",
        str(known),
    )
    report_path = tmp_path / "report.json"
    result = run(*args, "--json", str(report_path), "--", *MUTANT, "echo-flip-65536")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(report_path.read_text())["summary"]
    assert (summary["passed"], summary["xfailed"], summary["failed"]) == (2, 1, 0)
    result = run(*args)  # against the reference, the listed case passes: stale list
    assert result.returncode == 1, result.stdout + result.stderr
    assert "XPASSED plugin/sdk/echo/65537" in result.stdout


def test_a_plugin_that_cannot_start_is_exit_2_with_the_reason():
    result = run(
        "plugin", "--", sys.executable, "-c",
        "import sys; sys.stderr.write('no luck\\n'); sys.exit(4)",
    )  # fmt: skip
    assert result.returncode == 2
    assert "the plugin could not be started" in result.stderr
    assert "exit status: 4" in result.stderr
    assert "no luck" in result.stderr
    result = run("plugin", "--", "/nonexistent/plugin")
    assert result.returncode == 2
    assert "could not execute the plugin" in result.stderr


@pytest.mark.runs_long(20)
def test_usage_errors_are_exit_2_with_a_specific_message(tmp_path):
    cases = {
        ("plugin", "--magic-cookie", "nokey"): "not KEY=VALUE",
        ("plugin", "--protocol-versions", "one"): "protocol versions 'one'",
        ("plugin", "--start-timeout", "0"): "--start-timeout 0 must be more than 0",
        ("plugin", "--run", "plugin/no-such/*"): "pattern 'plugin/no-such/*' matches no case",
        ("plugin", "--profile", "transport", "--run", "plugin/sdk/*"): "no case of the transport",
        ("plugin", "--known-failing", str(tmp_path / "absent")): "cannot read it",
        ("plugin", "-n", "many"): "-n 'many'",
        ("no-such-command",): "unknown command 'no-such-command'",
    }
    for args, message in cases.items():
        result = run(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
    bad_list = tmp_path / "known"
    bad_list.write_text("plugin/no-such-case  reason\n")
    result = run("plugin", "--known-failing", str(bad_list))
    assert result.returncode == 2
    assert "line 1: 'plugin/no-such-case' matches no case" in result.stderr


def test_list_plugin_gives_ids_levels_and_requirement_text():
    result = run("list", "plugin")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "plugin/handshake/line-format  MUST  transport" in lines
    assert any(
        line.strip().startswith("HS-12 [go-plugin] The plugin MUST write the handshake")
        for line in lines
    )
    assert lines[-1] == f"{len(load_cases('plugin'))} cases"
    verbose = run("list", "plugin", "--profile", "sdk", "-v")
    assert "Purpose:" in verbose.stdout and "Asserts:" in verbose.stdout
    assert "plugin/handshake/line-format" not in verbose.stdout


@pytest.mark.runs_long(17)
def test_pytest_usage_in_a_project_of_its_own(tmp_path):
    (tmp_path / "test_own.py").write_text("def test_own():\n    assert True\n")
    pytest_cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:asyncio"]
    common = ["--pluginconf-run", "plugin/sdk/status/*", "--pluginconf-run", "plugin/sdk/echo/1"]
    result = subprocess.run(
        [*pytest_cmd, "-q", "--pluginconf-plugin-cmd", "reference", *common, str(tmp_path)],
        capture_output=True, text=True, timeout=180, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "12 passed" in result.stdout
    mutant = " ".join([*MUTANT, "status-off-by-one"])
    result = subprocess.run(
        [*pytest_cmd, "-q", "-n", "2", "--pluginconf-plugin-cmd", mutant,
         "--pluginconf-profile", "sdk", *common, str(tmp_path)],
        capture_output=True, text=True, timeout=180, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "10 failed, 2 passed" in result.stdout
    assert "GET /status/418: status 419" in result.stdout


NETRPC_PLUGIN = [sys.executable, str(TESTS / "plugins" / "netrpc_plugin.py")]
# The cases that make no gRPC call, and so run on a netrpc (Mattermost) plugin.
NO_CALL_CASES = {
    "plugin/handshake/line-format",
    "plugin/handshake/first-bytes",
    "plugin/handshake/magic-cookie-missing",
    "plugin/handshake/magic-cookie-wrong",
    "plugin/handshake/version-negotiation",
    "plugin/handshake/version-none-common",
    "plugin/handshake/version-invalid-entries",
    "plugin/transport/unix-socket-mode",
    "plugin/transport/own-socket-dir",
    "plugin/transport/prefers-unix",
    "plugin/transport/address-per-process",
    "plugin/controller/sigterm",
    "plugin/controller/sigint-ignored",
    "plugin/controller/host-exit",
    "plugin/controller/sigterm-no-orphans",
    "plugin/handshake/within-start-timeout",
}


@pytest.mark.runs_long(35)
def test_the_terraform_target_on_the_reference_plugin_says_what_to_give(tmp_path):
    """The reference plugin is not a Terraform provider: its cookie and its version (1) are
    not Terraform's; each start failure says so and what to give, and the reports say why."""
    report_path = tmp_path / "report.json"
    result = run("plugin", "--target", "terraform", "--json", str(report_path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "refused the magic cookie TF_PLUGIN_MAGIC_COOKIE=" in result.stderr
    assert "--magic-cookie KEY=VALUE" in result.stderr
    assert "refused the magic cookie" in json.loads(report_path.read_text())["run"]["reason"]
    cookie = ("--magic-cookie", "PLUGINCONF_MAGIC_COOKIE=pluginconf")
    result = run("plugin", "--target", "terraform", *cookie)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "the terraform target's host does not speak (it offered 5,6)" in result.stderr
    assert "--protocol-versions" in result.stderr
    # Given both, the terraform preset (AutoMTLS on every start) passes the reference plugin.
    result = run(
        "plugin", "--target", "terraform", *cookie, "--protocol-versions", "1",
        "--profile", "transport", "--json", str(report_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(report_path.read_text())["options"]["auto_mtls"] == "always"


def test_a_plugin_that_needs_auto_mtls_is_told_to_use_always(tmp_path):
    mutant = [*MUTANT, "mtls-required", "--state-dir", str(tmp_path)]
    result = run("plugin", "--profile", "transport", "--", *mutant)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "run with --auto-mtls always" in result.stderr
    report_path = tmp_path / "report.json"
    result = run(
        "plugin", "--profile", "transport", "--auto-mtls", "always", "--run", "plugin/handshake/*",
        "--run", "plugin/controller/shutdown", "--json", str(report_path), "--", *mutant,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    outcomes = {c["id"]: c["outcome"] for c in json.loads(report_path.read_text())["cases"]}
    assert outcomes["plugin/handshake/line-format"] == "passed"
    assert outcomes["plugin/controller/shutdown"] == "passed"


@pytest.mark.runs_long(15)
def test_a_plugin_on_a_fixed_address_is_run_one_process_at_a_time(tmp_path):
    """go-plugin's Python example listens on 127.0.0.1:1234: two of its processes would answer
    each other's calls. The run finds it out, keeps one process at a time, and reports the
    sharing as one failure, of TR-14 (and TR-5, the port being outside the host's range)."""
    report_path = tmp_path / "report.json"
    result = run(
        "plugin", "--profile", "transport", "-n", "2", "--run", "plugin/transport/*",
        "--run", "plugin/controller/*", "--json", str(report_path),
        "--", *MUTANT, "tcp-fixed-port", "--state-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "one plugin process at a time" in result.stderr
    report = json.loads(report_path.read_text())
    assert report["options"]["one_process_at_a_time"] is True
    cases = {c["id"]: c for c in report["cases"]}
    shared = cases["plugin/transport/address-per-process"]
    assert shared["outcome"] == "failed"
    assert shared["violated"] == ["TR-14", "TR-5"]
    assert "both announced tcp:127.0.0.1:" in shared["message"]
    # Each process's behaviour is its own: the stop and host-exit cases judge the right one.
    for case_id in ("plugin/controller/shutdown", "plugin/controller/host-exit"):
        assert cases[case_id]["outcome"] == "passed", cases[case_id]
    assert cases["plugin/transport/tcp-port-range"]["violated"] == ["TR-5"]


def test_the_pytest_plugin_refuses_xdist_for_a_plugin_on_a_fixed_address(tmp_path):
    mutant = " ".join([*MUTANT, "tcp-fixed-port", "--state-dir", str(tmp_path)])
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:asyncio", "-q",
         "-n", "2", "--pluginconf-plugin-cmd", mutant, "--pluginconf-profile", "transport",
         "--pluginconf-run", "plugin/controller/shutdown", str(tmp_path)],
        capture_output=True, text=True, timeout=180, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 4, result.stdout + result.stderr
    assert "serves one fixed address" in result.stderr
    assert "Run with -n 0" in result.stderr


def test_a_netrpc_plugin_under_the_mattermost_target(tmp_path):
    """Mattermost plugins speak netrpc: the cases that need no call run, the others skip."""
    report_path = tmp_path / "report.json"
    result = run("plugin", "--target", "mattermost", "--json", str(report_path), "--",
                 *NETRPC_PLUGIN)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    cases = {c["id"]: c for c in json.loads(report_path.read_text())["cases"]}
    passed = {i for i, c in cases.items() if c["outcome"] == "passed"}
    assert passed == NO_CALL_CASES
    # Mattermost's host never sets PLUGIN_UNIX_SOCKET_DIR, so its plugins need not read it.
    assert cases["plugin/transport/unix-socket-dir"]["outcome"] == "skipped"
    assert (
        "never sets PLUGIN_UNIX_SOCKET_DIR" in cases["plugin/transport/unix-socket-dir"]["message"]
    )
    shutdown = cases["plugin/controller/shutdown"]
    assert shutdown["outcome"] == "skipped"
    assert "speak go-plugin's netrpc protocol; pluginconf checks gRPC calls only" in str(
        shutdown["message"]
    )
    cookie = ("--magic-cookie", "MATTERMOST_PLUGIN=Securely message teams, anywhere.")
    result = run("plugin", "--profile", "transport", *cookie, "--", *NETRPC_PLUGIN)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--target mattermost" in result.stderr
