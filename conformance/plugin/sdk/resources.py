"""Resources over every kind of exchange: request bodies, cancelled exchanges, and the
HostAPI calls that an activated process makes."""

from __future__ import annotations

import asyncio

import psutil

from pluginconf.runner import Profile, case, expect
from pluginconf.runner.plugin.http import ServeHTTPCall, exchange
from pluginconf.runner.plugin.target import PluginTarget
from pluginconf.v1 import hooks_pb2

from .._helpers import expect_bounded_growth, expect_serving

# HK-15 counts from the 200th call to the 2000th; growth past its bound inside that window
# already breaks it, so a shorter window in it is enough to see a leak per call.
_WARM_CALLS = 200
_CALLS = 600
_BATCH = 20
_MAX_FD_GROWTH = 16
_MAX_RSS_GROWTH = 64 * 1024 * 1024
_BODY = bytes(range(256)) * 16  # 4 KiB


async def _cancelled_echo(t: PluginTarget) -> str | None:
    """An echo cancelled once its first bytes came back, its body not yet ended."""
    shared = await t.shared()
    call = ServeHTTPCall(shared.hooks, timeout_s=30)
    try:
        await call.send_init("POST", "/echo", content_length=2 * len(_BODY))
        await call.send_body(_BODY)
        if not await call.wait_for("body", 10):
            return (
                f"a cancelled echo: no echoed bytes before cancelling: {call.response.describe()}"
            )
        call.cancel()
        return None
    finally:
        await call.close()


async def _one(t: PluginTarget, i: int) -> str | None:
    shared = await t.shared()
    kind = i % 4
    if kind == 0:
        return await _cancelled_echo(t)
    if kind == 1:
        response = await exchange(shared.hooks, "POST", "/echo", body=_BODY, timeout_s=30)
        ok = response.ended and bytes(response.body) == _BODY
        return None if ok else f"POST /echo: {response.describe()}"
    if kind == 2:
        response = await exchange(shared.hooks, "POST", "/sha256", body=_BODY, timeout_s=30)
        return None if response.status == 200 else f"POST /sha256: {response.describe()}"
    command = f"/kv set endurance-{i % 40} v{i}" if i % 8 == 3 else f"/kv get endurance-{i % 40}"
    answer = await shared.hooks.ExecuteCommand(
        hooks_pb2.ExecuteCommandRequest(command=command), timeout=30
    )
    return f"{command}: AppError {answer.error.code}" if answer.HasField("error") else None


@case(
    "plugin/sdk/endurance/bodies-cancels-hostapi",
    requirements=["HK-15"],
    profile=Profile.SDK,
    timeout_s=120,
)
async def bodies_cancels_hostapi(t: PluginTarget) -> None:
    """
    Purpose: A plugin does not wear out on the exchanges a host really makes: request bodies,
      exchanges cancelled half-way, and HostAPI calls once it has been activated.
    Procedure: On the shared (activated, HostAPI offered) process make 600 calls, 20 at a
      time, cycling through: a POST /echo of 4 KiB cancelled once its first bytes come back,
      a complete POST /echo of 4 KiB, a POST /sha256 of 4 KiB, and /kv set or /kv get
      through HostAPI; measure open descriptors and resident memory after the 200th call and
      the 600th.
    Asserts: Every call answers; descriptors grow by at most 16 and memory by at most 64
      MiB in between (a window inside HK-15's); health still answers SERVING.
    """
    shared = await t.shared()
    process = psutil.Process(shared.pid)
    baseline: tuple[int, int] | None = None
    for start in range(0, _CALLS, _BATCH):
        t.step(f"making calls {start + 1} to {start + _BATCH} of {_CALLS}")
        found = await asyncio.gather(*(_one(t, start + i) for i in range(_BATCH)))
        problems = [p for p in found if p]
        expect(not problems, f"calls {start + 1}..{start + _BATCH}: " + "; ".join(problems))
        if start + _BATCH == _WARM_CALLS:
            baseline = (process.num_fds(), process.memory_info().rss)
    assert baseline is not None
    expect_bounded_growth(
        process,
        baseline,
        f"call {_WARM_CALLS} and call {_CALLS}",
        _MAX_FD_GROWTH,
        _MAX_RSS_GROWTH,
        "bodies, cancelled exchanges, HostAPI commands",
    )
    await expect_serving(shared.health, f"after {_CALLS} calls")
