"""Hooks: what any plugin of the pluginconf.v1 hooks protocol must do with any valid call."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import grpc
import psutil

from pluginconf.host.client import health_problem
from pluginconf.protocol.constants import GRPC_MAX_MESSAGE_BYTES
from pluginconf.runner import Level, Profile, case, case_each, check, expect, fail, skip
from pluginconf.runner.http import ServeHTTPCall, exchange
from pluginconf.runner.shared import SUITE_CONFIGURATION, SUITE_PLUGIN_ID, SharedPlugin
from pluginconf.runner.target import PluginTarget
from pluginconf.runner.timing import Yardstick
from pluginconf.v1 import hooks_pb2

from ._helpers import (
    ALL_HOOKS,
    LIFECYCLE_HOOKS,
    NON_BMP,
    HookOutcome,
    call_hook,
    expect_serving,
    hook_problem,
    judge_bound,
    large_text,
    post,
    requests_of,
)

if TYPE_CHECKING:
    from pluginconf.v1.hooks_pb2_grpc import HooksAsyncStub  # in the type stubs only

_PROBE_POST = post(id="pluginconf-probe", channel_id="c", user_id="u", message="probe")
# Requests for each hook that any plugin should take as ordinary calls.
_PROBE_REQUESTS = {
    "OnConfigurationChange": hooks_pb2.OnConfigurationChangeRequest(
        configuration=SUITE_CONFIGURATION
    ),
    "OnActivate": hooks_pb2.OnActivateRequest(plugin_id=SUITE_PLUGIN_ID),
    "MessageHasBeenPosted": hooks_pb2.MessageHasBeenPostedRequest(post=_PROBE_POST),
    "MessageWillBePosted": hooks_pb2.MessageWillBePostedRequest(post=_PROBE_POST),
    "ExecuteCommand": hooks_pb2.ExecuteCommandRequest(command="/pluginconf-probe"),
    "OnDeactivate": hooks_pb2.OnDeactivateRequest(),
}


async def _serve_http_answers(hooks: HooksAsyncStub) -> tuple[bool, str]:
    """Whether ServeHTTP is served (anything but UNIMPLEMENTED), and how it ended."""
    call = ServeHTTPCall(hooks, timeout_s=30)
    try:
        try:
            await call.send_init("GET", "/")
            await call.send_end()
            await call.half_close()
        except grpc.aio.AioRpcError:
            pass  # the reader sees the status
        response = await call.finish(30)
    finally:
        await call.close()
    return response.code != grpc.StatusCode.UNIMPLEMENTED, response.describe()


@case(
    "plugin/hooks/implemented-consistent",
    requirements=["HK-2", "HK-3", "HK-4"],
    profile=Profile.HOOKS,
)
async def implemented_consistent(t: PluginTarget) -> None:
    """
    Purpose: The host may trust Implemented: it calls exactly the hooks listed there.
    Procedure: On a new plugin process, call Implemented, then every Hooks method once with
      an ordinary request (OnDeactivate last, ServeHTTP as GET /).
    Asserts: Implemented answers (HK-2); the hooks listed are exactly those that do not fail
      with UNIMPLEMENTED (HK-4), so that every other hook answers UNIMPLEMENTED (HK-3).
    """
    fresh = await t.launch()
    implemented = await call_hook(fresh.hooks, "Implemented", hooks_pb2.ImplementedRequest())
    expect(implemented.ok, implemented.describe(), requirement="HK-2")
    assert isinstance(implemented.response, hooks_pb2.ImplementedResponse)
    listed = set(implemented.response.hooks)
    wrong = []
    order = [h for h in ALL_HOOKS if h != "OnDeactivate"] + ["OnDeactivate"]
    for hook in order:
        t.step(f"calling {hook}")
        if hook == "ServeHTTP":
            answered, how = await _serve_http_answers(fresh.hooks)
        else:
            outcome = await call_hook(fresh.hooks, hook, _PROBE_REQUESTS[hook])
            answered = outcome.code != grpc.StatusCode.UNIMPLEMENTED
            how = outcome.describe()
        if answered != (hook in listed):
            state = "listed" if hook in listed else "not listed"
            wrong.append(f"{hook} is {state} but answered: {how}")
    expect(
        not wrong,
        f"Implemented lists {sorted(listed)}, but:\n" + "\n".join(wrong),
        requirement=["HK-3", "HK-4"],
    )


@case("plugin/hooks/implemented-stable", requirements=["HK-2"], profile=Profile.HOOKS)
async def implemented_stable(t: PluginTarget) -> None:
    """
    Purpose: Implemented is a fact about the process, stated plainly.
    Procedure: Call Implemented three more times on the shared process.
    Asserts: Every answer equals the first; it names only Hooks methods, each once, and not
      Implemented itself.
    """
    shared = await t.shared()
    first = list(shared.implemented)
    for i in range(3):
        again = list(
            (await shared.hooks.Implemented(hooks_pb2.ImplementedRequest(), timeout=10)).hooks
        )
        expect(again == first, f"Implemented answered {again} on call {i + 2}, {first} first")
    problems = []
    duplicates = sorted({h for h in first if first.count(h) > 1})
    if duplicates:
        problems.append(f"listed twice: {duplicates}")
    unknown = sorted(set(first) - set(ALL_HOOKS))
    if unknown:
        problems.append(f"not Hooks methods: {unknown}")
    expect(not problems, f"Implemented answers {first}: " + "; ".join(problems))


@case("plugin/hooks/lifecycle-sequence", requirements=["LC-10"], profile=Profile.HOOKS)
async def lifecycle_sequence(t: PluginTarget) -> None:
    """
    Purpose: A plugin goes through its whole life the way hosts drive it.
    Procedure: On a new process: Implemented, OnConfigurationChange with a configuration,
      OnActivate, MessageHasBeenPosted, OnDeactivate (each when listed), a health check,
      then Shutdown.
    Asserts: Every hook answers with status OK; after OnDeactivate the plugin still answers
      health checks with SERVING (how it then stops is the controller cases' matter).
    """
    fresh = await t.launch()
    listed = set((await fresh.hooks.Implemented(hooks_pb2.ImplementedRequest(), timeout=10)).hooks)
    for hook in ("OnConfigurationChange", "OnActivate", "MessageHasBeenPosted", "OnDeactivate"):
        if hook not in listed:
            continue
        t.step(f"calling {hook}")
        outcome = await call_hook(fresh.hooks, hook, _PROBE_REQUESTS[hook])
        expect(outcome.ok, f"in the lifecycle sequence, {outcome.describe()}")
    t.step("checking health after OnDeactivate")
    problem = await health_problem(fresh.health, 10.0)
    expect(problem is None, f"after OnDeactivate: {problem}\n{fresh.evidence()}")


def _serve_http_requests(kind: str) -> list[dict[str, Any]]:
    if kind == "empty":
        return [{"method": "", "path": ""}]
    if kind == "unicode":
        return [
            {
                "method": "POST",
                "path": f"/pluginconf/{NON_BMP}/é",
                "query": f"q={NON_BMP}&=&x",
                "headers": [("x-pluginconf", [NON_BMP, "", "é"])],
                "body": f"{NON_BMP}\u2028".encode() * 100,
            }
        ]
    return [
        {
            "method": "POST",
            "path": "/pluginconf/large",
            "headers": [("x-large", [large_text(1024 * 1024)])],
            "body": b"\xa5" * (8 * 1024 * 1024),
        }
    ]


@case_each(
    "plugin/hooks/payload-{}",
    ["empty", "unicode", "large"],
    requirements=["HK-8", "HK-10", "TR-10"],
    profile=Profile.HOOKS,
)
async def payloads(t: PluginTarget, kind: str) -> None:
    """
    Purpose: Valid but unusual requests ({value}: empty fields, text outside the Basic
      Multilingual Plane, or sizes close to the 4 MiB message limit) are ordinary calls.
    Procedure: Call every hook the shared process lists (but OnActivate and OnDeactivate)
      with {value} requests; ServeHTTP with an {value} request.
    Asserts: No request is refused for its size (TR-10); each hook answers with status OK
      (INTERNAL is tolerated for an unexpected failure), any AppError has a lower_snake_case
      code, each ServeHTTP response is framed correctly (HK-8); the plugin stays SERVING
      (HK-10).
    """
    shared = await t.shared()
    for hook, request in requests_of(kind).items():
        if hook not in shared.implemented or hook in LIFECYCLE_HOOKS:
            continue
        t.step(f"calling {hook} with a {kind} request")
        outcome = await call_hook(shared.hooks, hook, request)
        problem = hook_problem(outcome)
        rule = "TR-10" if outcome.code == grpc.StatusCode.RESOURCE_EXHAUSTED else "HK-8"
        check(problem is None, f"with a {kind} request: {problem}", requirement=rule)
    if "ServeHTTP" in shared.implemented:
        for http_request in _serve_http_requests(kind):
            t.step(f"calling ServeHTTP with a {kind} request")
            response = await exchange(shared.hooks, **http_request)
            rule = "TR-10" if response.code == grpc.StatusCode.RESOURCE_EXHAUSTED else "HK-8"
            check(
                response.code == grpc.StatusCode.OK and not response.violations,
                f"with a {kind} request: ServeHTTP {http_request['method']!r} "
                f"{http_request['path']!r}: {response.describe()}; "
                + "; ".join(response.violations),
                requirement=rule,
            )
    problem = await health_problem(shared.health, 10.0)
    check(problem is None, f"after the {kind} requests: {problem}", requirement="HK-10")


@case("plugin/hooks/message-limit", requirements=["TR-11"], profile=Profile.HOOKS)
async def message_limit(t: PluginTarget) -> None:
    """
    Purpose: The plugin never sends a message over gRPC's 4 MiB default limit, which a
      default-configured host would refuse.
    Procedure: Call every hook the shared process lists (but OnActivate and OnDeactivate)
      with requests close to 4 MiB, and ServeHTTP with an 8 MiB body; the suite accepts up
      to 64 MiB, to see what comes.
    Asserts: Every response message is at most 4194304 bytes.
    """
    shared = await t.shared()
    problems = []
    for hook, request in requests_of("large").items():
        if hook not in shared.implemented or hook in LIFECYCLE_HOOKS:
            continue
        t.step(f"calling {hook} with a large request")
        outcome = await call_hook(shared.hooks, hook, request)
        if outcome.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            problems.append(f"{hook}: {outcome.describe()}")
        elif outcome.response is not None and outcome.response.ByteSize() > GRPC_MAX_MESSAGE_BYTES:
            problems.append(f"{hook} answered a {outcome.response.ByteSize()}-byte message")
    if "ServeHTTP" in shared.implemented:
        t.step("calling ServeHTTP with an 8 MiB body")
        response = await exchange(
            shared.hooks, "POST", "/pluginconf/large", body=b"\x5a" * (8 * 1024 * 1024)
        )
        if response.max_wire_bytes > GRPC_MAX_MESSAGE_BYTES:
            problems.append(f"ServeHTTP sent a {response.max_wire_bytes}-byte frame")
    expect(not problems, f"messages over {GRPC_MAX_MESSAGE_BYTES} bytes:\n" + "\n".join(problems))


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
            return await call_hook(shared.hooks, hook, _PROBE_REQUESTS[hook], timeout_s=10)
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
        for h, r in _PROBE_REQUESTS.items()
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
    fds, rss = process.num_fds(), process.memory_info().rss
    expect(
        fds - baseline[0] <= _MAX_FD_GROWTH,
        f"open descriptors grew from {baseline[0]} to {fds} between call {_WARM_CALLS} and "
        f"call {_ENDURANCE_CALLS}",
    )
    expect(
        rss - baseline[1] <= _MAX_RSS_GROWTH,
        f"resident memory grew by {(rss - baseline[1]) / 2**20:.1f} MiB between call "
        f"{_WARM_CALLS} and call {_ENDURANCE_CALLS}",
    )
    await expect_serving(shared.health, f"after {_ENDURANCE_CALLS} calls")
