"""The command line: exit statuses, errors, the JSON report."""

from __future__ import annotations

import json
import subprocess
import sys

PLUGINCONF = [sys.executable, "-m", "pluginconf"]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PLUGINCONF, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_plugin_against_the_reference_passes_and_writes_json(tmp_path):
    report_path = tmp_path / "report.json"
    result = run("plugin", "--json", str(report_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1].endswith("0 failed, 0 skipped")
    report = json.loads(report_path.read_text())
    assert report["suite"] == "plugin"
    assert set(report["summary"]) >= {
        "passed",
        "failed",
        "skipped",
        "xfailed",
        "xpassed",
        "errors",
        "duration_s",
    }
    assert report["summary"]["failed"] == 0 and report["summary"]["passed"] >= 8
    assert all(c["outcome"] == "passed" for c in report["cases"])


def test_plugin_that_cannot_start_is_exit_2_with_the_reason():
    result = run(
        "plugin",
        "--",
        sys.executable,
        "-c",
        "import sys; sys.stderr.write('no luck\\n'); sys.exit(4)",
    )
    assert result.returncode == 2
    assert "could not be started" in result.stderr
    assert "exit status: 4" in result.stderr
    assert "no luck" in result.stderr


def test_a_failing_plugin_is_exit_1_with_the_failed_check(tmp_path):
    # A plugin whose GRPCController.Shutdown answers OK but does nothing: the host must
    # escalate to SIGTERM, and the shutdown check must fail.
    plugin = tmp_path / "stubborn.py"
    plugin.write_text(
        "from pluginconf.plugin import Plugin, serve\n"
        "from pluginconf.plugin import server\n"
        "class Stubborn(server.ControllerService):\n"
        "    async def Shutdown(self, request, context):\n"
        "        return server.grpc_controller_pb2.Empty()\n"
        "server.ControllerService = Stubborn\n"
        "serve(Plugin())\n"
    )
    result = run("plugin", "-v", "--", sys.executable, str(plugin), timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED  plugin/controller/shutdown-exits" in result.stdout
    assert "did not exit after GRPCController.Shutdown" in result.stdout


def test_usage_errors_are_exit_2():
    assert run("plugin", "--magic-cookie", "nokey").returncode == 2
    assert run("plugin", "--protocol-versions", "one").returncode == 2
    assert run("no-such-command").returncode == 2
    assert run("plugin", "--start-timeout", "soon").returncode == 2
