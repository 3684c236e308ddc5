"""`pluginconf reference-host-adapter`, driven as the host suite drives it: a real subprocess,
HostControl over a unix socket, real (fake) plugins, the host's real HTTP front."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil
import pytest

from pluginconf.control import control_pb2, control_pb2_grpc
from pluginconf.protocol.mtls import generate_certificate
from pluginconf.v1 import hooks_pb2

FAKE = Path(__file__).resolve().parent.parent / "fake_interpreters" / "fakeplugin"
ADAPTER = [sys.executable, "-m", "pluginconf", "reference-host-adapter"]
ALL_HOOKS = sorted(
    [
        "ExecuteCommand",
        "MessageHasBeenPosted",
        "MessageWillBePosted",
        "OnActivate",
        "OnConfigurationChange",
        "OnDeactivate",
        "ServeHTTP",
    ]
)
# Quick timings, so that failures and stops take well under a second each.
FAST = control_pb2.HostPolicy(
    start_timeout_ms=10_000,
    hook_timeout_ms=2_000,
    backoff_base_ms=10,
    backoff_max_ms=50,
    stop_grace_ms=500,
)
# Reconnect quickly while the adapter is still starting.
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 200),
]


@dataclass
class Adapter:
    process: asyncio.subprocess.Process
    address: str
    folder: Path
    stderr_path: Path
    stub: Any = None
    channel: grpc.aio.Channel | None = None
    scenarios: list[Path] = field(default_factory=list)

    def scenario(self, content: dict[str, Any]) -> list[str]:
        """The command line of a fake plugin playing this scenario."""
        path = self.folder / f"scenario-{len(self.scenarios)}.json"
        path.write_text(json.dumps(content))
        self.scenarios.append(path)
        return [sys.executable, str(FAKE), str(path)]

    async def load(
        self,
        plugin_id: str,
        scenario: dict[str, Any] | None = None,
        policy: control_pb2.HostPolicy = FAST,
        configuration: dict[str, str] | None = None,
    ) -> control_pb2.PluginStatus:
        manifest = control_pb2.PluginManifest(
            id=plugin_id,
            command=self.scenario(scenario or {}),
            configuration=configuration or {},
        )
        return await self.stub.LoadPlugin(
            control_pb2.LoadPluginRequest(manifest=manifest, policy=policy), timeout=10
        )

    async def enable_until(self, plugin_id: str, state: str) -> list[control_pb2.PluginStatus]:
        """Enable the plugin and watch it until ``state``: every status seen, in order."""
        call = self.stub.WatchPlugin(control_pb2.PluginRef(plugin_id=plugin_id))
        seen: list[control_pb2.PluginStatus] = []
        try:
            async with asyncio.timeout(30):
                seen.append(await call.read())  # the current status, before enabling
                await self.stub.EnablePlugin(control_pb2.PluginRef(plugin_id=plugin_id))
                while seen[-1].state != state:
                    seen.append(await call.read())
        finally:
            call.cancel()
        return seen

    async def fire(self, **hook: Any) -> control_pb2.FireHookResponse:
        return await self.stub.FireHook(control_pb2.FireHookRequest(**hook), timeout=15)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


async def start_adapter(folder: Path, env: dict[str, str] | None = None) -> Adapter:
    stderr_path = folder / "adapter.stderr"
    address = f"unix:{folder / 'control.sock'}"
    environ = {**os.environ, "PLUGINCONF_CONTROL_ADDRESS": address, **(env or {})}
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            *ADAPTER, env=environ, stdin=asyncio.subprocess.DEVNULL, stderr=stderr
        )
    return Adapter(process, address, folder, stderr_path)


async def connect(adapter: Adapter) -> None:
    adapter.channel = grpc.aio.insecure_channel(adapter.address, options=CHANNEL_OPTIONS)
    adapter.stub = control_pb2_grpc.HostControlStub(adapter.channel)
    try:
        await asyncio.wait_for(adapter.channel.channel_ready(), 30)
    except TimeoutError:
        pytest.fail(f"the adapter did not serve HostControl in 30 s; stderr:\n{adapter.stderr()}")


async def stop_adapter(adapter: Adapter, timeout_s: float = 30) -> int:
    """SIGTERM, then its exit status (bounded)."""
    if adapter.channel is not None:
        await adapter.channel.close()
        # The stub holds the channel too: gRPC's machinery is released with the last one.
        adapter.channel = adapter.stub = None
    if adapter.process.returncode is None:
        adapter.process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(adapter.process.wait(), timeout_s)
    except TimeoutError:
        adapter.process.kill()
        await adapter.process.wait()
        pytest.fail(f"the adapter did not exit within {timeout_s} s of SIGTERM")


@pytest.fixture
async def folder() -> AsyncIterator[Path]:
    # Short, under the test process's private TMPDIR: a unix socket path has ~100 bytes.
    path = Path(tempfile.mkdtemp(prefix="ctl-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def adapter(folder: Path) -> AsyncIterator[Adapter]:
    running = await start_adapter(folder)
    try:
        await connect(running)
        yield running
    finally:
        status = await stop_adapter(running)
    assert status == 0, f"adapter exit status {status}; stderr:\n{running.stderr()}"


def ref(plugin_id: str) -> control_pb2.PluginRef:
    return control_pb2.PluginRef(plugin_id=plugin_id)


def transitions(status: control_pb2.PluginStatus) -> list[tuple[str, str]]:
    return [(t.old_state, t.new_state) for t in status.transitions]


async def gone(pid: int, timeout_s: float = 10) -> bool:
    """Whether the process is gone (or a zombie that is not ours to reap) within the bound."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        await asyncio.sleep(0.05)  # another process's state: nothing to wait on but polling
    return False


