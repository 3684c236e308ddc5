"""The circuit breaker: opening, half-opening, what HTTP sees, who may bypass it; and what a
crashed plugin leaves behind (reaped).
"""

from __future__ import annotations

import asyncio
import math
import time

from pluginconf.control import control_pb2
from pluginconf.runner import Profile, case, check, expect
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.fake_plugin import FakePlugin, describe_status
from pluginconf.runner.host.target import HostTarget
from pluginconf.runner.timing import Yardstick, judge_time

from .._helpers import (
    command_answer,
    command_error,
    expect_error_kind,
    gone_path,
    kill_left,
    socket_dir_of,
)
from ._helpers import HANG

# The hook deadline while a circuit is tested, and how soon a call must fail when the circuit
# is open: well under the deadline, so that a call that waited for one is told apart.
HOOK_DEADLINE_S = 0.5
FAST_FAIL_S = 0.4


async def timed_command(
    p: FakePlugin, command: str, timeout_s: float = 20.0
) -> tuple[control_pb2.CommandOutcome, float]:
    """ExecuteCommand through the host; the outcome and how long it took."""
    start = time.monotonic()
    outcome = await p.command(command, timeout_s=timeout_s)
    return outcome, time.monotonic() - start


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
