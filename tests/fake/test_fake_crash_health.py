"""The fake plugin's crashes, hangs and health answers."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from fake_support import (
    NOT_SERVING,
    SERVING,
    body_of,
    check,
    event,
    exit_status,
    fake,
    hooks,
    http,
    kinds,
    recorded,
    rpc_error,
    scenario,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pluginconf.reference.generator import generate_bytes
from pluginconf.v1 import hooks_pb2

# -- crashes ------------------------------------------------------------------------------


async def test_crash_on_activate(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {"crash": {"on": "activate"}})
    plugin = await launch_plugin(argv)
    stub = hooks(plugin)
    await stub.OnConfigurationChange(hooks_pb2.OnConfigurationChangeRequest(), timeout=5)
    exc = await rpc_error(stub.OnActivate(hooks_pb2.OnActivateRequest(), timeout=5))
    assert exc.code() == grpc.StatusCode.UNAVAILABLE
    assert await exit_status(plugin) == 3
    assert record.events("exiting")[-1]["reason"] == "crash.on: OnActivate"


async def test_crash_after_hook_calls(launch_plugin, tmp_path):
    path = scenario(tmp_path, {"crash": {"after_hook_calls": 2, "exit_code": 5}})
    plugin = await launch_plugin(fake(path))
    stub = hooks(plugin)
    await stub.Implemented(hooks_pb2.ImplementedRequest(), timeout=5)  # not counted
    for i in (1, 2):
        answer = await stub.ExecuteCommand(hooks_pb2.ExecuteCommandRequest(command=f"/{i}"))
        assert answer.text == f"/{i}"
    assert await exit_status(plugin) == 5
    exc = await rpc_error(stub.ExecuteCommand(hooks_pb2.ExecuteCommandRequest(), timeout=5))
    assert exc.code() == grpc.StatusCode.UNAVAILABLE


async def test_crash_during_http_response(launch_plugin, tmp_path):
    path = scenario(tmp_path, {"crash": {"during_http_after_bytes": 100_000}})
    plugin = await launch_plugin(fake(path))
    frames, error = await http(plugin, "/bytes", "n=1000000")
    assert error is not None
    assert kinds(frames)[0] == "init" and "end" not in kinds(frames)
    assert body_of(frames) == generate_bytes(100_000)
    assert await exit_status(plugin) == 3


# -- hangs, health ------------------------------------------------------------------------


async def test_hung_hook_exceeds_its_deadline(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {"hang": {"hook": "ExecuteCommand"}})
    plugin = await launch_plugin(argv)
    stub = hooks(plugin)
    exc = await rpc_error(stub.ExecuteCommand(hooks_pb2.ExecuteCommandRequest(), timeout=0.5))
    assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert not (await stub.OnActivate(hooks_pb2.OnActivateRequest(), timeout=5)).HasField("error")
    call = record.events("call")[-2]
    assert (call["hook"], record.events("hanging")[0]["call"]) == ("ExecuteCommand", call["call"])
    end = await record.wait_for(event("call_end", call=call["call"]))
    assert end["outcome"] == "cancelled"  # the fake saw the host give up


@pytest.mark.parametrize(
    "when", [True, {"after_checks": 1}, {"after_s": 0.3}], ids=["always", "after-1", "after-0.3s"]
)
async def test_hung_health_exceeds_its_deadline(launch_plugin, tmp_path, when):
    plugin = await launch_plugin(fake(scenario(tmp_path, {"hang": {"health": when}})))
    answered: list[int] = []
    failure = None
    deadline = time.monotonic() + 10
    while failure is None:  # SERVING until the scenario's point, then no answer in time
        assert time.monotonic() < deadline, f"health still answers: {answered}"
        try:
            answered.append(await check(plugin, timeout=0.5))
        except grpc.aio.AioRpcError as exc:
            failure = exc.code()
        await asyncio.sleep(0.05)  # after_s is a time: sample it
    assert failure == grpc.StatusCode.DEADLINE_EXCEEDED
    assert set(answered) <= {SERVING}
    if when == {"after_checks": 1}:
        assert answered == [SERVING]
    if when is True:
        assert answered == []
    answer = await hooks(plugin).ExecuteCommand(hooks_pb2.ExecuteCommandRequest(command="/ok"))
    assert answer.text == "/ok"


async def test_not_serving(launch_plugin, tmp_path):
    plugin = await launch_plugin(fake(scenario(tmp_path, {"health": "NOT_SERVING"})))
    assert await check(plugin) == NOT_SERVING
    assert await check(plugin, service="") == NOT_SERVING
    exc = await rpc_error(check(plugin, service="other"))
    assert exc.code() == grpc.StatusCode.NOT_FOUND


async def test_flapping_health_shows_both_states(launch_plugin, tmp_path):
    plugin = await launch_plugin(fake(scenario(tmp_path, {"health": {"flap_every_s": 0.2}})))
    seen = set()
    deadline = time.monotonic() + 10
    while seen != {SERVING, NOT_SERVING} and time.monotonic() < deadline:
        seen.add(await check(plugin))
        await asyncio.sleep(0.05)  # sampling a time-driven status
    assert seen == {SERVING, NOT_SERVING}
    # Watch reports each change as it happens.
    request = health_pb2.HealthCheckRequest(service="plugin")
    watch = health_pb2_grpc.HealthStub(plugin.channel).Watch(request, timeout=10)
    statuses = [(await watch.read()).status for _ in range(3)]
    watch.cancel()
    assert statuses[0] != statuses[1] != statuses[2]


async def test_serving_after_a_delay(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {"health": {"serving_after_s": 1.5}})
    plugin = await launch_plugin(argv)
    assert await check(plugin) == NOT_SERVING
    request = health_pb2.HealthCheckRequest(service="plugin")
    watch = health_pb2_grpc.HealthStub(plugin.channel).Watch(request, timeout=10)
    statuses = [(await watch.read()).status for _ in range(2)]  # the change is pushed
    watch.cancel()
    assert statuses == [NOT_SERVING, SERVING]
    assert await check(plugin) == SERVING

    handshake, serving = record.events("handshake")[0], record.events("health_serving")[0]
    assert serving["monotonic"] - handshake["monotonic"] >= 1.5 - 0.01
    answers = [
        (e["method"].rsplit("/", 1)[1], e["service"], e["answer"], e["seq"] > serving["seq"])
        for e in record.events("health_answer")
    ]
    assert answers == [
        ("Check", "plugin", "NOT_SERVING", False),
        ("Watch", "plugin", "NOT_SERVING", False),
        ("Watch", "plugin", "SERVING", True),
        ("Check", "plugin", "SERVING", True),
    ]