async def test_info_load_enable_and_watch(adapter):
    info = await adapter.stub.GetHostInfo(control_pb2.GetHostInfoRequest())
    assert info.http_base_url.startswith("http://127.0.0.1:")
    assert info.host_pid == adapter.process.pid
    assert "pluginconf" in info.name
    # The reference host has every feature the suite asks about (HostCapabilities).
    every = [field.name for field in control_pb2.HostCapabilities.DESCRIPTOR.fields]
    assert info.HasField("capabilities")
    assert all(getattr(info.capabilities, name) for name in every), info.capabilities

    loaded = await adapter.load("good", configuration={"mode": "test"})
    assert (loaded.plugin_id, loaded.state, loaded.pid) == ("good", "loaded", 0)
    assert not loaded.transitions

    seen = await adapter.enable_until("good", "active")
    assert [s.state for s in seen] == ["loaded", "starting", "active"]
    active = seen[-1]
    assert transitions(active) == [("", "starting"), ("starting", "active")]
    assert all(t.wall_time > 0 and not t.error_kind for t in active.transitions)
    assert sorted(active.implemented) == ALL_HOOKS
    assert active.pid > 0
    assert str(FAKE) in psutil.Process(active.pid).cmdline()
    status = await adapter.stub.GetPluginStatus(ref("good"))
    assert (status.state, status.pid) == ("active", active.pid)
    # Enabling an active plugin changes nothing.
    again = await adapter.stub.EnablePlugin(ref("good"))
    assert (again.state, len(again.transitions)) == ("active", 2)


