"""Driving `pluginconf reference-host-adapter` as the host suite does, for its tests: the
adapter as a subprocess, HostControl over a unix socket, fixtures and helpers."""

from __future__ import annotations

import asyncio
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
import psutil
import pytest

from pluginconf.control import control_pb2, control_pb2_grpc

FAKE = Path(__file__).resolve().parents[3] / "fake_interpreters" / "fakeplugin"
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


def host_policy(**changes: Any) -> control_pb2.HostPolicy:
    policy = control_pb2.HostPolicy()
    policy.CopyFrom(FAST)
    policy.restart_limit = 1
    for name, value in changes.items():
        setattr(policy, name, value)
    return policy


async def crash_kind(adapter: Adapter, line: str, auto_mtls: bool) -> control_pb2.Transition:
    await adapter.load(
        "tls", {"handshake": {"line": line}}, policy=host_policy(auto_mtls=auto_mtls)
    )
    failed = (await adapter.enable_until("tls", "failed"))[-1]
    return failed.transitions[1]
