"""Crashes: detecting an exit, restarting, failing the calls in flight."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable

import grpc

from pluginconf.control import control_pb2
from pluginconf.runner import Level, Profile, case, check, expect, fail
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.fake_plugin import FakePlugin, describe_status
from pluginconf.runner.host.observer import received
from pluginconf.runner.host.target import HostTarget
from pluginconf.runner.timing import Yardstick, judge_time
from pluginconf.v1 import hooks_pb2

from .._helpers import command_answer, expect_error_kind, new_seed, seeded
from ._helpers import HANG, index_of

CONFIGURATION = {"mode": "crash-test", "unicode": "🧩"}


# SV-3 and SV-4: a crash detected within 10 s, and (recommended) within 1 s.
DETECTION_BOUND_S = 10.0
DETECTION_TARGET_S = 1.0


# SV-5: calls in progress fail within 1 s of the exit.
IN_FLIGHT_BOUND_S = 1.0


# Not a SPEC bound: how long the suite waits for a `crashed` at all (SV-3 allows 10 s).
CRASH_GUARD_S = 20.0


async def detection_delay(
    p: FakePlugin, rng: random.Random
) -> tuple[float | None, int, control_pb2.PluginStatus]:
    """After a random delay (0-300 ms), SIGKILL the plugin's process: how long after the kill
    the host's `crashed` transition is dated (None: none within the guard), its index, and
    the status."""
    before = len((await p.status()).transitions)
    await asyncio.sleep(rng.uniform(0.0, 0.3))  # a random moment, not a synchronisation
    killed_at = time.time()
    pid = p.kill()
    p.target.step(f"waiting for the host to notice that process {pid} was killed")
    status = await p.watch_until(
        lambda s: any(tr.new_state == "crashed" for tr in s.transitions[before:]), CRASH_GUARD_S
    )
    if status is None:
        return None, -1, await p.status()
    crashed, transition = index_of(status, "crashed", before)
    wall = transition.wall_time
    if wall <= 0:
        # A host that dates nothing (against SV-2): what the suite saw is the bound.
        wall = time.time()
    return wall - killed_at, crashed, status


def detection_again(t: HostTarget, rng: random.Random) -> Callable[[], Awaitable[float | None]]:
    """A new measurement of crash detection, on a new fake (restart limit 1)."""

    async def measure() -> float | None:
        fresh = await t.load({}, name="again", restart_limit=1)
        delay, _, _ = await detection_delay(fresh, rng)
        return delay

    return measure


@case(
    "host/crash/restart-after-kill",
    requirements=["SV-3", "SV-8", "LC-1"],
    profile=Profile.HOOKS,
    timeout_s=60,
)
async def restart_after_kill(t: HostTarget) -> None:
    """
    Purpose: A plugin process that dies is noticed by the host watching the process, and a
      new one takes its place, activated as any new process is.
    Procedure: Load a well-behaved fake with a configuration; after a random delay of 0 to
      300 ms (seeded; the seed is in the evidence) SIGKILL its process. Wait for the host's
      `crashed`, then for a new process, its activation, `active`, and fire ExecuteCommand.
    Asserts: The host enters `crashed` within 10 s of the kill (SV-3, judged against the
      same-run yardstick of a signal, measured again on a new fake when late); a new process
      starts (SV-8: the host restarts); it receives OnConfigurationChange with the complete
      configuration and then OnActivate, each once; the plugin becomes active; the command
      reaches the new process and its answer comes back (LC-1).
    """
    with seeded(t, new_seed()) as rng:
        p = await t.load({}, configuration=CONFIGURATION)
        old = p.pids()[-1]
        detected, crashed, status = await detection_delay(p, rng)
        if detected is None:
            fail(
                f"{CRASH_GUARD_S:g}s after the plugin process was killed, the host had not "
                f"entered `crashed` (SV-3: within 10 s)\n{describe_status(status)}",
                requirement="SV-3",
            )
        verdict = await judge_time(
            DETECTION_BOUND_S,
            detection_again(t, rng),
            Yardstick.SIGNAL,
            "the host's `crashed` after the plugin process was killed",
            seen=[detected],
        )
        check(
            verdict.met,
            f"{verdict.evidence()} (SV-3)\n{describe_status(status)}",
            requirement="SV-3",
        )
        t.require(Capability.RESTARTS, "starting a new process after the crash")
        new = (await p.wait_started(2, timeout_s=15.0))[1]
        expect(new != old, f"the 'new' process has the killed pid {old}\n{p.evidence()}")
        await p.wait_event(
            "call",
            where=lambda e: e.pid == new and e.get("hook") == "OnActivate",
            timeout_s=15.0,
            why=f"the new process {new} must be activated (LC-1)",
        )
        await p.wait_state("active", after=crashed + 1, timeout_s=15.0)
        lifecycle = [
            e
            for e in p.calls(pid=new)
            if e.get("hook") in ("OnConfigurationChange", "OnActivate", "OnDeactivate")
        ]
        hooks = [e.get("hook") for e in lifecycle]
        expect(
            hooks == ["OnConfigurationChange", "OnActivate"],
            f"the new process received the lifecycle hooks {hooks}; expected "
            f"OnConfigurationChange then OnActivate, each once (LC-1)\n{p.evidence()}",
        )
        sent = dict(received(lifecycle[0], hooks_pb2.OnConfigurationChangeRequest).configuration)
        expect(
            sent == CONFIGURATION,
            f"the new process's OnConfigurationChange carried {sent!r}; expected the complete "
            f"configuration {CONFIGURATION!r} (LC-1)",
        )
        answer = command_answer(await p.command("/after-restart", timeout_s=20), p)
        expect(
            answer.text == "/after-restart",
            f"the command's answer says {answer.text!r}; the fake echoes the command",
        )
        on = [e.pid for e in p.calls("ExecuteCommand")]
        expect(
            on == [new],
            f"ExecuteCommand reached the processes {on}; expected only the new one ({new})"
            f"\n{p.evidence()}",
        )


@case(
    "host/crash/detection-within-1s",
    requirements=["SV-4"],
    profile=Profile.HOOKS,
    level=Level.SHOULD,
    timeout_s=45,
)
async def detection_within_1s(t: HostTarget) -> None:
    """
    Purpose: A crash is noticed at once, so that calls fail fast and the restart begins
      early.
    Procedure: Load a well-behaved fake (restart limit 1); after a random delay of 0 to
      300 ms (seeded) SIGKILL its process and wait for the host's `crashed`.
    Asserts: The wall_time of the `crashed` transition is at most 1 s after the kill (judged
      against the same-run yardstick of a signal, measured again on a new fake when late).
    """
    with seeded(t, new_seed()) as rng:
        p = await t.load({}, restart_limit=1)
        detected, _, status = await detection_delay(p, rng)
        if detected is None:
            fail(
                f"{CRASH_GUARD_S:g}s after the plugin process was killed, the host had not "
                f"entered `crashed`; SV-4 recommends 1 s\n{describe_status(status)}"
            )
        verdict = await judge_time(
            DETECTION_TARGET_S,
            detection_again(t, rng),
            Yardstick.SIGNAL,
            "the host's `crashed` after the plugin process was killed",
            seen=[detected],
        )
        expect(
            verdict.met,
            f"{verdict.evidence()}; SV-4 recommends at most 1 s\n{describe_status(status)}",
        )


@case(
    "host/crash/exit-zero-is-crash",
    requirements=["SV-6", "SV-8"],
    profile=Profile.HOOKS,
    timeout_s=45,
)
async def exit_zero_is_crash(t: HostTarget) -> None:
    """
    Purpose: A plugin that exits on its own with status 0 has still gone away unasked; the
      host restarts it rather than taking the exit as a stop.
    Procedure: Load a fake implementing only ExecuteCommand that exits with status 0 right
      after answering its first hook call; fire one command.
    Asserts: The host enters `crashed` (not `stopped`) within 10 s (SV-6), then a new process
      starts and the plugin becomes active again (SV-8).
    """
    p = await t.load(
        {"hooks": ["ExecuteCommand"], "crash": {"after_hook_calls": 1, "exit_code": 0}}
    )
    before = len((await p.status()).transitions)
    command_answer(await p.command("/last-words", timeout_s=20), p)
    exiting = await p.wait_event("exiting", timeout_s=5.0, why="the fake must exit after a call")
    expect(exiting.get("status") == 0, f"the fake exited with {exiting.get('status')}, not 0")
    status = await p.wait_status(
        lambda s: any(tr.new_state in ("crashed", "stopped") for tr in s.transitions[before:]),
        "crashed",
        timeout_s=10.0,
    )
    first = next(tr for tr in status.transitions[before:] if tr.new_state in ("crashed", "stopped"))
    expect(
        first.new_state == "crashed",
        f"after the plugin exited with status 0 on its own the host entered "
        f"{first.new_state!r}; an exit the host did not ask for is a crash (SV-6)\n"
        f"{describe_status(status)}",
        requirement="SV-6",
    )
    crashed, _ = index_of(status, "crashed", before)
    t.require(Capability.RESTARTS, "starting a new process after the crash")
    await p.wait_started(2, timeout_s=15.0)
    await p.wait_state("active", after=crashed + 1, timeout_s=15.0)


@case(
    "host/crash/in-flight-fails-fast",
    requirements=["SV-5"],
    profile=Profile.HOOKS,
    timeout_s=45,
)
async def in_flight_fails_fast(t: HostTarget) -> None:
    """
    Purpose: A call in progress to a process that dies fails at once, instead of holding its
      caller until the hook deadline.
    Procedure: Load a fake whose ExecuteCommand never answers, with a 30 s hook deadline;
      fire a command, wait until the fake holds it, then SIGKILL the process. A late failure
      is timed again on a new fake, against the same-run yardstick of a signal.
    Asserts: The command returns, within 1 s of the kill, an error of kind
      `plugin_unavailable`.
    """
    outcome, elapsed, p = await _fail_in_flight(t)
    expect(
        elapsed is not None,
        "5 s after the plugin process was killed, the command in progress had not returned; "
        f"it must fail within 1 s (SV-5)\n{p.evidence()}",
    )
    assert outcome is not None
    expect_error_kind(outcome, "plugin_unavailable", p, "SV-5")

    async def again() -> float | None:
        return (await _fail_in_flight(t))[1]

    verdict = await judge_time(
        IN_FLIGHT_BOUND_S,
        again,
        Yardstick.SIGNAL,
        "the failure of the command in progress after the plugin process was killed",
        seen=[elapsed],
    )
    expect(verdict.met, f"{verdict.evidence()} (SV-5)\n{p.evidence()}")


async def _fail_in_flight(
    t: HostTarget,
) -> tuple[control_pb2.CommandOutcome | None, float | None, FakePlugin]:
    """A command held by a fake whose process is then killed: its outcome, and how long
    after the kill it came (None, None when not within 5 s)."""
    p = await t.load(HANG, hook_timeout_s=30, restart_limit=1)
    answered: list[float] = []

    async def fire() -> control_pb2.CommandOutcome:
        outcome = await p.command("/held", timeout_s=45)
        answered.append(time.monotonic())
        return outcome

    task = asyncio.create_task(fire())
    try:
        held = await p.wait_event(
            "hanging",
            where=lambda e: e.get("hook") == "ExecuteCommand",
            timeout_s=10.0,
            why="the command must reach the fake",
        )
        killed = time.monotonic()
        p.kill(held.pid)
        t.step("waiting for the held command to fail after the kill")
        done, _ = await asyncio.wait({task}, timeout=5.0)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await task
    if task not in done:
        return None, None, p
    return task.result(), answered[0] - killed, p
