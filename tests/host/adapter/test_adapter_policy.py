"""`pluginconf reference-host-adapter` under HostPolicy: AutoMTLS and TLS errors, a start
that is disabled, the handshake environment, an open circuit."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import adapter_harness
import httpx
import pytest
from adapter_harness import (
    ALL_HOOKS,
    connect,
    crash_kind,
    gone,
    host_policy,
    ref,
    start_adapter,
    stop_adapter,
    transitions,
)

from pluginconf.control import control_pb2
from pluginconf.protocol.mtls import generate_certificate
from pluginconf.v1 import hooks_pb2

# The fixtures, by their names.
folder = adapter_harness.folder
adapter = adapter_harness.adapter


async def test_auto_mtls_plugin_becomes_active(adapter):
    await adapter.load("secure", policy=host_policy(auto_mtls=True))
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
    crashed = await crash_kind(adapter, line, auto_mtls)
    assert (crashed.new_state, crashed.error_kind) == ("crashed", "tls_error")
    assert fragment in crashed.reason


async def test_a_failed_tls_handshake_is_a_tls_error_not_unreachable(adapter):
    # The adapter's own control socket: it accepts connections, but speaks no TLS.
    cert = generate_certificate().cert_der
    field6 = base64.b64encode(cert).decode().rstrip("=")
    line = f"1|1|unix|{adapter.address.removeprefix('unix:')}|grpc|{field6}"
    crashed = await crash_kind(adapter, line, auto_mtls=True)
    assert crashed.error_kind == "tls_error"
    assert "no TLS session" in crashed.reason


async def test_disabling_a_plugin_still_starting_does_not_wait_for_its_start_timeout(adapter):
    await adapter.load(
        "slow", {"never_handshake": True}, policy=host_policy(start_timeout_ms=60_000)
    )
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
    policy = host_policy(hook_timeout_ms=300, breaker_threshold=2, breaker_cooldown_ms=30_000)
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
