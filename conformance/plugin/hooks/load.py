"""Hooks under load: concurrent calls, health while busy, and a long run's resources."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import psutil

from pluginconf.host.client import health_problem
from pluginconf.protocol.hooks import LIFECYCLE_HOOKS
from pluginconf.runner import Level, Profile, case, expect, fail, skip
from pluginconf.runner.plugin.http import ServeHTTPCall, exchange
from pluginconf.runner.plugin.shared import SharedPlugin
from pluginconf.runner.plugin.target import PluginTarget
from pluginconf.runner.timing import Yardstick

from .._helpers import (
    HookOutcome,
    call_hook,
    expect_bounded_growth,
    expect_serving,
    hook_problem,
    judge_bound,
)

if TYPE_CHECKING:
    from pluginconf.v1.hooks_pb2_grpc import HooksAsyncStub  # in the type stubs only
from ._helpers import PROBE_REQUESTS


async def _open_streams(hooks: HooksAsyncStub, count: int) -> list[ServeHTTPCall]:
    """``count`` ServeHTTP calls with init and some body sent, but no end: in progress."""
    calls = []
    for i in range(count):
        call = ServeHTTPCall(hooks, timeout_s=60)
        calls.append(call)
        await call.send_init("POST", f"/pluginconf/held/{i}", content_length=1 << 20)
        await call.send_body(b"\x00" * 1024)
    return calls


async def _unary_probe(shared: SharedPlugin) -> HookOutcome | None:
    for hook in ("ExecuteCommand", "MessageHasBeenPosted", "MessageWillBePosted"):
        if hook in shared.implemented:
            return await call_hook(shared.hooks, hook, PROBE_REQUESTS[hook], timeout_s=10)
    return None


# A deadlock guard: the 9 held calls never end by themselves (their deadline is 60 s).
_CONCURRENT_GUARD_S = 15.0


# HL-4's bound, and how long the suite waits for an answer at all.
_HL4_BOUND_S = 1.0
_ANSWER_GUARD_S = 10.0


@case("plugin/hooks/concurrent-calls", requirements=["HK-13"], profile=Profile.HOOKS)
async def concurrent_calls(t: PluginTarget) -> None:
    """
    Purpose: One slow call does not hold up the others.
    Procedure: Open 9 ServeHTTP calls that send a request init and 1 KiB of a 1 MiB body and
      then nothing; while they are open, make a 10th call (a unary hook, or ServeHTTP GET /).
    Asserts: The 10th call completes while the 9 are still in progress (they never end by
      themselves; the suite waits 15 s at most).
    """
    shared = await t.shared_with("ServeHTTP")
    calls = await _open_streams(shared.hooks, 9)
    try:
        t.step("making a 10th call while 9 are in progress")
        async with asyncio.timeout(_CONCURRENT_GUARD_S):
            outcome = await _unary_probe(shared)
            if outcome is None:
                response = await exchange(shared.hooks, "GET", "/", timeout_s=_CONCURRENT_GUARD_S)
                expect(response.ended, f"the 10th call: {response.describe()}")
            else:
                expect(outcome.ok, f"the 10th call: {outcome.describe()}")
    except TimeoutError:
        fail(
            f"with 9 calls in progress, a 10th call did not complete within "
            f"{_CONCURRENT_GUARD_S:g} s"
        )
    finally:
        for call in calls:
            await call.close()


@case(
    "plugin/hooks/health-under-load",
    requirements=["HL-4"],
    profile=Profile.HOOKS,
    level=Level.SHOULD,
)
async def health_under_load(t: PluginTarget) -> None:
    """
    Purpose: A busy plugin still answers health checks, so that hosts do not restart it.
    Procedure: Open 10 ServeHTTP calls that send a request init and 1 KiB and then nothing;
      give the handlers up to 5 s to start (a response init on the last one shows they have);
      then time a Health/Check (10 s at most). A time over 1 s is set beside a health check
      of a minimal gRPC process timed just then, and measured again (up to three times).
    Asserts: The check answers SERVING within 1 s.
    """
    shared = await t.shared_with("ServeHTTP")
    calls = await _open_streams(shared.hooks, 10)
    answers: list[str | None] = []

    async def check_once() -> float | None:
        started = time.monotonic()
        answers.append(await health_problem(shared.health, _ANSWER_GUARD_S))
        return time.monotonic() - started if answers[-1] is None else None

    try:
        await calls[-1].wait_for("init", 5.0)
        verdict = await judge_bound(
            _HL4_BOUND_S, check_once, Yardstick.CALL, "a health check with 10 calls in progress"
        )
    finally:
        for call in calls:
            await call.close()
    expect(answers[0] is None, f"with 10 calls in progress: {answers[0]}")
    expect(verdict.met, verdict.evidence())


_ENDURANCE_CALLS = 2000
_WARM_CALLS = 200
_MAX_FD_GROWTH = 16
_MAX_RSS_GROWTH = 64 * 1024 * 1024


@case("plugin/hooks/endurance", requirements=["HK-15"], profile=Profile.HOOKS, timeout_s=120)
async def endurance(t: PluginTarget) -> None:
    """
    Purpose: A plugin serves a long run of calls without wearing out.
    Procedure: Make 2000 hook calls on the shared process, 20 at a time, cycling through the
      unary hooks it lists (but OnActivate and OnDeactivate) with every tenth a ServeHTTP
      GET; measure its open descriptors and resident memory after the 200th and the 2000th.
    Asserts: Every call answers; descriptors grow by at most 16 and memory by at most 64 MiB;
      health still answers SERVING.
    """
    shared = await t.shared()
    requests = [
        (h, r)
        for h, r in PROBE_REQUESTS.items()
        if h in shared.implemented and h not in LIFECYCLE_HOOKS
    ]
    serve_http = "ServeHTTP" in shared.implemented
    if not requests and not serve_http:
        skip("the plugin lists no hook that can be called repeatedly")
    process = psutil.Process(shared.pid)

    async def one(i: int) -> str | None:
        if serve_http and (i % 10 == 0 or not requests):
            response = await exchange(shared.hooks, "GET", "/pluginconf/endurance", timeout_s=30)
            return None if response.ended else f"ServeHTTP: {response.describe()}"
        hook, request = requests[i % len(requests)]
        return hook_problem(await call_hook(shared.hooks, hook, request, timeout_s=30))

    baseline: tuple[int, int] | None = None
    for start in range(0, _ENDURANCE_CALLS, 20):
        t.step(f"making calls {start + 1} to {start + 20} of {_ENDURANCE_CALLS}")
        problems = [p for p in await asyncio.gather(*(one(start + i) for i in range(20))) if p]
        expect(not problems, f"call {start + 1}..{start + 20}: " + "; ".join(problems))
        if start + 20 == _WARM_CALLS:
            baseline = (process.num_fds(), process.memory_info().rss)
    assert baseline is not None
    between = f"call {_WARM_CALLS} and call {_ENDURANCE_CALLS}"
    expect_bounded_growth(process, baseline, between, _MAX_FD_GROWTH, _MAX_RSS_GROWTH)
    await expect_serving(shared.health, f"after {_ENDURANCE_CALLS} calls")
