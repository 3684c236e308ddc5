"""The fake plugin's stop, leftovers and stderr floods."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import psutil
from fake_support import (
    MiB,
    Record,
    event,
    exit_status,
    hooks,
    recorded,
)

from pluginconf.goplugin import grpc_controller_pb2, grpc_controller_pb2_grpc
from pluginconf.host.launcher import LaunchedPlugin
from pluginconf.v1 import hooks_pb2

# -- stopping and leftovers ---------------------------------------------------------------


async def test_ignore_shutdown_needs_sigkill(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {"ignore_shutdown": True})
    plugin = await launch_plugin(argv)
    report = await plugin.stop(grace_s=0.3, term_grace_s=0.3)
    assert (report.ended_by, report.shutdown_answer) == ("sigkill", "ok")
    assert report.exit_status == -signal.SIGKILL
    assert record.events("shutdown_requested")[0]["ignored"] is True
    assert [(e["signal"], e["ignored"]) for e in record.events("signal")] == [("SIGTERM", True)]
    assert not record.events("exiting")


def _gone(pid: int) -> bool:
    """Not running: no such process, or a zombie (an init that does not reap leaves those)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_grandchild_outlives_the_plugin_until_the_group_is_killed(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {"spawn_grandchild": {"seconds": 60}})
    plugin = await launch_plugin(argv)
    grandchild = record.events("grandchild")[0]["grandchild_pid"]
    assert os.getpgid(grandchild) == plugin.pid
    controller = grpc_controller_pb2_grpc.GRPCControllerStub(plugin.channel)
    await controller.Shutdown(grpc_controller_pb2.Empty(), timeout=5)
    assert await exit_status(plugin) == 0
    assert not _gone(grandchild)  # the fake did not end its child (a CT-9 violation)
    await plugin.stop()  # the launcher kills what is left of the group
    for _ in range(250):  # SIGKILL is delivered asynchronously: up to 5 s
        if _gone(grandchild):
            break
        await asyncio.sleep(0.02)
    assert _gone(grandchild)


# -- stderr flood -------------------------------------------------------------------------


async def _calls_until_flood_done(plugin: LaunchedPlugin, record: Record) -> int:
    """Make calls until the fake records the end of the flood; return how many answered."""
    stub = hooks(plugin)
    answered = 0
    deadline = time.monotonic() + 60
    while not record.events("flood_done"):
        assert time.monotonic() < deadline, "the flood did not finish within 60 s"
        await stub.ExecuteCommand(hooks_pb2.ExecuteCommandRequest(command="/ping"), timeout=10)
        answered += 1
    return answered


async def test_flood_stderr_after_handshake(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {"flood_stderr": 100 * MiB})
    plugin = await launch_plugin(argv)
    await record.wait_for(event("flood_started"))
    assert await _calls_until_flood_done(plugin, record) >= 1
    done = record.events("flood_done")[0]
    assert done["bytes"] == 100 * MiB
    pings = [
        e
        for e in record.events("call")
        if e["request"] == {"command": "/ping", "user_id": "", "channel_id": ""}
    ]
    assert pings and pings[0]["monotonic"] < done["monotonic"], "no call answered during the flood"
    assert plugin.stderr_tail and set(plugin.stderr_tail[-1]) == {"x"}  # the launcher drained it


async def test_flood_stderr_before_handshake_does_not_delay_it(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {"flood_stderr": {"bytes": 100 * MiB, "when": "before"}})
    plugin = await launch_plugin(argv)
    await _calls_until_flood_done(plugin, record)
    handshake, done = record.events("handshake")[0], record.events("flood_done")[0]
    assert handshake["monotonic"] < done["monotonic"]
