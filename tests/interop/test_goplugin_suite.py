"""The plugin suite's transport profile against a real go-plugin 1.0.1 plugin.

``goplugin/main.go`` is a go-plugin plugin of another application (its own cookie, protocol
versions 5 and 6), built against Debian's go-plugin 1.0.1. `pluginconf plugin --profile
transport` must pass it but for the cases listed, with their reasons, in
``goplugin-1.0.1.known-failing``: what go-plugin 1.0.1 cannot meet is reported, not hidden.
Under ``--target go-plugin`` only the go-plugin rule it really breaks fails the run (TR-1,
which go-plugin brought in 1.5.0), with the upgrade hint; the rest are recommendations.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from gobuild import go_build

from pluginconf.fuzz.plugin.context import PluginFuzzContext
from pluginconf.fuzz.plugin.properties import check_versions
from pluginconf.runner.options import build_options

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
KNOWN_FAILING = HERE / "goplugin-1.0.1.known-failing"
COOKIE = "PLUGINCONF_INTEROP_COOKIE=goplugin-interop"
# Cases that need a tcp plugin; go-plugin uses unix sockets on Linux.
NOT_APPLICABLE = {
    "plugin/transport/tcp-port-range",
    "plugin/transport/tcp-bad-port-range",
    "plugin/transport/tcp-one-port-range",
    "plugin/broker/plugin-announcements",  # the plugin offers nothing through the broker
}
# Of the known failures, those that break a MUST rule of go-plugin's own.
GO_PLUGIN_FAILURES = {"plugin/transport/unix-socket-dir"}


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


def _known() -> dict[str, str]:
    """Case id -> the requirements its reason names (the reason's first words)."""
    known = {}
    for line in KNOWN_FAILING.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            case_id, reason = line.split(maxsplit=1)
            known[case_id] = reason.split(" (")[0]
    return known


def _outcomes(report_path: Path) -> dict[str, dict[str, object]]:
    return {case["id"]: case for case in json.loads(report_path.read_text())["cases"]}


@pytest.fixture(scope="module")
def go_plugin_run(
    goplugin: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, object]]]:
    """One run of the transport profile under --target go-plugin, which the tests below read."""
    report_path = tmp_path_factory.mktemp("go-plugin-run") / "report.json"
    result = _suite(goplugin, report_path, "--target", "go-plugin")
    return result, _outcomes(report_path)


def test_exactly_the_known_failures_fail_each_breaking_the_requirements_its_line_names(
    go_plugin_run,
):
    _, cases = go_plugin_run
    outcomes = {case_id: case["outcome"] for case_id, case in cases.items()}
    not_passed = {i for i, o in outcomes.items() if o != "passed"}
    assert not_passed == set(_known()) | NOT_APPLICABLE, outcomes
    assert all(outcomes[i] == "skipped" for i in NOT_APPLICABLE)
    for case_id, named in _known().items():
        violated = ", ".join(cases[case_id]["violated"])  # type: ignore[arg-type]
        assert outcomes[case_id] in ("failed", "not_met"), (case_id, cases[case_id])
        assert violated == named, (case_id, violated, named)
    # The version negotiation really ran against the plugin's 5 and 6; a socket of mode 0755
    # in TMPDIR refuses other users, as TR-2 asks.
    assert outcomes["plugin/handshake/version-negotiation"] == "passed"
    assert outcomes["plugin/transport/unix-socket-mode"] == "passed"


def test_under_the_go_plugin_target_only_its_own_rules_fail_the_run(go_plugin_run):
    result, cases = go_plugin_run
    assert result.returncode == 1, result.stdout + result.stderr
    failed = {i for i, c in cases.items() if c["outcome"] == "failed"}
    not_met = {i for i, c in cases.items() if c["outcome"] == "not_met"}
    assert failed == GO_PLUGIN_FAILURES
    assert not_met == set(_known()) - GO_PLUGIN_FAILURES
    assert "upgrade go-plugin to 1.5.0 or later" in str(
        cases["plugin/transport/unix-socket-dir"]["message"]
    )
    assert (
        result.stdout.strip().splitlines()[-1].endswith(f", {len(not_met)} recommendations not met")
    )


def test_the_known_failing_list_makes_the_run_pass(goplugin, tmp_path):
    """`--known-failing` turns exactly the listed failures into xfails: exit 0. (The cases
    that need no more than a launch of their own, to keep the run short.)"""
    report_path = tmp_path / "report.json"
    result = _suite(
        goplugin, report_path, "--known-failing", str(KNOWN_FAILING),
        "--run", "plugin/transport/*", "--run", "plugin/stdio/*", "--run", "plugin/mtls/p256-key",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    outcomes = {case_id: case["outcome"] for case_id, case in _outcomes(report_path).items()}
    assert {i for i, o in outcomes.items() if o == "xfailed"} == set(_known()) & set(outcomes)
    assert "plugin/transport/unix-socket-dir" in outcomes


def test_without_the_list_the_failures_are_reported_with_evidence(goplugin, tmp_path):
    result = _suite(goplugin, tmp_path / "report.json", "--run", "plugin/transport/unix-*")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED  plugin/transport/unix-socket-dir  [MUST TR-1] (go-plugin)" in result.stdout
    assert "is not directly inside PLUGIN_UNIX_SOCKET_DIR" in result.stdout
    assert "upgrade go-plugin to 1.5.0 or later" in result.stdout
    assert result.stdout.splitlines()[-1] == "1 passed, 1 failed, 0 skipped"


def test_the_hooks_profile_on_a_plugin_without_hooks_is_a_usage_error(goplugin, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pluginconf", "plugin", "--magic-cookie", COOKIE,
         "--protocol-versions", "5,6", "--", str(goplugin)],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "does not serve pluginconf.v1.Hooks" in result.stderr
    assert "use --profile transport" in result.stderr


def test_the_versions_property_holds_for_go_plugin_itself(goplugin, tmp_path):
    """go-plugin ignores an entry with whitespace around a number (" 6"), with a warning:
    HS-11 allows it, and the fuzzer's property must too."""
    report_path = tmp_path / "fuzz.json"
    result = subprocess.run(
        [sys.executable, "-m", "pluginconf", "fuzz", "plugin", "--target", "go-plugin",
         "--magic-cookie", COOKIE, "--protocol-versions", "5,6", "--profile", "transport",
         "--property", "handshake/protocol-versions-env", "--examples", "40", "--seed", "3",
         "--json", str(report_path), "--", str(goplugin)],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(report_path.read_text())["failures"] == []


@pytest.mark.parametrize("value", [" 6", "5, 6", "6 ,5", " 5 "])
def test_go_plugin_ignoring_padded_versions_meets_hs11(goplugin, value):
    """go-plugin reads " 6" as no version (strconv.Atoi does not trim) and offers its lowest,
    5: HS-11 lets a plugin take such an entry or ignore it."""
    options = build_options(
        [str(goplugin)], profile="transport", magic_cookie=COOKIE, protocol_versions="5,6",
        start_timeout=60, max_body=0, target="go-plugin",
    )  # fmt: skip
    with asyncio.Runner() as runner:
        context = PluginFuzzContext(runner, options)
        runner.run(check_versions(context, value))  # raises PropertyFailed when it does not hold
