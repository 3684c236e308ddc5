"""Every fault of the fake interpreters ends in its documented state and error (SPEC §17),
and a bystander plugin keeps working throughout (SV-20). The fakes' record files show what
the host actually did."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
from conftest import REFERENCE

from pluginconf.host.client import CircuitOpen, ClientConfig, HookTimeout
from pluginconf.host.environment import Environment
from pluginconf.host.launcher import LaunchSpec
from pluginconf.host.supervision.config import SupervisorConfig
from pluginconf.host.supervision.states import PluginState
from pluginconf.host.supervision.supervisor import Supervisor
from pluginconf.v1 import hooks_pb2

S = PluginState
FAKE = Path(__file__).resolve().parents[3] / "fake_interpreters" / "fakeplugin"
CONFIG = SupervisorConfig(
    client=ClientConfig(hook_timeout_s=1.0, ready_timeout_s=1.5, health_timeout_s=0.5),
    backoff_base_s=0.01,
    backoff_max_s=0.05,
    health_interval_s=0.2,
    restart_limit=2,
    exit_grace_s=0.5,
    term_grace_s=0.5,
)
BYSTANDER_CONFIG = replace(CONFIG, client=replace(CONFIG.client, health_timeout_s=10.0))


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator:
    """An environment with a reference plugin as bystander; add a fake with env.fake(...)."""
    environment = Environment(CONFIG)
    # The bystander's health checks are not under test: a generous timeout, so that a loaded
    # machine does not make it look hung (its restart would read as a disturbance).
    environment.add("bystander", LaunchSpec(argv=REFERENCE), config=BYSTANDER_CONFIG)

    def fake(scenario: dict, start_timeout_s: float = 10.0) -> Supervisor:
        path = tmp_path / f"scenario-{len(environment.plugins)}.json"
        scenario = {"record": {"file": str(tmp_path / "calls.jsonl")}, **scenario}
        path.write_text(json.dumps(scenario))
        spec = LaunchSpec(
            argv=[sys.executable, str(FAKE), str(path)], start_timeout_s=start_timeout_s
        )
        return environment.add("fake", spec, configuration={"mode": "test"})

    environment.fake = fake  # type: ignore[attr-defined]

    def record() -> list[dict]:
        # Lines end with "\n" only (text may hold U+2028); a last line without it is still
        # being written.
        text = (tmp_path / "calls.jsonl").read_text(encoding="utf-8")
        return [json.loads(line) for line in text.split("\n")[:-1]]

    environment.record = record  # type: ignore[attr-defined]
    await environment.get("bystander").enable()
    await environment.get("bystander").wait_for(S.ACTIVE)
    yield environment
    await environment.stop_all()
    bystander = environment.get("bystander")
    assert [e.new for e in bystander.events] == [S.STARTING, S.ACTIVE, S.STOPPED], (
        "bystander was disturbed"
    )


async def bystander_answers(env: Environment) -> None:
    reply = await env.execute_command(
        "bystander", hooks_pb2.ExecuteCommandRequest(command="/echo fine")
    )
    assert reply.text == "fine"


async def run_until(sup: Supervisor, state: PluginState, timeout_s: float = 30) -> None:
    await sup.enable()
    await sup.wait_for_event(state, timeout_s=timeout_s)


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("2|1|unix|/x|grpc", "core_version_mismatch"),
        ("1|7|unix|/x|grpc", "app_version_mismatch"),
        ("1|1|udp|/x|grpc", "unknown_network"),
        ("1|1|unix|/x|netrpc", "unsupported_protocol"),
        ("garbage|", "handshake_malformed"),
        ("1|1|unix|/nonexistent/x.sock|grpc", "unreachable"),
    ],
)
async def test_bad_handshakes_crash_then_fail_at_the_restart_limit(env, line, kind):
    sup = env.fake({"handshake": {"line": line}})
    await run_until(sup, S.FAILED)
    crashes = [e for e in sup.events if e.new is S.CRASHED]
    assert len(crashes) == 2
    assert {e.error_kind for e in crashes} == {kind}
    assert sup.events[-1].error_kind == "restart_limit"
    assert repr(line) in sup.last_error  # the evidence: the offending line itself
    await bystander_answers(env)


async def test_never_handshaking_is_a_start_timeout(env):
    sup = env.fake({"never_handshake": True}, start_timeout_s=0.5)
    await run_until(sup, S.FAILED)
    assert {e.error_kind for e in sup.events if e.new is S.CRASHED} == {"start_timeout"}
    await bystander_answers(env)


async def test_exit_before_handshake_carries_status_and_stderr(env):
    sup = env.fake({"handshake": {"exit_before": 3, "stderr": "config file missing"}})
    await run_until(sup, S.CRASHED)
    crash = next(e for e in sup.events if e.new is S.CRASHED)
    assert (crash.error_kind, crash.exit_status) == ("exited_before_handshake", 3)
    assert "config file missing" in crash.stderr_tail


async def test_noise_before_the_handshake_is_tolerated(env):
    sup = env.fake({"noise_before_handshake": 5})
    await run_until(sup, S.ACTIVE)
    assert len(sup.process.noise_lines) == 5


async def test_slow_start_within_the_timeout_activates(env):
    sup = env.fake({"slow_start": 1.0})
    start = time.monotonic()
    await run_until(sup, S.ACTIVE)
    assert time.monotonic() - start >= 1.0


async def test_crash_on_activate_is_a_failed_start(env):
    sup = env.fake({"crash": {"on": "activate"}})
    await run_until(sup, S.FAILED)
    crash = next(e for e in sup.events if e.new is S.CRASHED)
    assert crash.error_kind == "plugin_unavailable"
    assert "OnActivate" in crash.reason
    await bystander_answers(env)


async def test_crash_after_hook_calls_restarts_and_works_again(env):
    # OnConfigurationChange and OnActivate are calls 1 and 2; the 3rd call is the last.
    sup = env.fake({"crash": {"after_hook_calls": 3, "exit_code": 5}})
    await run_until(sup, S.ACTIVE)
    seen = len(sup.events)
    reply = await sup.call("ExecuteCommand", hooks_pb2.ExecuteCommandRequest(command="/x"))
    assert reply.text == "/x"
    crash = await sup.wait_for_event(S.CRASHED, after=seen)
    assert (crash.error_kind, crash.exit_status) == ("unexpected_exit", 5)
    await sup.wait_for_event(S.ACTIVE, after=seen)
    await bystander_answers(env)


async def test_hung_hook_times_out_then_the_circuit_opens(env):
    sup = env.fake({"hang": {"hook": "ExecuteCommand"}})
    await run_until(sup, S.ACTIVE)
    request = hooks_pb2.ExecuteCommandRequest(command="/x")
    for _ in range(3):
        with pytest.raises(HookTimeout):
            await sup.call("ExecuteCommand", request)
    with pytest.raises(CircuitOpen):
        await sup.call("ExecuteCommand", request)
    assert sup.state is S.ACTIVE
    await bystander_answers(env)


async def test_hung_health_is_killed_and_restarted(env):
    sup = env.fake({"hang": {"health": {"after_checks": 1}}})
    await run_until(sup, S.ACTIVE)
    crash = await sup.wait_for_event(S.CRASHED)
    assert crash.error_kind == "health_check_failed"
    await bystander_answers(env)


async def test_not_serving_is_a_failed_start(env):
    sup = env.fake({"health": "NOT_SERVING"})
    await run_until(sup, S.FAILED)
    assert {e.error_kind for e in sup.events if e.new is S.CRASHED} == {"not_serving"}
    assert "NOT_SERVING" in sup.events[1].reason


async def test_flapping_health_is_caught(env):
    sup = env.fake({"health": {"flap_every_s": 0.5}})
    await run_until(sup, S.ACTIVE)
    crash = await sup.wait_for_event(S.CRASHED, timeout_s=10)
    assert crash.error_kind == "health_check_failed"
    assert "NOT_SERVING" in crash.reason


async def test_activation_error_is_failed_without_restart(env):
    sup = env.fake({"activation_error": {"code": "license_missing", "message": "no licence key"}})
    await run_until(sup, S.FAILED)
    assert [e.new for e in sup.events] == [S.STARTING, S.FAILED]
    assert "license_missing" in sup.last_error and "no licence key" in sup.last_error


async def test_the_host_asks_implemented_first_and_never_calls_the_rest(env):
    sup = env.fake({"hooks": ["OnActivate", "ExecuteCommand"]})
    await run_until(sup, S.ACTIVE)
    await env.message_has_been_posted(hooks_pb2.Post(id="p"))
    await env.message_will_be_posted(hooks_pb2.Post(id="p"))
    await sup.disable()
    record = env.record()
    hooks = [r["hook"] for r in record if r["event"] == "call"]
    # Implemented before any other hook, and nothing the plugin does not implement.
    assert hooks == ["Implemented", "OnActivate"]
    assert record[-1]["event"] == "exiting"


async def test_configuration_comes_before_activation_with_exact_payloads(env):
    sup = env.fake({})
    await run_until(sup, S.ACTIVE)
    calls = [r for r in env.record() if r["event"] == "call"]
    assert [c["hook"] for c in calls] == ["Implemented", "OnConfigurationChange", "OnActivate"]
    assert calls[1]["request"] == {"configuration": {"mode": "test"}}
    assert calls[2]["request"]["plugin_id"] == "fake"


async def test_a_plugin_ignoring_shutdown_is_killed_by_the_sequence(env):
    sup = env.fake({"ignore_shutdown": True})
    await run_until(sup, S.ACTIVE)
    pid = sup.process.pid
    start = time.monotonic()
    await sup.disable()
    elapsed = time.monotonic() - start
    assert 0.9 < elapsed < 5, elapsed  # grace 0.5 s, SIGTERM ignored 0.5 s, then SIGKILL
    assert not psutil.pid_exists(pid)
    record = env.record()
    assert any(r["event"] == "shutdown_requested" for r in record)
    assert any(r["event"] == "signal" and r["signal"] == "SIGTERM" for r in record)


async def test_grandchildren_die_with_the_group(env):
    sup = env.fake({"spawn_grandchild": {"seconds": 60}})
    await run_until(sup, S.ACTIVE)
    pid = next(r["grandchild_pid"] for r in env.record() if r["event"] == "grandchild")
    grandchild = psutil.Process(pid)
    assert grandchild.is_running()
    await sup.disable()
    _, alive = psutil.wait_procs([grandchild], timeout=5)
    # Killed but not yet reaped by init counts as gone: it is not ours to reap.
    alive = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, "the grandchild outlived the plugin's process group"


async def test_a_stderr_flood_never_blocks_the_plugin(env):
    sup = env.fake({"flood_stderr": {"bytes": 100 * 1024 * 1024}})
    await run_until(sup, S.ACTIVE)
    for _ in range(20):
        reply = await sup.call("ExecuteCommand", hooks_pb2.ExecuteCommandRequest(command="/ok"))
        assert reply.text == "/ok"

    async def flood_done() -> None:
        while not any(r["event"] == "flood_done" for r in env.record()):  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # the record is another process's file: poll it

    await asyncio.wait_for(flood_done(), 30)
    assert sup.state is S.ACTIVE
    await bystander_answers(env)


async def test_process_is_in_its_own_group_with_the_documented_environment(env, tmp_path):
    sup = env.fake({})
    await run_until(sup, S.ACTIVE)
    started = next(r for r in env.record() if r["event"] == "started")
    assert started["pgid"] == started["pid"] == sup.process.pid
    assert started["stdio"]["0"] == "/dev/null"
    environ = started["env"]
    assert environ["PLUGINCONF_MAGIC_COOKIE"] == "pluginconf"
    assert environ["PLUGIN_PROTOCOL_VERSIONS"] == "1"
    socket_dir = environ["PLUGIN_UNIX_SOCKET_DIR"]
    assert os.stat(socket_dir).st_mode & 0o777 == 0o700
    assert (environ["PLUGIN_MIN_PORT"], environ["PLUGIN_MAX_PORT"]) == ("10000", "25000")
    await sup.disable()
    assert not os.path.exists(socket_dir)
