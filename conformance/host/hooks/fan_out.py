"""Dispatch over time and across plugins: configuration changes in order and failing, one
plugin's crashes isolated from another, notifications to every plugin.
"""

from __future__ import annotations

import asyncio
import time

import grpc

from pluginconf.control import control_pb2
from pluginconf.runner import Profile, case, check, expect, fail
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.fake_plugin import FakePlugin, describe_error, describe_status
from pluginconf.runner.host.observer import Observed, received
from pluginconf.runner.host.target import HostTarget
from pluginconf.runner.timing import Yardstick, judge_time
from pluginconf.v1 import hooks_pb2

from .._helpers import NON_BMP, make_post
from ._helpers import DEADLINE_ALLOWANCE_S, call_end_of, configuration_of

# NT-2: while one plugin hangs, each other plugin gets its notification within 1 s.
NOTIFY_BOUND_S = 1.0


@case("host/dispatch/configuration-change", requirements=["LC-3"], profile=Profile.HOOKS)
async def configuration_change(t: HostTarget) -> None:
    """
    Purpose: Configuration changes reach an active plugin whole, one at a time, in order.
    Procedure: Load a fake whose hooks each take 200 ms; change its configuration, and while
      that OnConfigurationChange is in progress at the fake, change it again.
    Asserts: The fake receives two more OnConfigurationChange calls, the first with exactly
      the first new configuration and the second with exactly the second (keys dropped are
      gone); the second arrives only after the first was answered; neither change fails.
    """
    initial = {"a": "1", "dropped": "x"}
    first = {"a": "2", "new": f"value {NON_BMP}", "empty": ""}
    second = {"a": "3"}
    plugin = await t.load({"hook_delay_ms": 200}, configuration=initial)

    def changes() -> list[Observed]:
        return plugin.calls("OnConfigurationChange")

    first_change = asyncio.ensure_future(plugin.configure(first))
    try:
        await t.observer.wait_count(
            lambda e: (
                e.label == plugin.plugin_id
                and e.event == "call"
                and e.get("hook") == "OnConfigurationChange"
            ),
            2,
            10.0,
        )
        second_outcome = await plugin.configure(second)
        first_outcome = await first_change
    finally:
        first_change.cancel()
    for outcome, which in ((first_outcome, "first"), (second_outcome, "second")):
        expect(
            not outcome.HasField("error"),
            f"the {which} change failed: {describe_error(outcome.error)}\n{plugin.evidence()}",
        )
    calls = changes()
    expect(
        len(calls) == 3,
        f"expected 3 OnConfigurationChange calls (activation and two changes), the fake "
        f"received {len(calls)} (LC-3)\n{plugin.evidence()}",
    )
    problems = []
    for call, wanted, which in ((calls[1], first, "first"), (calls[2], second, "second")):
        got = configuration_of(call)
        if got != wanted:
            problems.append(f"the {which} change arrived as {got!r}, expected {wanted!r}")
    end = call_end_of(plugin, calls[1])
    if end is None or end.seq > calls[2].seq:
        problems.append(
            "the second OnConfigurationChange arrived while the first was still in progress "
            "(never concurrent for one plugin)"
        )
    expect(not problems, "LC-3:\n" + "\n".join(problems) + f"\n{plugin.evidence()}")


