"""Stopping: Shutdown, signals, the host's exit, and what is left afterwards."""

from __future__ import annotations

import signal
import time

import psutil

from pluginconf.host.errors import describe_status
from pluginconf.runner import Level, Profile, case, check, expect
from pluginconf.runner.target import PluginTarget
from pluginconf.runner.timing import Yardstick, judge_time

from ._helpers import expect_serving

# How long the suite waits for an exit at all: a deadlock guard, not a SPEC bound.
_EXIT_GUARD_S = 10.0


@case(
    "plugin/controller/shutdown",
    requirements=["CT-1", "CT-2", "CT-3", "CT-4", "CT-10"],
    profile=Profile.TRANSPORT,
)
async def shutdown(t: PluginTarget) -> None:
    """
    Purpose: The host's graceful stop ends an idle plugin promptly.
    Procedure: Start the plugin and call GRPCController/Shutdown (2 s deadline) while no
      other call is in progress; time the exit from the call and from its answer. A time
      over its bound is set beside a minimal gRPC process's stop timed just then, and
      measured again on a new process before it counts (up to three times).
    Asserts: Shutdown answers OK or fails with UNAVAILABLE (CT-4); the process exits within
      2 s of the call, as go-plugin's client waits (CT-10), and within 100 ms of the answer
      and 1 s of the call (CT-3).
    """
    after_call: list[float | None] = []

    async def stop_once() -> float | None:
        """Seconds from Shutdown's answer to the exit; None if no exit within 10 s."""
        fresh = await t.launch()
        answer = await fresh.request_shutdown()
        check(
            answer.outcome in ("ok", "unavailable"),
            f"Shutdown answered {answer.outcome}; expected OK or UNAVAILABLE",
            requirement="CT-4",
        )
        exited = await fresh.wait_exit(_EXIT_GUARD_S)
        now = time.monotonic()
        after_call.append(now - answer.sent_at if exited else None)
        return now - answer.answered_at if exited else None

    answered = await judge_time(0.1, stop_once, Yardstick.STOP, "the exit after Shutdown answered")
    check(answered.met, answered.evidence(), requirement="CT-3")
    for bound, rule, what in (
        (2.0, "CT-10", "the exit after the Shutdown call (go-plugin's client waits 2 s)"),
        (1.0, "CT-3", "the exit after the Shutdown call"),
    ):

        async def call_once() -> float | None:
            await stop_once()
            return after_call[-1]

        verdict = await judge_time(bound, call_once, Yardstick.STOP, what, seen=after_call[:1])
        check(verdict.met, verdict.evidence(), requirement=rule)


@case("plugin/controller/sigterm", requirements=["CT-5"], profile=Profile.TRANSPORT)
async def sigterm(t: PluginTarget) -> None:
    """
    Purpose: SIGTERM stops a plugin as Shutdown does, for hosts and supervisors that signal.
    Procedure: Start the plugin and send SIGTERM to its process.
    Asserts: The process exits within 1 s.
    """
    fresh = await t.launch()
    fresh.signal(signal.SIGTERM)
    expect(await fresh.wait_exit(1.0), "the plugin was still running 1 s after SIGTERM")


@case(
    "plugin/controller/exit-status",
    requirements=["CT-7"],
    profile=Profile.TRANSPORT,
    level=Level.SHOULD,
)
async def exit_status(t: PluginTarget) -> None:
    """
    Purpose: A plugin stopped on request reports success, so that hosts can tell a stop
      from a crash.
    Procedure: Stop one plugin process with Shutdown and another with SIGTERM.
    Asserts: Both exit with status 0.
    """
    problems = []
    for how in ("Shutdown", "SIGTERM"):
        fresh = await t.launch()
        if how == "Shutdown":
            await fresh.request_shutdown()
        else:
            fresh.signal(signal.SIGTERM)
        if not await fresh.wait_exit(2.0):
            problems.append(f"after {how}: still running after 2 s")
        elif fresh.exit_status != 0:
            problems.append(f"after {how}: exit status {describe_status(fresh.exit_status or 0)}")
    expect(not problems, "; ".join(problems))


@case(
    "plugin/controller/sigint-ignored",
    requirements=["CT-6"],
    profile=Profile.TRANSPORT,
    level=Level.SHOULD,
)
async def sigint_ignored(t: PluginTarget) -> None:
    """
    Purpose: A terminal's Ctrl-C does not stop a plugin behind its host's back.
    Procedure: Start the plugin, send SIGINT to its process, wait 2 s for an exit (a plugin
      that lets SIGINT stop it may take a while to wind down on a loaded machine).
    Asserts: The process is still running and answers health checks with SERVING.
    """
    fresh = await t.launch()
    fresh.signal(signal.SIGINT)
    expect(
        not await fresh.wait_exit(2.0),
        f"the plugin exited on SIGINT (status {describe_status(fresh.exit_status or 0)})",
    )
    await expect_serving(fresh.health, "after SIGINT")


@case("plugin/controller/host-exit", requirements=["CT-8"], profile=Profile.TRANSPORT)
async def host_exit(t: PluginTarget) -> None:
    """
    Purpose: A plugin whose host died does not live on unsupervised.
    Procedure: Start the plugin from an intermediate host process, which exits right after
      reading the handshake without stopping it.
    Asserts: The plugin exits within 2 s of its host's exit.
    """
    seen = await t.host_exit(bound_s=5.0)
    expect(seen.plugin_pid is not None, f"the plugin could not be started: {seen.stderr}")
    expect(seen.handshake, f"the plugin wrote no handshake; stderr:\n{seen.stderr}")
    expect(
        seen.exited_after_s is not None,
        "the plugin was still running 5 s after its host exited (it was killed)",
    )
    assert seen.exited_after_s is not None
    expect(
        seen.exited_after_s <= 2.0,
        f"the plugin exited {seen.exited_after_s:.2f} s after its host; the bound is 2 s",
    )


@case("plugin/controller/no-orphans", requirements=["CT-9"], profile=Profile.TRANSPORT)
async def no_orphans(t: PluginTarget) -> None:
    """
    Purpose: A plugin that stops takes the processes it started with it.
    Procedure: Start the plugin, note its descendants, call Shutdown and wait up to 2 s for
      it to exit.
    Asserts: No process it started, and no other member of its process group, is still
      running.
    """
    fresh = await t.launch()
    descendants = psutil.Process(fresh.pid).children(recursive=True)
    await fresh.request_shutdown()
    expect(await fresh.wait_exit(2.0), "the plugin did not exit within 2 s of Shutdown")
    left = {p.pid: p for p in fresh.process_group()}
    for child in descendants:
        try:
            if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                left[child.pid] = child
        except psutil.Error:
            continue
    described = []
    for pid, process in sorted(left.items()):
        try:
            described.append(f"{pid} {' '.join(process.cmdline())}")
        except psutil.Error:
            described.append(f"{pid} (gone while looking)")
    expect(not left, "processes left running after the plugin exited: " + "; ".join(described))
