"""Crashes: detecting an exit, restarting with backoff, giving up, the circuit, reaping.

Every timing here is measured on what can be seen from outside the host: the moment the
suite killed a process, the wall_time of the host's transitions (SV-2), when a FireHook
answered, and which calls the fakes received (Observer). Each SPEC bound is judged against a
same-run yardstick and measured again, on a new fake, before it fails (runner/timing.py).

Restarts, the circuit breaker and the HTTP front are capabilities a host may lack (go-plugin's
client has none of them): a case that needs one the host does not declare is skipped under a
go-plugin target and fails under the pluginconf target.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Awaitable, Callable

import grpc

from pluginconf.control import control_pb2
from pluginconf.runner import Level, Profile, case, check, expect, fail
from pluginconf.runner.host_capabilities import Capability
from pluginconf.runner.host_target import (
    FakePlugin,
    HostTarget,
    describe_status,
)
from pluginconf.runner.timing import Yardstick, judge_time
from pluginconf.v1 import hooks_pb2

from ._helpers import (
    command_answer,
    command_error,
    expect_error_kind,
    gone_path,
    kill_left,
    new_seed,
    received,
    seeded,
    socket_dir_of,
)

CONFIGURATION = {"mode": "crash-test", "unicode": "🧩"}
# SV-3 and SV-4: a crash detected within 10 s, and (recommended) within 1 s.
DETECTION_BOUND_S = 10.0
DETECTION_TARGET_S = 1.0
# SV-5: calls in progress fail within 1 s of the exit.
IN_FLIGHT_BOUND_S = 1.0
# The hook deadline while a circuit is tested, and how soon a call must fail when the circuit
# is open: well under the deadline, so that a call that waited for one is told apart.
HOOK_DEADLINE_S = 0.5
FAST_FAIL_S = 0.4
# SV-8: what a restart may come after the backoff's upper bound, for the host's own steps
# from `crashed` to `starting`.
BACKOFF_ALLOWANCE_S = 0.1
HANG = {"hang": {"hook": "ExecuteCommand"}}
ALWAYS_FAILS_TO_START = {"crash": {"on": "OnActivate"}}


def index_of(
    status: control_pb2.PluginStatus, state: str, after: int = 0
) -> tuple[int, control_pb2.Transition]:
    """The first transition into ``state`` from index ``after`` on, and its index."""
    for i in range(after, len(status.transitions)):
        if status.transitions[i].new_state == state:
            return i, status.transitions[i]
    fail(f"no transition into {state!r} after index {after}:\n{describe_status(status)}")


def count_states(status: control_pb2.PluginStatus, state: str) -> int:
    return sum(1 for tr in status.transitions if tr.new_state == state)


async def timed_command(
    p: FakePlugin, command: str, timeout_s: float = 20.0
) -> tuple[control_pb2.CommandOutcome, float]:
    """ExecuteCommand through the host; the outcome and how long it took."""
    start = time.monotonic()
    outcome = await p.command(command, timeout_s=timeout_s)
    return outcome, time.monotonic() - start


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


def _backoff_excess(
    status: control_pb2.PluginStatus, base: float, ceiling_s: float
) -> tuple[list[float], float, str]:
    """Each delay from the n-th `crashed` to the next `starting`, the most one exceeds
    min(ceiling, base x 2^(n-1)), and a table of them."""
    rows: list[str] = []
    delays: list[float] = []
    excess = -math.inf
    transitions = list(status.transitions)
    for i, tr in enumerate(transitions):
        if tr.new_state != "crashed":
            continue
        following = next(
            (x for x in transitions[i + 1 :] if x.new_state in ("starting", "crashed")), None
        )
        if following is None or following.new_state != "starting":
            continue
        n = len(delays) + 1
        delay = following.wall_time - tr.wall_time
        bound = min(ceiling_s, base * 2 ** (n - 1))
        delays.append(delay)
        excess = max(excess, delay - bound)
        rows.append(f"  failure {n}: restarted after {delay:.3f}s (bound {bound:g}s)")
    return delays, excess, "\n".join(rows) + "\n" + describe_status(status)


async def _back_off(t: HostTarget, base: float, ceiling_s: float) -> control_pb2.PluginStatus:
    """A fake that fails every start, restarted with this backoff until it started 6 times."""
    p = await t.load(
        ALWAYS_FAILS_TO_START,
        wait_active=False,
        backoff_base_s=base,
        backoff_max_s=ceiling_s,
        restart_limit=6,
        restart_window_s=3600,
    )
    return await p.wait_status(
        lambda s: count_states(s, "starting") >= 6, "started six times", timeout_s=40.0
    )


@case(
    "host/crash/backoff",
    requirements=["SV-8", "SV-10"],
    profile=Profile.HOOKS,
    timeout_s=90,
)
async def backoff(t: HostTarget) -> None:
    """
    Purpose: Restarts after repeated failures back off exponentially with jitter, so that
      a plugin that cannot start does not spin.
    Procedure: Load a fake that exits during every OnActivate, with backoff base 100 ms,
      maximum 1 s, restart limit 6 and a 1 h window; wait until the host has started it six
      times. From the host's transitions, take each delay between the n-th `crashed` and
      the next `starting`. A late restart is timed again on a new fake, against the same-run
      yardstick of a signal.
    Asserts: The host restarts a plugin whose starts fail (SV-10); each delay is at most
      min(1 s, 100 ms x 2^(n-1)) plus 100 ms for the host's own steps; and not every delay is
      under 50 ms (a host without backoff restarts at once: with the jitter of SV-8, five
      delays all under 50 ms happen about once in 20000 runs).
    """
    t.require(Capability.RESTARTS)
    base, ceiling_s = 0.1, 1.0
    status = await _back_off(t, base, ceiling_s)
    delays, excess, evidence = _backoff_excess(status, base, ceiling_s)
    expect(
        len(delays) >= 5,
        f"expected five restarts after failed starts, found {len(delays)} (SV-10):\n{evidence}",
        requirement="SV-10",
    )
    check(
        max(delays) >= 0.05,
        "every restart came within 50 ms of the failure: the host does not back off "
        f"(SV-8)\n{evidence}",
        requirement="SV-8",
    )

    async def again() -> float | None:
        return _backoff_excess(await _back_off(t, base, ceiling_s), base, ceiling_s)[1]

    verdict = await judge_time(
        BACKOFF_ALLOWANCE_S,
        again,
        Yardstick.SIGNAL,
        "how far the latest restart came after the backoff's bound, min(max, base x 2^(n-1))",
        seen=[excess],
    )
    check(verdict.met, f"{verdict.evidence()} (SV-8)\n{evidence}", requirement="SV-8")


@case(
    "host/crash/give-up",
    requirements=["SV-9", "SV-10"],
    profile=Profile.HOOKS,
    timeout_s=60,
)
async def give_up(t: HostTarget) -> None:
    """
    Purpose: A plugin that keeps failing is given up on, and enabling it again gives it a
      fresh start.
    Procedure: Load a fake that exits during every OnActivate, with restart limit 3, a 1 h
      window and short backoff; wait for `failed`, watch 1 s for a further process, enable
      the plugin again and wait for `failed` once more.
    Asserts: The plugin enters `failed` with error kind `restart_limit` after exactly three
      processes started; no fourth starts within 1 s; enabling it starts a new process, and
      it fails again only after three more (its failure history was cleared).
    """
    t.require(Capability.RESTARTS)
    p = await t.load(
        ALWAYS_FAILS_TO_START,
        wait_active=False,
        restart_limit=3,
        restart_window_s=3600,
        backoff_base_s=0.05,
        backoff_max_s=0.1,
    )
    status = await p.wait_state("failed", timeout_s=30.0)
    at, failed = index_of(status, "failed")
    expect(
        failed.error_kind == "restart_limit",
        f"the plugin entered `failed` with error kind {failed.error_kind!r}; expected "
        f"'restart_limit' (SV-9)\n{describe_status(status)}",
    )
    started = len(p.pids())
    expect(
        started == 3,
        f"{started} processes started before the host gave up; with a limit of 3 failures, "
        f"expected 3 (SV-9, SV-10)\n{p.evidence()}",
    )
    t.step("watching for 1 s that no further process starts")
    more = await t.observer.wait_count(
        lambda e: e.label == p.plugin_id and e.event == "started", 4, 1.0
    )
    expect(
        len(more) == 3,
        f"a process started after the plugin entered `failed`; it must not restart until "
        f"enabled again (SV-9)\n{p.evidence()}",
    )
    settled = await p.status()
    expect(
        settled.state == "failed",
        f"the plugin left `failed` without being enabled\n{describe_status(settled)}",
    )
    await p.enable()
    await p.wait_started(4, timeout_s=15.0)
    again = await p.wait_state("failed", after=at + 1, timeout_s=30.0)
    total = len(p.pids())
    expect(
        total == 6,
        f"after being enabled again the plugin failed after {total - 3} more process(es); "
        f"enabling clears the failure history, so 3 were expected (SV-9)\n"
        f"{describe_status(again)}\n{p.evidence()}",
    )


async def open_circuit(t: HostTarget, cooldown_s: float) -> tuple[FakePlugin, float]:
    """A fake whose ExecuteCommand hangs, a hook deadline of HOOK_DEADLINE_S, threshold 3, and
    three commands that time out: the circuit is open. The plugin and when the third answered."""
    t.require(Capability.CIRCUIT_BREAKER)
    p = await t.load(
        HANG, hook_timeout_s=HOOK_DEADLINE_S, breaker_threshold=3, breaker_cooldown_s=cooldown_s
    )
    for n in range(1, 4):
        outcome, _ = await timed_command(p, f"/fail-{n}", timeout_s=10)
        error = command_error(outcome, p)
        expect(
            error.kind != "circuit_open",
            f"command {n} failed with circuit_open; the circuit opens after 3 consecutive "
            f"failures, not {n - 1} (SV-11)\n{p.evidence()}",
        )
    calls = len(p.calls("ExecuteCommand"))
    expect(calls == 3, f"the fake received {calls} commands, 3 were sent\n{p.evidence()}")
    return p, time.monotonic()


async def _not_again() -> float | None:
    """For a bound that cannot be measured again: the first measurement is all there is."""
    return None


async def expect_no_call(p: FakePlugin, count: int, window_s: float, what: str) -> None:
    """Watch ``window_s`` for an ExecuteCommand call beyond the first ``count``."""
    p.target.step(f"watching {window_s:g}s for a command reaching the fake")
    seen = await p.target.observer.wait_count(
        lambda e: (
            e.label == p.plugin_id and e.event == "call" and e.get("hook") == "ExecuteCommand"
        ),
        count + 1,
        window_s,
    )
    expect(
        len(seen) <= count,
        f"{what}: the fake received ExecuteCommand #{len(seen)}, expected only {count} "
        f"(SV-11: hook calls fail at once without being sent)\n{p.evidence()}",
    )


@case(
    "host/crash/circuit-opens",
    requirements=["SV-11"],
    profile=Profile.HOOKS,
    timeout_s=45,
)
async def circuit_opens(t: HostTarget) -> None:
    """
    Purpose: After repeated failures the host stops sending calls to a plugin for a while,
      failing them at once.
    Procedure: Load a fake whose ExecuteCommand never answers, with a 500 ms hook deadline,
      breaker threshold 3 and a 30 s cooldown; fire three commands one after another, then
      a fourth.
    Asserts: The first three fail (not with circuit_open); the fourth fails with kind
      `circuit_open` within 400 ms (judged against the same-run yardstick of a call, and
      timed again on a further command when late), and no fourth command reaches the fake.
    """
    p, _ = await open_circuit(t, cooldown_s=30)
    outcome, took = await timed_command(p, "/blocked", timeout_s=10)
    expect_error_kind(outcome, "circuit_open", p, "SV-11")

    async def again() -> float | None:
        return (await timed_command(p, "/blocked-again", timeout_s=10))[1]

    verdict = await judge_time(
        FAST_FAIL_S,
        again,
        Yardstick.CALL,
        "the failure of a command while the circuit is open",
        seen=[took],
    )
    check(verdict.met, f"{verdict.evidence()}; an open circuit fails calls at once (SV-11)")
    await expect_no_call(p, 3, 0.3, "while the circuit was open")


@case(
    "host/crash/circuit-half-opens",
    requirements=["SV-12"],
    profile=Profile.HOOKS,
    timeout_s=45,
)
async def circuit_half_opens(t: HostTarget) -> None:
    """
    Purpose: After its cooldown an open circuit lets exactly one trial call through, and
      opens again when that trial fails.
    Procedure: Open the circuit as in host/crash/circuit-opens with a 1 s cooldown; watch
      the fake until 1.2 s after the third failure; fire three commands concurrently; then
      one more.
    Asserts: No command reaches the fake during the cooldown; of the three concurrent
      commands exactly one reaches the fake (it times out) and the two others fail with
      `circuit_open`; the command after that fails with `circuit_open` without reaching the
      fake. Each circuit_open comes within 400 ms (judged once against the same-run yardstick
      of a call).
    """
    cooldown = 1.0
    p, opened = await open_circuit(t, cooldown_s=cooldown)
    await expect_no_call(
        p, 3, max(0.0, opened + cooldown + 0.2 - time.monotonic()), "during the cooldown"
    )
    results = await asyncio.gather(*(timed_command(p, f"/trial-{n}", 10) for n in range(3)))
    trials = p.calls("ExecuteCommand")[3:]
    kinds = [o.error.kind if o.WhichOneof("result") == "error" else "answer" for o, _ in results]
    expect(
        len(trials) == 1,
        f"{len(trials)} of three concurrent commands after the cooldown reached the fake "
        f"(their outcomes: {kinds}); the half-open circuit lets exactly one trial through "
        f"(SV-12)\n{p.evidence()}",
    )
    blocked = [
        took for (_, took), kind in zip(results, kinds, strict=True) if kind == "circuit_open"
    ]
    expect(
        len(blocked) == 2,
        f"the outcomes of the three concurrent commands were {kinds}; expected one trial "
        "and two circuit_open (SV-12)",
    )
    outcome, took = await timed_command(p, "/after-trial", timeout_s=10)
    expect_error_kind(outcome, "circuit_open", p, "SV-12: a failed trial opens it again")
    await expect_no_call(p, 4, 0.3, "after the failed trial")
    # Timed once each, against the yardstick: a further command could find the circuit
    # half-open again and be its trial.
    for seen, what in (
        (max(blocked), "a command other than the trial"),
        (took, "a command after the failed trial"),
    ):
        verdict = await judge_time(
            FAST_FAIL_S,
            _not_again,
            Yardstick.CALL,
            f"the circuit_open failure of {what}",
            seen=[seen],
            attempts=1,
        )
        check(verdict.met, f"{verdict.evidence()}; they fail at once (SV-12)")


@case(
    "host/crash/circuit-503",
    requirements=["SE-4"],
    profile=Profile.HOOKS,
    timeout_s=45,
)
async def circuit_503(t: HostTarget) -> None:
    """
    Purpose: An HTTP client of a plugin whose circuit is open learns when to come back.
    Procedure: Open the circuit as in host/crash/circuit-opens (30 s cooldown), then send
      GET /echo through the host's HTTP front.
    Asserts: The host answers 503 with a Retry-After of whole seconds between 29 and 30
      (the time until the circuit half-opens, rounded up), and no ServeHTTP call reaches
      the fake.
    """
    t.require(Capability.CIRCUIT_BREAKER)
    http = t.http(timeout_s=10)
    p, opened = await open_circuit(t, cooldown_s=30)
    t.step("sending GET /echo while the circuit is open")
    response = await http.get(p.url("/echo"))
    elapsed = time.monotonic() - opened
    retry_after = response.headers.get("retry-after", "")
    expect(
        response.status_code == 503,
        f"the host answered {response.status_code} while the plugin's circuit was open; "
        f"expected 503 (SE-4)\n{p.evidence()}",
    )
    expect(
        retry_after.isdigit(),
        f"the 503 has Retry-After {retry_after!r}; expected whole seconds (SE-4)",
    )
    lowest = math.ceil(30 - elapsed - 1.0)  # the third failure was counted before `opened`
    expect(
        lowest <= int(retry_after) <= 30,
        f"Retry-After is {retry_after} about {elapsed:.1f}s after the circuit opened with "
        f"a 30 s cooldown; expected the seconds until it half-opens, rounded up (SE-4)",
    )
    served = p.calls("ServeHTTP")
    expect(not served, f"the request reached the fake while the circuit was open\n{p.evidence()}")


# Not a SPEC bound: how long the suite gives the host to clean up after a crash.
CLEAN_UP_GUARD_S = 5.0


@case(
    "host/crash/reaped",
    requirements=["SV-16", "SV-17", "SV-23"],
    profile=Profile.HOOKS,
    timeout_s=45,
)
async def reaped(t: HostTarget) -> None:
    """
    Purpose: A crashed plugin leaves nothing behind: no zombie, no process of its group,
      no socket directory.
    Procedure: Load a fake (restart limit 1) that starts a grandchild in its process group
      and exits right after answering its first command; fire one command and wait for the
      host's `crashed`.
    Asserts: Within 5 s of `crashed`, the plugin process is reaped (gone, not a zombie:
      SV-17), the grandchild is gone (the host SIGKILLed the group after the exit: SV-16),
      and the socket directory the host gave the process is removed (SV-23).
    """
    p = await t.load(
        {"hooks": ["ExecuteCommand"], "spawn_grandchild": True, "crash": {"after_hook_calls": 1}},
        restart_limit=1,
    )
    pid = p.pids()[0]
    grandchild = int((await p.wait_event("grandchild", timeout_s=5.0)).get("grandchild_pid", 0))
    socket_dir = socket_dir_of(p, pid)
    before = len((await p.status()).transitions)
    command_answer(await p.command("/last", timeout_s=20), p)
    await p.wait_state("crashed", after=before, timeout_s=10.0)
    left = await t.wait_gone([pid], timeout_s=CLEAN_UP_GUARD_S, members=[grandchild])
    after = f"{CLEAN_UP_GUARD_S:g} s after the crash"
    check(
        pid not in left,
        f"{after}, the plugin process {pid} is a zombie: the host did not reap it (SV-17)"
        f"\n{p.evidence()}",
        requirement="SV-17",
    )
    check(
        grandchild not in left,
        f"{after}, the grandchild {grandchild} in the plugin's process group still runs: the "
        f"host did not SIGKILL the group after the exit (SV-16)\n{p.evidence()}",
        requirement="SV-16",
    )
    if socket_dir:
        check(
            await gone_path(socket_dir, CLEAN_UP_GUARD_S),
            f"{after}, the socket directory {socket_dir} is still there (SV-23)",
            requirement="SV-23",
        )
    kill_left(left)


@case(
    "host/crash/circuit-bypass",
    requirements=["SV-13"],
    profile=Profile.HOOKS,
    timeout_s=45,
)
async def circuit_bypass(t: HostTarget) -> None:
    """
    Purpose: An open circuit stops hook calls, not the host's own lifecycle calls: a plugin
      whose circuit is open is still told it is being stopped.
    Procedure: Open the circuit of a fake whose ExecuteCommand never answers (three commands
      time out against a 500 ms deadline, threshold 3, 30 s cooldown); check that a fourth
      fails with circuit_open; disable the plugin.
    Asserts: The fake receives OnDeactivate and then Shutdown, and the plugin is stopped.
    """
    p, _ = await open_circuit(t, cooldown_s=30)
    outcome, _ = await timed_command(p, "/blocked", timeout_s=10)
    expect_error_kind(outcome, "circuit_open", p, "SV-11")
    status = await p.disable()
    expect(status.state == "stopped", f"after DisablePlugin:\n{describe_status(status)}")
    expect(
        p.calls("OnDeactivate"),
        "the host did not send OnDeactivate to a plugin whose circuit was open; OnDeactivate "
        f"and Shutdown bypass the circuit (SV-13)\n{p.evidence()}",
    )
    await p.wait_event(
        "shutdown_requested",
        timeout_s=5.0,
        why="Shutdown bypasses the circuit too (SV-13)",
    )
