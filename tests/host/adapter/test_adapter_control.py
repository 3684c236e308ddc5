"""`pluginconf reference-host-adapter`, driven as the host suite drives it: HostControl,
hooks and HTTP through the front, stopping, and its usage errors."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import adapter_harness
import grpc
import httpx
import psutil
import pytest
from adapter_harness import (
    ADAPTER,
    ALL_HOOKS,
    CHANNEL_OPTIONS,
    FAKE,
    FAST,
    connect,
    gone,
    ref,
    start_adapter,
    stop_adapter,
    transitions,
)

from pluginconf.control import control_pb2, control_pb2_grpc
from pluginconf.v1 import hooks_pb2

# The fixtures, by their names.
folder = adapter_harness.folder
adapter = adapter_harness.adapter


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