async def test_control_errors_are_statuses_with_messages(adapter):
    await adapter.load("p")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await adapter.load("p")
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await adapter.load("no/slash")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'no/slash'" in info.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await adapter.stub.GetPluginStatus(ref("zzz"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "'zzz'" in info.value.details()
    assert "loaded: 'p'" in info.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await adapter.fire()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_hooks_through_fire_hook_and_http_through_the_front(adapter):
    record = adapter.folder / "calls.jsonl"
    await adapter.load("good", {"record": {"file": str(record)}}, configuration={"a": "1"})
    await adapter.enable_until("good", "active")

    command = hooks_pb2.ExecuteCommandRequest(command="/hello 🧩", user_id="u1")
    reply = await adapter.fire(
        execute_command=control_pb2.ExecuteCommand(plugin_id="good", request=command)
    )
    assert reply.command.WhichOneof("result") == "response"
    assert (reply.command.response.text, reply.command.response.response_type) == (
        "/hello 🧩",
        "ephemeral",
    )

    post = hooks_pb2.Post(id="p1", message="hi")
    filtered = await adapter.fire(message_will_be_posted=post)
    assert filtered.filter.post == post
    assert not filtered.filter.rejected
    assert [(s.plugin_id, s.outcome) for s in filtered.filter.steps] == [("good", "keep")]
    notified = await adapter.fire(message_has_been_posted=post)
    assert [r.plugin_id for r in notified.notify.results] == ["good"]
    assert not notified.notify.results[0].HasField("error")

    change = control_pb2.ConfigurationChange(plugin_id="good", configuration={"a": "2"})
    changed = await adapter.fire(configuration_change=change)
    assert not changed.configuration.HasField("error")
    calls = [
        json.loads(line)
        for line in record.read_text(encoding="utf-8").split("\n")[:-1]
        if json.loads(line)["event"] == "call" and json.loads(line)["hook"] != "Implemented"
    ]
    configurations = [c["request"] for c in calls if c["hook"] == "OnConfigurationChange"]
    assert configurations == [{"configuration": {"a": "1"}}, {"configuration": {"a": "2"}}]

    info = await adapter.stub.GetHostInfo(control_pb2.GetHostInfoRequest())
    async with httpx.AsyncClient(base_url=info.http_base_url, timeout=10) as http:
        got = await http.get("/plugins/good/echo")
        assert got.status_code == 200
        echoed = await http.post("/plugins/good/echo", content=b"hello plugin")
        assert (echoed.status_code, echoed.content) == (200, b"hello plugin")
        missing = await http.get("/plugins/nobody/echo")
        assert missing.status_code == 404


async def test_command_errors_carry_the_spec_kinds(adapter):
    policy = control_pb2.HostPolicy()
    policy.CopyFrom(FAST)
    policy.hook_timeout_ms = 300
    await adapter.load("subset", {"hooks": ["OnActivate"]})
    await adapter.load("hangs", {"hang": {"hook": "ExecuteCommand"}}, policy=policy)
    await adapter.load("idle")
    for plugin_id in ("subset", "hangs"):
        await adapter.enable_until(plugin_id, "active")

    async def command(plugin_id: str) -> control_pb2.HostError:
        request = hooks_pb2.ExecuteCommandRequest(command="/x")
        reply = await adapter.fire(
            execute_command=control_pb2.ExecuteCommand(plugin_id=plugin_id, request=request)
        )
        assert reply.command.WhichOneof("result") == "error", reply
        return reply.command.error

    assert (await command("subset")).kind == "not_implemented"  # and never sent (HK-5)
    timed_out = await command("hangs")
    assert timed_out.kind == "timeout"
    assert "hangs" in timed_out.message
    assert (await command("idle")).kind == "plugin_unavailable"  # loaded, never enabled
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await command("nobody")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_handshake_fails_with_the_spec_error_kind(adapter):
    policy = control_pb2.HostPolicy()
    policy.CopyFrom(FAST)
    policy.restart_limit = 1
    await adapter.load("bad", {"handshake": {"line": "2|1|unix|/x|grpc"}}, policy=policy)
    seen = await adapter.enable_until("bad", "failed")
    assert [s.state for s in seen] == ["loaded", "starting", "crashed", "failed"]
    failed = seen[-1]
    assert transitions(failed) == [("", "starting"), ("starting", "crashed"), ("crashed", "failed")]
    crashed = failed.transitions[1]
    assert crashed.error_kind == "core_version_mismatch"
    assert "2|1|unix|/x|grpc" in crashed.reason
    assert failed.transitions[2].error_kind == "restart_limit"
    assert "2|1|unix|/x|grpc" in failed.last_error
    assert failed.pid == 0


