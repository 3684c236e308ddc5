"""Health: the host waits for SERVING before calling, and restarts a plugin that hangs."""

from __future__ import annotations

import itertools

from pluginconf.control import control_pb2
from pluginconf.runner import Profile, case, check, expect, fail
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.fake_plugin import FakePlugin, describe_status
from pluginconf.runner.host.target import HostTarget
from pluginconf.runner.timing import Yardstick, judge_time

from .._helpers import command_answer, crash_transition, expect_crash_kind

# HL-6: while the answer is NOT_SERVING, Check is repeated at least every 100 ms.
RETRY_INTERVAL_S = 0.1
NOT_SERVING_FOR_S = 1.0


def check_gaps(plugin: FakePlugin) -> float | None:
    """The longest wait between two Check answers for "plugin" while it was NOT_SERVING, up
    to the first SERVING one; None when the host did not poll with Check (it may Watch)."""
    answers = [
        e
        for e in plugin.events("health_answer")
        if e.get("service") == "plugin" and str(e.get("method", "")).endswith("/Check")
    ]
    until = next((i for i, e in enumerate(answers) if e.get("answer") == "SERVING"), None)
    polled = answers[: until + 1] if until is not None else answers
    if len(polled) < 2:
        return None
    return max(b.monotonic - a.monotonic for a, b in itertools.pairwise(polled))


async def _not_serving_at_first(t: HostTarget) -> FakePlugin:
    plugin = await t.load({"health": {"serving_after_s": NOT_SERVING_FOR_S}}, wait_active=False)
    await plugin.wait_event("health_serving", timeout_s=10.0)
    await plugin.wait_active()
    return plugin


@case("host/health/waits-for-serving", requirements=["HL-6", "HK-1"], profile=Profile.HOOKS)
async def waits_for_serving(t: HostTarget) -> None:
    """
    Purpose: The host calls a plugin only once it says it is ready, and asks again promptly
      while it is not.
    Procedure: Load a fake plugin whose health answers NOT_SERVING for its first second, then
      SERVING. A host that polls with Check has its longest wait between two Checks timed;
      a long one is timed again on a new fake, against the same-run yardstick of a call.
    Asserts: The plugin becomes active, and its first Hooks call (Implemented) arrives after
      the host was answered SERVING for the service "plugin" (by Check or Watch); Checks
      while NOT_SERVING come at most 100 ms apart (HL-6).
    """
    plugin = await _not_serving_at_first(t)
    calls = plugin.calls()
    expect(calls, f"the host made no Hooks call\n{plugin.evidence()}")
    first = calls[0]
    serving = [
        e
        for e in plugin.events("health_answer")
        if e.get("service") == "plugin" and e.get("answer") == "SERVING" and e.seq < first.seq
    ]
    check(
        serving,
        f"the host called {first.get('hook')} before it had received SERVING for the service "
        f'"plugin" (HL-6)\n{plugin.evidence()}',
        requirement="HL-6",
    )
    gap = check_gaps(plugin)
    if gap is None:
        return  # the host watched (Health/Watch): it was told of SERVING at once

    async def again() -> float | None:
        return check_gaps(await _not_serving_at_first(t))

    verdict = await judge_time(
        RETRY_INTERVAL_S,
        again,
        Yardstick.CALL,
        "the longest wait between two health Checks while the plugin was NOT_SERVING",
        seen=[gap],
    )
    check(
        verdict.met,
        f"{verdict.evidence()} (HL-6: repeat Check at most every 100 ms)\n{plugin.evidence()}",
        requirement="HL-6",
    )


# Start timeouts tried in turn: the fake's own start (a Python process) must fit in the start
# timeout for the case to test what follows the handshake; on a loaded machine it may not.
START_TIMEOUTS_S = (2.0, 5.0, 15.0)


async def _refused_or_active(
    t: HostTarget, start_timeout_s: float
) -> tuple[FakePlugin, control_pb2.PluginStatus]:
    plugin = await t.load(
        {"health": "NOT_SERVING"},
        wait_active=False,
        restart_limit=1,
        start_timeout_s=start_timeout_s,
    )
    status = await plugin.wait_status(
        lambda s: s.state in ("active", "crashed", "failed"),
        "refused (or active)",
        timeout_s=2 * start_timeout_s + 15.0,
    )
    return plugin, status


@case("host/health/never-serving", requirements=["HL-6"], profile=Profile.HOOKS, timeout_s=90)
async def never_serving(t: HostTarget) -> None:
    """
    Purpose: A plugin that never becomes ready is refused, not called.
    Procedure: Load a fake plugin whose health answers NOT_SERVING throughout, with a start
      timeout of 2 s and a restart limit of 1. When the host gave up with start_timeout before
      it asked for the plugin's health (the fake's own start took the start timeout, as on a
      loaded machine), try again with 5 s, then 15 s.
    Asserts: The host reports a `crashed` transition of kind not_serving, and never made a
      Hooks call to it.
    """
    plugins: list[FakePlugin] = []
    for start_timeout_s in START_TIMEOUTS_S:
        plugin, status = await _refused_or_active(t, start_timeout_s)
        plugins.append(plugin)
        crashed = crash_transition(status)
        asked = plugin.events("health_answer")
        if crashed is None or crashed.error_kind != "start_timeout" or asked:
            break
    called = [p for p in plugins if p.calls()]
    check(
        not called,
        "the host called a plugin that never reported SERVING (HL-6)\n"
        + "\n".join(p.evidence() for p in called),
    )
    if status.state == "active":
        fail(
            f"the host activated a plugin whose health never answered SERVING (HL-6)\n"
            f"{describe_status(status)}\n{plugin.evidence()}"
        )
    expect_crash_kind(status, "not_serving", "HL-6")


@case("host/health/hung-plugin-restarted", requirements=["SV-7", "SV-8"], profile=Profile.HOOKS)
async def hung_plugin_restarted(t: HostTarget) -> None:
    """
    Purpose: A plugin that stops answering health checks is replaced.
    Procedure: Load a fake plugin whose health stops answering 1 s after its handshake, with a
      health interval of 0.3 s and a health timeout of 0.3 s.
    Asserts: The host reports a `crashed` transition of kind health_check_failed, the hung
      process is killed (SV-7); a new process starts and becomes active and answers a command
      (SV-8).
    """
    t.require(Capability.HEALTH_CHECKS)
    plugin = await t.load(
        {"hang": {"health": {"after_s": 1.0}}},
        health_interval_s=0.3,
        health_timeout_s=0.3,
        restart_limit=10,
    )
    first = (await plugin.wait_started(1))[0]
    status = await plugin.wait_state("crashed", timeout_s=10.0)
    expect_crash_kind(status, "health_check_failed", "SV-7")
    left = await t.wait_gone([first], timeout_s=5.0)
    expect(
        not left,
        f"the hung process {first} still runs after the host gave up on it (SV-7)",
        requirement="SV-7",
    )
    t.require(Capability.RESTARTS, "replacing the hung process")
    pids = await plugin.wait_started(2, timeout_s=10.0)
    await plugin.wait_status(
        lambda s: s.state == "active" and s.pid == pids[1], "active with its new process"
    )
    command_answer(await plugin.command("/after-restart"), plugin)