@case("host/dispatch/isolation", requirements=["SV-20"], profile=Profile.HOOKS)
async def isolation(t: HostTarget) -> None:
    """
    Purpose: One plugin crashing over and over does not disturb another.
    Procedure: Load a fake that crashes on every ExecuteCommand (restarting after at most
      100 ms) and a well-behaved one; twice, fire a command at both at once, fire another at
      the well-behaved one while the other restarts, and wait for the crashing one to be
      active again (once, without waiting, for a host without restarts).
    Asserts: Every command to the well-behaved plugin returns its answer; it stays active
      throughout (no transition after active) with one process.
    """
    crashing = await t.load(
        {"crash": {"on": "ExecuteCommand"}},
        name="crashing",
        backoff_base_s=0.05,
        backoff_max_s=0.1,
        restart_limit=20,
        enable=False,
    )
    steady = await t.load(name="steady", enable=False)
    for plugin in (crashing, steady):
        await plugin.enable()
    await asyncio.gather(crashing.wait_active(), steady.wait_active())
    answers = []
    # A host without restarts leaves the crashed plugin crashed: one round then.
    restarts = t.supports(Capability.RESTARTS)
    for round_ in range(1, 3 if restarts else 2):
        before = len((await crashing.status()).transitions)
        t.step(f"round {round_}: firing at both plugins")
        _, steady_outcome = await asyncio.gather(
            crashing.command(f"/crash {round_}"), steady.command(f"/steady {round_}")
        )
        answers.append((f"/steady {round_}", steady_outcome))
        answers.append((f"/steady {round_} again", await steady.command(f"/steady {round_} again")))
        if restarts:
            await crashing.wait_state("active", after=before + 1)
        else:
            await crashing.wait_state("crashed", "failed", after=before)
    for command, outcome in answers:
        if outcome.WhichOneof("result") != "response" or outcome.response.text != command:
            shown = (
                describe_error(outcome.error)
                if outcome.HasField("error")
                else repr(outcome.response.text)
            )
            fail(
                f"while another plugin crashed, the command {command!r} to {steady.plugin_id!r} "
                f"returned {shown} (SV-20: no effect on other plugins)\n{steady.evidence()}"
            )
    status = await steady.status()
    states = [tr.new_state for tr in status.transitions]
    expect(
        status.state == "active" and states == ["starting", "active"] and len(steady.pids()) == 1,
        f"while another plugin crashed, {steady.plugin_id!r} went through {states} with "
        f"{len(steady.pids())} process(es) (SV-20: its state must not change)\n"
        f"{describe_status(status)}\n{steady.evidence()}",
    )
    expect(
        len(crashing.pids()) >= (3 if restarts else 1),
        f"the crashing plugin was expected to crash and restart twice\n{crashing.evidence()}",
    )


@case("host/dispatch/fan-out", requirements=["NT-1", "NT-2", "NT-3", "NT-4"], profile=Profile.HOOKS)
async def fan_out(t: HostTarget) -> None:
    """
    Purpose: A notification reaches every plugin at once, one hanging plugin holding up no
      other, and a failure is reported, not retried.
    Procedure: Load, in this order, a fake whose MessageHasBeenPosted never answers (hook
      deadline 1.5 s) and two well-behaved fakes; notify a post, noting the time of firing;
      after the outcome, watch for half a second more. A late time is measured again, by
      notifying again, against the same-run yardstick of a call.
    Asserts: Each well-behaved fake received the post exactly as sent, once (NT-1), within
      1 s of the firing (NT-2); the hanging one was called once and never again (NT-1, NT-4);
      the outcome reports an error for the hanging plugin and none for the others (NT-4), and
      came within 0.5 s of the 1.5 s deadline (NT-3).
    """
    deadline = 1.5
    hung = await t.load(
        {"hang": {"hook": "MessageHasBeenPosted"}},
        name="hung",
        hook_timeout_s=deadline,
        enable=False,
    )
    others = [await t.load(name=n, enable=False) for n in ("first", "second")]
    for plugin in (hung, *others):
        await plugin.enable()
    await asyncio.gather(*(p.wait_active() for p in (hung, *others)))
    post = make_post(f"fan-out {NON_BMP}", props={"k": "v", "empty": ""})
    evidence = "".join(f"\n{p.evidence()}" for p in (hung, *others))
    outcome, took, delay = await _notify_once(t, post, deadline, others)
    for plugin in others:
        calls = plugin.calls("MessageHasBeenPosted")
        check(
            len(calls) == 1,
            f"{plugin.plugin_id!r} received MessageHasBeenPosted {len(calls)} times, expected "
            f"once (NT-1){evidence}",
            requirement="NT-1",
        )
        if calls:
            got = received(calls[0], hooks_pb2.MessageHasBeenPostedRequest).post
            check(
                got == post,
                f"{plugin.plugin_id!r} received {got}, expected {post} (NT-1)",
                requirement="NT-1",
            )
    results = {r.plugin_id: r for r in outcome.results}
    hung_result = results.get(hung.plugin_id)
    check(
        hung_result is not None and hung_result.HasField("error"),
        f"the outcome reports no error for the hanging plugin {hung.plugin_id!r} "
        f"(results: {list(outcome.results)}) (NT-4: a failure is logged and reported)",
        requirement="NT-4",
    )
    for plugin in others:
        result = results.get(plugin.plugin_id)
        check(
            result is None or not result.HasField("error"),
            f"the outcome reports {describe_error(result.error) if result else ''} for "
            f"{plugin.plugin_id!r}, which answered (NT-4: no effect on other plugins)",
            requirement="NT-4",
        )
    retried = await t.observer.wait_count(
        lambda e: (
            e.label == hung.plugin_id
            and e.event == "call"
            and e.get("hook") == "MessageHasBeenPosted"
        ),
        2,
        0.5,
    )
    check(
        len(retried) == 1,
        f"the hanging plugin received MessageHasBeenPosted {len(retried)} times, expected "
        "exactly once: every active plugin is called (NT-1) and a failure is not retried "
        f"(NT-4){evidence}",
        requirement=["NT-1", "NT-4"],
    )
    measured: list[tuple[float, float | None]] = []

    async def again() -> float | None:
        measured.append((await _notify_once(t, post, deadline, others))[1:])
        return measured[-1][1]

    concurrent = await judge_time(
        NOTIFY_BOUND_S,
        again,
        Yardstick.CALL,
        "the latest notification of a plugin while another hung",
        seen=[delay],
    )
    check(
        concurrent.met,
        f"{concurrent.evidence()} (NT-2: concurrently){evidence}",
        requirement="NT-2",
    )

    async def again_took() -> float | None:
        return (await _notify_once(t, post, deadline, others))[1] - deadline

    waited = await judge_time(
        DEADLINE_ALLOWANCE_S,
        again_took,
        Yardstick.CALL,
        f"how long after the hook deadline of {deadline}s notifying the post returned",
        seen=[took - deadline, *(m[0] - deadline for m in measured)],
    )
    check(waited.met, f"{waited.evidence()} (NT-3){evidence}", requirement="NT-3")


