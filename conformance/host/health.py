"""Health: the host waits for SERVING before calling, and restarts a plugin that hangs."""

from __future__ import annotations

from pluginconf.runner import Profile, case, expect
from pluginconf.runner.host_target import HostTarget

from ._helpers import command_answer, expect_crash_kind


@case("host/health/waits-for-serving", requirements=["HL-6", "HK-1"], profile=Profile.HOOKS)
async def waits_for_serving(t: HostTarget) -> None:
    """
    Purpose: The host calls a plugin only once it says it is ready.
    Procedure: Load a fake plugin whose health answers NOT_SERVING for its first second, then
      SERVING.
    Asserts: The plugin becomes active, and its first Hooks call (Implemented) arrives after
      the host was answered SERVING for the service "plugin" (by Check or Watch).
    """
    plugin = await t.load({"health": {"serving_after_s": 1.0}}, wait_active=False)
    await plugin.wait_event("health_serving", timeout_s=10.0)
    await plugin.wait_active()
    calls = plugin.calls()
    expect(calls, f"the host made no Hooks call\n{plugin.evidence()}")
    first = calls[0]
    serving = [
        e
        for e in plugin.events("health_answer")
        if e.get("service") == "plugin" and e.get("answer") == "SERVING" and e.seq < first.seq
    ]
    expect(
        serving,
        f"the host called {first.get('hook')} before it had received SERVING for the service "
        f'"plugin" (HL-6)\n{plugin.evidence()}',
    )


@case("host/health/never-serving", requirements=["HL-6"], profile=Profile.HOOKS)
async def never_serving(t: HostTarget) -> None:
    """
    Purpose: A plugin that never becomes ready is refused, not called.
    Procedure: Load a fake plugin whose health answers NOT_SERVING throughout, with a start
      timeout of 1.5 s and a restart limit of 1.
    Asserts: The host reports a `crashed` transition of kind not_serving, and never made a
      Hooks call to it.
    """
    plugin = await t.load(
        {"health": "NOT_SERVING"}, wait_active=False, restart_limit=1, start_timeout_s=1.5
    )
    status = await plugin.wait_state("failed", timeout_s=15.0)
    expect_crash_kind(status, "not_serving", "HL-6")
    expect(
        not plugin.calls(),
        f"the host called a plugin that never reported SERVING (HL-6)\n{plugin.evidence()}",
    )


@case("host/health/hung-plugin-restarted", requirements=["SV-7"], profile=Profile.HOOKS)
async def hung_plugin_restarted(t: HostTarget) -> None:
    """
    Purpose: A plugin that stops answering health checks is replaced.
    Procedure: Load a fake plugin whose health stops answering 1 s after its handshake, with a
      health interval of 0.3 s and a health timeout of 0.3 s.
    Asserts: The host reports a `crashed` transition of kind health_check_failed, the hung
      process is killed, a new process starts and becomes active and answers a command.
    """
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
    expect(not left, f"the hung process {first} still runs after the host gave up on it (SV-7)")
    pids = await plugin.wait_started(2, timeout_s=10.0)
    await plugin.wait_status(
        lambda s: s.state == "active" and s.pid == pids[1], "active with its new process"
    )
    command_answer(await plugin.command("/after-restart"), plugin)
