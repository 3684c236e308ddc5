"""Stopping: Shutdown, signals, the host's exit, and what is left afterwards."""

from __future__ import annotations

import os
import signal
import time

import psutil

from pluginconf.host.errors import describe_exit_status
from pluginconf.runner import Level, Profile, case, check, expect, skip
from pluginconf.runner.plugin.target import HostExit, PluginTarget
from pluginconf.runner.timing import ATTEMPTS, Yardstick, judge_time

from .._helpers import EXIT_GUARD_S, accepts_connections, expect_serving, judge_bound, left_running

# How long the suite waits for an exit at all: a deadlock guard, not a SPEC bound.


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
        exited = await fresh.wait_exit(EXIT_GUARD_S)
        now = time.monotonic()
        after_call.append(now - answer.sent_at if exited else None)
        return now - answer.answered_at if exited else None

    first = await stop_once()
    # A plugin that does not exit at all is no timing accident: measured once, not again.
    attempts = ATTEMPTS if first is not None else 1
    answered = await judge_time(
        0.1,
        stop_once,
        Yardstick.STOP,
        "the exit after Shutdown answered",
        seen=[first],
        attempts=attempts,
    )
    check(answered.met, answered.evidence(), requirement="CT-3")
    for bound, rule, what in (
        (2.0, "CT-10", "the exit after the Shutdown call (go-plugin's client waits 2 s)"),
        (1.0, "CT-3", "the exit after the Shutdown call"),
    ):

        async def call_once() -> float | None:
            await stop_once()
            return after_call[-1]

        verdict = await judge_time(
            bound, call_once, Yardstick.STOP, what, seen=after_call[:1], attempts=attempts
        )
        check(verdict.met, verdict.evidence(), requirement=rule)


