"""Restarts with backoff, and giving up after the restart limit."""

from __future__ import annotations

import math

from pluginconf.control import control_pb2
from pluginconf.fake.scenario.spec import ScenarioSpec
from pluginconf.runner import Profile, case, check, expect
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.fake_plugin import describe_status
from pluginconf.runner.host.target import HostTarget
from pluginconf.runner.timing import ATTEMPTS, Yardstick, judge_time

from ._helpers import index_of

# SV-8: what a restart may come after the backoff's upper bound, for the host's own steps
# from `crashed` to `starting`.
BACKOFF_ALLOWANCE_S = 0.1


# SV-8: what five restarts with a 100 ms base must take beyond those with a 1 ms base.
BACKOFF_SPREAD_S = 0.3


ALWAYS_FAILS_TO_START: ScenarioSpec = {"crash": {"on": "OnActivate"}}


def count_states(status: control_pb2.PluginStatus, state: str) -> int:
    return sum(1 for tr in status.transitions if tr.new_state == state)


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


async def _backs_off(
    t: HostTarget, base: float, ceiling_s: float, delays: list[float], evidence: str
) -> tuple[bool, str]:
    """Whether the delays exceed, by BACKOFF_SPREAD_S, those of the same host restarting with
    a 1 ms backoff, measured in this run; up to ATTEMPTS pairs before it says no. A loaded
    machine slows both alike, so the host's own steps are not taken for a backoff."""
    rows: list[str] = []
    for attempt in range(ATTEMPTS):
        if attempt:
            delays, _, evidence = _backoff_excess(await _back_off(t, base, ceiling_s), 0, 0)
        quick, _, _ = _backoff_excess(await _back_off(t, 0.001, 0.001), 0, 0)
        spread = sum(delays[:5]) - sum(quick[:5])
        rows.append(
            f"  attempt {attempt + 1}: the five delays add up to {sum(delays[:5]):.3f}s; with "
            f"a 1 ms backoff, {sum(quick[:5]):.3f}s (a difference of {spread:.3f}s)"
        )
        if spread >= BACKOFF_SPREAD_S:
            return True, ""
    return False, (
        f"the restarts came no later than those of a 1 ms backoff, by less than "
        f"{BACKOFF_SPREAD_S:g}s over five failures: the host does not back off (SV-8)\n"
        + "\n".join(rows)
        + f"\nthe last attempt with a {base:g}s base:\n{evidence}"
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
      yardstick of a signal. For the lower side, the same fake is loaded with a 1 ms backoff:
      the sum of its five delays is what the host's own steps take in this run.
    Asserts: The host restarts a plugin whose starts fail (SV-10); each delay is at most
      min(1 s, 100 ms x 2^(n-1)) plus 100 ms for the host's own steps; and the five delays
      add up to at least 300 ms more than the 1 ms backoff's do (a host without backoff
      restarts at once; with the jitter of SV-8 the five draws, 1.25 s on average, add up to
      less than 300 ms about once in 300 runs, and the pair is measured three times before
      it fails).
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
    check(*await _backs_off(t, base, ceiling_s, delays, evidence), requirement="SV-8")

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