async def test_disable_stops_the_process_and_unload_forgets_the_plugin(adapter):
    await adapter.load("good")
    active = (await adapter.enable_until("good", "active"))[-1]
    stopped = await adapter.stub.DisablePlugin(ref("good"), timeout=20)
    assert stopped.state == "stopped"
    assert stopped.pid == 0
    assert transitions(stopped)[-1] == ("active", "stopped")
    assert await gone(active.pid, timeout_s=0.5), "the plugin process outlived DisablePlugin"

    await adapter.stub.UnloadPlugin(ref("good"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await adapter.stub.GetPluginStatus(ref("good"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await adapter.load("good")).state == "loaded"  # the id is free again


async def test_sigterm_stops_every_plugin_then_exits_0(folder):
    adapter = await start_adapter(folder)
    try:
        await connect(adapter)
        pids = []
        for plugin_id in ("a", "b"):
            await adapter.load(plugin_id)
            pids.append((await adapter.enable_until(plugin_id, "active"))[-1].pid)
    finally:
        status = await stop_adapter(adapter)
    assert status == 0, adapter.stderr()
    for pid in pids:
        assert await gone(pid, timeout_s=0.5), f"plugin process {pid} outlived the adapter"
    assert not (folder / "control.sock").exists()


async def test_the_adapter_stops_when_its_parent_goes_away(folder):
    # A parent that starts the adapter, says its pid, and waits: SIGKILL it.
    wrapper = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import subprocess, sys\n"
        "p = subprocess.Popen(sys.argv[1:])\n"
        "print(p.pid, flush=True)\n"
        "p.wait()\n",
        *ADAPTER,
        env={**os.environ, "PLUGINCONF_CONTROL_ADDRESS": f"unix:{folder / 'control.sock'}"},
        stdout=asyncio.subprocess.PIPE,
    )
    assert wrapper.stdout is not None
    adapter_pid = int(await asyncio.wait_for(wrapper.stdout.readline(), 10))
    channel = grpc.aio.insecure_channel(f"unix:{folder / 'control.sock'}", options=CHANNEL_OPTIONS)
    try:
        await asyncio.wait_for(channel.channel_ready(), 30)
        stub = control_pb2_grpc.HostControlStub(channel)
        command = [sys.executable, str(FAKE), str(folder / "s.json")]
        (folder / "s.json").write_text("{}")
        manifest = control_pb2.PluginManifest(id="p", command=command)
        await stub.LoadPlugin(control_pb2.LoadPluginRequest(manifest=manifest, policy=FAST))
        await stub.EnablePlugin(ref("p"))
        watch = stub.WatchPlugin(ref("p"))
        async with asyncio.timeout(30):
            async for status in watch:
                if status.state == "active":
                    break
        watch.cancel()
        assert status.state == "active"
        plugin_pid = status.pid
    finally:
        await channel.close()
        wrapper.kill()
        await wrapper.wait()
    assert await gone(adapter_pid, timeout_s=15), "the adapter outlived its parent"
    assert await gone(plugin_pid, timeout_s=1), "a plugin outlived the adapter"


async def test_missing_control_address_is_a_usage_error(folder):
    env = {k: v for k, v in os.environ.items() if k != "PLUGINCONF_CONTROL_ADDRESS"}
    process = await asyncio.create_subprocess_exec(
        *ADAPTER, env=env, stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert stdout == b""
    assert b"PLUGINCONF_CONTROL_ADDRESS" in stderr
    assert b"set it" in stderr


async def test_an_unusable_control_address_is_a_usage_error(folder):
    adapter = await start_adapter(
        folder, {"PLUGINCONF_CONTROL_ADDRESS": "unix:/nonexistent/c.sock"}
    )
    assert await asyncio.wait_for(adapter.process.wait(), 30) == 2
    assert "cannot serve HostControl on PLUGINCONF_CONTROL_ADDRESS" in adapter.stderr()


def _policy(**changes: Any) -> control_pb2.HostPolicy:
    policy = control_pb2.HostPolicy()
    policy.CopyFrom(FAST)
    policy.restart_limit = 1
    for name, value in changes.items():
        setattr(policy, name, value)
    return policy


async def _crash_kind(adapter: Adapter, line: str, auto_mtls: bool) -> control_pb2.Transition:
    await adapter.load("tls", {"handshake": {"line": line}}, policy=_policy(auto_mtls=auto_mtls))
    failed = (await adapter.enable_until("tls", "failed"))[-1]
    return failed.transitions[1]


async def test_auto_mtls_plugin_becomes_active(adapter):
    await adapter.load("secure", policy=_policy(auto_mtls=True))
    active = (await adapter.enable_until("secure", "active"))[-1]
    assert sorted(active.implemented) == ALL_HOOKS


@pytest.mark.parametrize(
    ("line", "auto_mtls", "fragment"),
    [
        ("1|1|unix|/x|grpc", True, "no server certificate"),
        ("1|1|unix|/x|grpc|AAAA", True, "not a DER certificate"),
        ("1|1|unix|/x|grpc|AAAA", False, "did not ask for AutoMTLS"),
        ("1|1|unix|/x|grpc|not*base64", True, "field 6"),
    ],
    ids=["missing", "not-a-certificate", "unasked", "not-base64"],
)
async def test_certificate_problems_are_tls_errors(adapter, line, auto_mtls, fragment):
    crashed = await _crash_kind(adapter, line, auto_mtls)
    assert (crashed.new_state, crashed.error_kind) == ("crashed", "tls_error")
    assert fragment in crashed.reason


async def test_a_failed_tls_handshake_is_a_tls_error_not_unreachable(adapter):
    # The adapter's own control socket: it accepts connections, but speaks no TLS.
    cert = generate_certificate().cert_der
    field6 = base64.b64encode(cert).decode().rstrip("=")
    line = f"1|1|unix|{adapter.address.removeprefix('unix:')}|grpc|{field6}"
    crashed = await _crash_kind(adapter, line, auto_mtls=True)
    assert crashed.error_kind == "tls_error"
    assert "no TLS session" in crashed.reason


async def test_disabling_a_plugin_still_starting_does_not_wait_for_its_start_timeout(adapter):
    await adapter.load("slow", {"never_handshake": True}, policy=_policy(start_timeout_ms=60_000))
    assert (await adapter.stub.EnablePlugin(ref("slow"))).state == "starting"
    # The process is known while it starts; no state change tells when it is spawned.
    async with asyncio.timeout(10):
        while not (starting := await adapter.stub.GetPluginStatus(ref("slow"))).pid:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert starting.state == "starting"
    begin = time.monotonic()
    stopped = await adapter.stub.DisablePlugin(ref("slow"), timeout=20)
    assert time.monotonic() - begin < 5
    assert transitions(stopped) == [("", "starting"), ("starting", "stopped")]
    assert await gone(starting.pid, timeout_s=0.5)


async def test_inherited_handshake_variables_never_reach_a_plugin(folder):
    decoys = {
        "PLUGINCONF_MAGIC_COOKIE": "inherited-decoy",
        "PLUGIN_PROTOCOL_VERSIONS": "97,98",
        "PLUGIN_UNIX_SOCKET_DIR": "/nonexistent/inherited-decoy",
        "PLUGIN_MULTIPLEX_GRPC": "true",
        "PLUGIN_CLIENT_CERT": "inherited-decoy",
    }
    adapter = await start_adapter(folder, decoys)
    try:
        await connect(adapter)
        record = folder / "calls.jsonl"
        await adapter.load("p", {"record": {"file": str(record)}})
        await adapter.enable_until("p", "active")
    finally:
        assert await stop_adapter(adapter) == 0, adapter.stderr()
    started = json.loads(record.read_text(encoding="utf-8").split("\n")[0])
    assert started["event"] == "started"
    seen = started["env"]
    assert seen["PLUGINCONF_MAGIC_COOKIE"] == "pluginconf"
    assert seen["PLUGIN_PROTOCOL_VERSIONS"] == "1"
    assert seen["PLUGIN_UNIX_SOCKET_DIR"] != decoys["PLUGIN_UNIX_SOCKET_DIR"]
    assert "PLUGIN_MULTIPLEX_GRPC" not in seen
    assert "PLUGIN_CLIENT_CERT" not in seen


async def test_an_open_circuit_fails_commands_fast_and_http_with_503(adapter):
    policy = _policy(hook_timeout_ms=300, breaker_threshold=2, breaker_cooldown_ms=30_000)
    await adapter.load("hangs", {"hang": {"hook": "ExecuteCommand"}}, policy=policy)
    await adapter.enable_until("hangs", "active")
    request = hooks_pb2.ExecuteCommandRequest(command="/x")
    fire = control_pb2.ExecuteCommand(plugin_id="hangs", request=request)
    kinds = [(await adapter.fire(execute_command=fire)).command.error.kind for _ in range(3)]
    assert kinds == ["timeout", "timeout", "circuit_open"]
    info = await adapter.stub.GetHostInfo(control_pb2.GetHostInfoRequest())
    async with httpx.AsyncClient(base_url=info.http_base_url, timeout=10) as http:
        refused = await http.get("/plugins/hangs/echo")
    assert refused.status_code == 503
    assert 1 <= int(refused.headers["retry-after"]) <= 30
    assert (await adapter.stub.GetPluginStatus(ref("hangs"))).state == "active"