@case("plugin/controller/sigterm", requirements=["CT-5", "TR-13"], profile=Profile.TRANSPORT)
async def sigterm(t: PluginTarget) -> None:
    """
    Purpose: SIGTERM stops a plugin as Shutdown does, for hosts and supervisors that signal,
      and the plugin cleans up after itself.
    Procedure: Start the plugin and send SIGTERM to its process; time its exit from the
      signal. A time over the bound is set beside a minimal gRPC process's exit on SIGTERM
      timed just then, and measured again on a new process before it counts (up to three
      times).
    Asserts: The process exits within 1 s of the signal (CT-5); once it has, its unix socket
      is gone (TR-13).
    """
    left: list[str] = []

    async def term_once() -> float | None:
        fresh = await t.launch(connect=False)
        address = fresh.handshake.address if fresh.handshake.network == "unix" else None
        sent = time.monotonic()
        fresh.signal(signal.SIGTERM)
        if not await fresh.wait_exit(EXIT_GUARD_S):
            return None
        took = time.monotonic() - sent
        if address is not None and os.path.lexists(address):
            left.append(address)
        return took

    verdict = await judge_bound(1.0, term_once, Yardstick.SIGNAL, "the exit after SIGTERM")
    check(verdict.met, verdict.evidence(), requirement="CT-5")
    check(
        not left,
        f"the socket {left[0] if left else ''} is still there after the plugin exited on SIGTERM",
        requirement="TR-13",
    )


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
    Procedure: Stop one plugin process with Shutdown and another with SIGTERM; wait (10 s at
      most) for each to exit.
    Asserts: Both exit with status 0.
    """
    for how in ("Shutdown", "SIGTERM"):
        fresh = await t.launch()
        if how == "Shutdown":
            await fresh.request_shutdown()
        else:
            fresh.signal(signal.SIGTERM)
        if not await fresh.wait_exit(EXIT_GUARD_S):
            check(False, f"after {how}: still running after {EXIT_GUARD_S:g} s")
        else:
            check(
                fresh.exit_status == 0,
                f"after {how}: exit status {describe_exit_status(fresh.exit_status or 0)}",
            )


@case(
    "plugin/controller/sigint-ignored",
    requirements=["CT-6"],
    profile=Profile.TRANSPORT,
    level=Level.SHOULD,
)
async def sigint_ignored(t: PluginTarget) -> None:
    """
    Purpose: A terminal's Ctrl-C does not stop a plugin behind its host's back.
    Procedure: Start the plugin, wait until it answers a health check (go-plugin starts
      ignoring SIGINT just after its handshake), send SIGINT to its process, watch for an
      exit for 2 s (a plugin that lets SIGINT stop it may take a while to wind down).
    Asserts: The process is still running and answers health checks with SERVING (for a
      plugin the suite does not call, netrpc: still accepts connections at its address).
    """
    calls = t.options.speaks_grpc
    fresh = await t.launch(connect=calls)
    if calls:
        # go-plugin ignores SIGINT only from just after it printed its handshake (server.go):
        # a plugin that answers has passed that point, so no start-up race decides the case.
        await expect_serving(fresh.health, "before SIGINT")
    fresh.signal(signal.SIGINT)
    expect(
        not await fresh.wait_exit(2.0),
        f"the plugin exited on SIGINT (status {describe_exit_status(fresh.exit_status or 0)})",
    )
    if calls:
        await expect_serving(fresh.health, "after SIGINT")
    else:
        expect(
            await accepts_connections(fresh.handshake),
            f"after SIGINT the plugin no longer accepts connections at {fresh.handshake.address}",
        )


# CT-8: the plugin must have exited within 2 s of its host's exit. The probe waits longer
# (a deadlock guard) so that a late exit is measured, not cut short.
_HOST_EXIT_BOUND_S = 2.0


@case("plugin/controller/host-exit", requirements=["CT-8", "TR-13"], profile=Profile.TRANSPORT)
async def host_exit(t: PluginTarget) -> None:
    """
    Purpose: A plugin whose host died does not live on unsupervised, nor leave its socket.
    Procedure: Start the plugin from an intermediate host process, which exits right after
      reading the handshake without stopping it; time the plugin's exit from the host's
      (10 s at most). A time over the bound is set beside a minimal gRPC process's exit on
      SIGTERM timed just then, and measured again before it counts (up to three times).
    Asserts: The plugin exits within 2 s of its host's exit (CT-8; its 1 s to notice is not
      observable apart); once it has, its unix socket is gone (TR-13).
    """
    seen: list[HostExit] = []

    async def orphan_once() -> float | None:
        seen.append(await t.host_exit(guard_s=EXIT_GUARD_S))
        return seen[-1].exited_after_s

    verdict = await judge_bound(
        _HOST_EXIT_BOUND_S, orphan_once, Yardstick.SIGNAL, "the exit after the host's exit"
    )
    first = seen[0]
    expect(first.plugin_pid is not None, f"the plugin could not be started: {first.stderr}")
    expect(first.handshake, f"the plugin wrote no handshake; stderr:\n{first.stderr}")
    if first.exited_after_s is None:
        check(
            False,
            f"the plugin was still running {EXIT_GUARD_S:g} s after its host exited (it was "
            "killed)",
            requirement="CT-8",
        )
    else:
        check(verdict.met, verdict.evidence(), requirement="CT-8")
    left = [s.socket_left for s in seen if s.socket_left]
    check(
        not left,
        f"the socket {left[0] if left else ''} is still there after the plugin exited on its "
        "host's exit",
        requirement="TR-13",
    )


@case("plugin/controller/no-orphans", requirements=["CT-9"], profile=Profile.TRANSPORT)
async def no_orphans(t: PluginTarget) -> None:
    """
    Purpose: A plugin that stops takes the processes it started with it.
    Procedure: Start the plugin, note its descendants, call Shutdown and wait (10 s at most)
      for it to exit.
    Asserts: No process it started, and no other member of its process group, is still
      running.
    """
    fresh = await t.launch()
    descendants = psutil.Process(fresh.pid).children(recursive=True)
    await fresh.request_shutdown()
    if not await fresh.wait_exit(EXIT_GUARD_S):
        skip(
            f"the plugin did not exit within {EXIT_GUARD_S:g} s of Shutdown, so what it "
            "leaves behind cannot be seen (plugin/controller/shutdown reports the exit)"
        )
    left = left_running(fresh.process_group(), descendants)
    expect(not left, "processes left running after the plugin exited: " + left)
