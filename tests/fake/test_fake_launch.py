"""The fake plugin launched every way a host runs it, and well behaved."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from fake_support import (
    ALL_HOOKS,
    FAKE,
    SERVING,
    UNARY_REQUESTS,
    body_of,
    check,
    exit_status,
    fake,
    has_error,
    hooks,
    http,
    kinds,
    recorded,
    scenario,
)

from pluginconf.reference.generator import generate_bytes
from pluginconf.v1 import hooks_pb2

# -- well-behaved -------------------------------------------------------------------------


async def test_well_behaved_answers_every_hook_and_serves_http(launch_plugin, tmp_path):
    plugin = await launch_plugin(fake(scenario(tmp_path, {})))
    stub = hooks(plugin)
    assert list((await stub.Implemented(hooks_pb2.ImplementedRequest())).hooks) == ALL_HOOKS
    for name, request in UNARY_REQUESTS.items():
        response = await getattr(stub, name)(request, timeout=5)
        assert not has_error(response), name
    answer = await stub.ExecuteCommand(hooks_pb2.ExecuteCommandRequest(command="/hi 🧩"))
    assert (answer.text, answer.response_type) == ("/hi 🧩", "ephemeral")
    assert await check(plugin) == SERVING

    body = generate_bytes(200_000, seed=7)
    frames, error = await http(plugin, "/echo", body=body)
    assert error is None
    assert kinds(frames)[0] == "init" and frames[0].init.status == 200
    assert kinds(frames)[-1] == "end" and not frames[-1].end.error
    assert body_of(frames) == body
    frames, error = await http(plugin, "/bytes", "n=300000&seed=3")
    assert error is None and kinds(frames)[-1] == "end"
    assert body_of(frames) == generate_bytes(300_000, seed=3)
    frames, _ = await http(plugin, "/nowhere")
    assert frames[0].init.status == 404

    report = await plugin.stop()
    assert (report.ended_by, report.exit_status) == ("shutdown", 0)


async def test_runs_directly_like_an_interpreter_and_stops_on_sigterm(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {})
    # As a host would run it: the file itself, through its #! line; python3 on PATH is ours.
    path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"
    plugin = await launch_plugin([str(FAKE), argv[-1]], env={"PATH": path})
    assert await check(plugin) == SERVING
    plugin.process.send_signal(signal.SIGTERM)
    assert await exit_status(plugin) == 0
    assert record.events("signal")[0]["signal"] == "SIGTERM"
    exiting = record.events("exiting")[-1]
    assert (exiting["reason"], exiting["status"]) == ("SIGTERM", 0)


@pytest.mark.parametrize("transport", ["tcp", "auto-mtls"])
async def test_well_behaved_over_tcp_and_with_auto_mtls(launch_plugin, tmp_path, transport):
    data = {"network": "tcp"} if transport == "tcp" else {}
    plugin = await launch_plugin(fake(scenario(tmp_path, data)), auto_mtls=transport != "tcp")
    assert plugin.handshake.network == ("tcp" if transport == "tcp" else "unix")
    assert (plugin.handshake.server_cert_der is not None) == (transport == "auto-mtls")
    answer = await hooks(plugin).ExecuteCommand(hooks_pb2.ExecuteCommandRequest(command="/t"))
    assert answer.text == "/t"


async def test_runs_as_python_m_pluginconf_fake(launch_plugin, tmp_path):
    path = scenario(tmp_path, {"command_response": {"text": "via -m"}})
    plugin = await launch_plugin([sys.executable, "-m", "pluginconf.fake", str(path)])
    answer = await hooks(plugin).ExecuteCommand(hooks_pb2.ExecuteCommandRequest(command="/m"))
    assert answer.text == "via -m"


def test_python_m_checks_the_scenario_first(tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "pluginconf.fake", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30)

    result = run("--check", str(scenario(tmp_path, {"filter": {"action": "reject"}})))
    assert (result.returncode, result.stderr) == (0, "")
    assert "is valid" in result.stdout
    result = run(str(scenario(tmp_path, {"filter": {"action": "drop"}}, "bad.json")))
    assert (result.returncode, result.stdout) == (2, "")
    assert 'filter.action: expected "keep", "modify" or "reject", got "drop"' in result.stderr


@pytest.mark.runs_long(20)
def test_well_behaved_passes_the_cli_checks(tmp_path):
    path = scenario(tmp_path, {"comment": "a minimal correct plugin"})
    result = subprocess.run(
        [sys.executable, "-m", "pluginconf", "plugin", "-n", "2", "--", *fake(path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout
