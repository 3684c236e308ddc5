"""The plugin suite's transport profile against a real go-plugin 1.0.1 plugin.

``goplugin/main.go`` is a go-plugin plugin of another application (its own cookie, protocol
versions 5 and 6), built against Debian's go-plugin 1.0.1. `pluginconf plugin --profile
transport` must pass it but for the cases listed, with their reasons, in
``goplugin-1.0.1.known-failing``: what go-plugin 1.0.1 cannot meet is reported, not hidden.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from gobuild import go_build

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
KNOWN_FAILING = HERE / "goplugin-1.0.1.known-failing"
COOKIE = "PLUGINCONF_INTEROP_COOKIE=goplugin-interop"
# Cases that need a tcp plugin; go-plugin uses unix sockets on Linux.
NOT_APPLICABLE = {"plugin/transport/tcp-port-range", "plugin/transport/tcp-bad-port-range"}


@pytest.fixture(scope="module")
def goplugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return go_build(HERE / "goplugin", tmp_path_factory.mktemp("goplugin"), "goplugin")


def _suite(goplugin: Path, report: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pluginconf",
            "plugin",
            "--profile",
            "transport",
            "--magic-cookie",
            COOKIE,
            "--protocol-versions",
            "5,6",
            "--json",
            str(report),
            *extra,
            "--",
            str(goplugin),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def _known() -> set[str]:
    lines = KNOWN_FAILING.read_text().splitlines()
    return {line.split()[0] for line in lines if line.strip() and not line.startswith("#")}


def test_transport_profile_passes_but_for_the_known_failures(goplugin, tmp_path):
    report_path = tmp_path / "report.json"
    result = _suite(goplugin, report_path, "--known-failing", str(KNOWN_FAILING))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(report_path.read_text())
    outcomes = {case["id"]: case["outcome"] for case in report["cases"]}
    assert {i for i, o in outcomes.items() if o == "xfailed"} == _known()
    assert {i for i, o in outcomes.items() if o == "skipped"} == NOT_APPLICABLE
    passed = {i for i, o in outcomes.items() if o == "passed"}
    assert passed == set(outcomes) - _known() - NOT_APPLICABLE
    # The version negotiation really ran against the plugin's 5 and 6.
    assert "plugin/handshake/version-negotiation" in passed
    assert report["summary"]["xfailed"] == len(_known())


def test_without_the_list_the_failures_are_reported_with_evidence(goplugin, tmp_path):
    result = _suite(goplugin, tmp_path / "report.json", "--run", "plugin/transport/unix-*")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED  plugin/transport/unix-socket-dir" in result.stdout
    assert "is not directly inside PLUGIN_UNIX_SOCKET_DIR" in result.stdout
    assert "others may connect" in result.stdout
    assert result.stdout.splitlines()[-1] == "0 passed, 2 failed, 0 skipped"


def test_the_hooks_profile_on_a_plugin_without_hooks_is_a_usage_error(goplugin, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pluginconf", "plugin", "--magic-cookie", COOKIE,
         "--protocol-versions", "5,6", "--", str(goplugin)],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "does not serve pluginconf.v1.Hooks" in result.stderr
    assert "use --profile transport" in result.stderr