async def _notify_once(
    t: HostTarget, post: hooks_pb2.Post, deadline: float, others: list[FakePlugin]
) -> tuple[control_pb2.NotifyOutcome, float, float | None]:
    """Notify ``post``: the outcome, how long the host took, and how long after the firing
    the latest of ``others`` received it (None: one did not within the call)."""
    counts = {p.plugin_id: len(p.calls("MessageHasBeenPosted")) for p in others}
    fired = time.monotonic()
    try:
        outcome = await t.notify_post(post, timeout_s=deadline + 30.0)
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
        fail(
            f"notifying a post took more than {deadline + 30.0:g}s while one plugin hung with "
            f"a hook deadline of {deadline}s (NT-3)",
            requirement="NT-3",
        )
    took = time.monotonic() - fired
    delays: list[float] = []
    for plugin in others:
        new = plugin.calls("MessageHasBeenPosted")[counts[plugin.plugin_id] :]
        if not new:
            return outcome, took, None
        delays.append(new[0].monotonic - fired)
    return outcome, took, max(delays)


@case(
    "host/dispatch/configuration-error",
    requirements=["LC-4"],
    profile=Profile.HOOKS,
    timeout_s=45,
)
async def configuration_error(t: HostTarget) -> None:
    """
    Purpose: A plugin that refuses its configuration is not activated, and the operator
      learns why.
    Procedure: Load a fake whose OnConfigurationChange answers an AppError (restart limit 3);
      wait for the host to settle.
    Asserts: The plugin is `failed`, its last error holds the code and message, OnActivate
      was never called, and no second process was started.
    """
    code, message = "bad_configuration", f"greeting is missing {NON_BMP}"
    p = await t.load(
        {"hook_errors": {"OnConfigurationChange": {"code": code, "message": message}}},
        wait_active=False,
        restart_limit=3,
    )
    status = await p.wait_state("failed", "active", timeout_s=20.0)
    expect(
        status.state == "failed",
        f"the plugin is {status.state}; a configuration AppError at start must leave it "
        f"failed (LC-4)\n{describe_status(status)}",
    )
    expect(
        code in status.last_error and message in status.last_error,
        f"the last error does not hold the plugin's code {code!r} and message {message!r} "
        f"(LC-4)\n{describe_status(status)}",
    )
    expect(
        not p.calls("OnActivate"),
        f"the host called OnActivate after the configuration was refused (LC-4)\n{p.evidence()}",
    )
    second = await t.observer.wait_count(
        lambda e: e.label == p.plugin_id and e.event == "started", 2, 1.0
    )
    expect(
        len(second) == 1,
        f"the host started the plugin again after it refused its configuration; LC-4 "
        f"allows no automatic restart\n{p.evidence()}",
    )
