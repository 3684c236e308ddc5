"""Plugin states as the host reports them (SV-1, SV-2): only the SPEC's transitions, each an
event with plugin id, old and new state, time and reason, sent on WatchPlugin in order."""

from __future__ import annotations

import asyncio
import contextlib
import time

from pluginconf.control import control_pb2
from pluginconf.host.supervision.states import TRANSITIONS
from pluginconf.runner import Profile, case, check, expect
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.fake_plugin import FakePlugin, describe_status
from pluginconf.runner.host.target import HostTarget

# SV-1's table, with "loaded" (never enabled) as well as "" as the state before the first.
ALLOWED = TRANSITIONS | {("loaded", "starting")}


async def _watch_all(p: FakePlugin, into: list[control_pb2.PluginStatus]) -> None:
    """Every status WatchPlugin sends, until cancelled."""
    watch = p.target.control().WatchPlugin(control_pb2.PluginRef(plugin_id=p.plugin_id))
    try:
        async for status in watch:
            into.append(status)
    finally:
        watch.cancel()


def _show(t: control_pb2.Transition) -> str:
    return f"{t.old_state or '(none)'} -> {t.new_state}"


@case("host/states/events", requirements=["SV-1", "SV-2"], profile=Profile.HOOKS, timeout_s=60)
async def state_events(t: HostTarget) -> None:
    """
    Purpose: Every state change follows the SPEC's table and is an event with plugin id, old
      and new state, time and reason, sent on WatchPlugin in order.
    Procedure: Load a fake (restart limit 2 in 60 s, backoff up to 100 ms) and watch it;
      SIGKILL its process, wait until it is active again, SIGKILL the new one (the host gives
      up: `failed`), enable it again, wait for `active`, disable it.
    Asserts: Each transition is one the table allows and starts where the previous one
      ended; times do not go back and lie within the case; each `crashed` and `failed` has a
      reason and an error kind, and the crashes by SIGKILL the exit status -9; every status
      on the watch stream names the plugin, and after the first its states are the new
      states of the transitions, one status per change, in order.
    """
    t.require(Capability.RESTARTS)
    began = time.time()
    p = await t.load(restart_limit=2, restart_window_s=60, backoff_base_s=0.05, backoff_max_s=0.1)
    seen: list[control_pb2.PluginStatus] = []
    watcher = asyncio.ensure_future(_watch_all(p, seen))
    try:
        p.kill()
        await p.wait_started(2, timeout_s=15.0)
        now = len((await p.status()).transitions)
        await p.wait_status(
            lambda s: s.state == "active" and len(s.transitions) >= now, "active again"
        )
        p.kill()
        await p.wait_state("failed", after=now, timeout_s=15.0)
        await p.enable()
        await p.wait_active()
        await p.disable()
        final = await p.status()
        await p.watch_until(lambda s: len(seen) > 0 and seen[-1].state == "stopped", 5.0)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    ended = time.time()
    shown = describe_status(final)
    previous = ""
    for n, tr in enumerate(final.transitions):
        check(
            (tr.old_state, tr.new_state) in ALLOWED,
            f"transition {n} ({_show(tr)}) is not one SV-1's table allows\n{shown}",
            requirement="SV-1",
        )
        check(
            n == 0 or tr.old_state == previous,
            f"transition {n} ({_show(tr)}) starts from {tr.old_state!r}, but the one before "
            f"ended in {previous!r} (SV-1)\n{shown}",
            requirement="SV-1",
        )
        previous = tr.new_state
    times = [tr.wall_time for tr in final.transitions]
    check(
        times == sorted(times) and all(began - 5 <= w <= ended + 5 for w in times),
        f"the transitions' times {times} go back, or lie outside the case ({began:.3f} to "
        f"{ended:.3f}) (SV-2)\n{shown}",
        requirement="SV-2",
    )
    for tr in final.transitions:
        if tr.new_state not in ("crashed", "failed"):
            continue
        check(
            bool(tr.reason) and bool(tr.error_kind),
            f"the transition {_show(tr)} has reason {tr.reason!r} and error kind "
            f"{tr.error_kind!r}; SV-2 requires both for crashed and failed\n{shown}",
            requirement="SV-2",
        )
    killed = [tr for tr in final.transitions if tr.new_state == "crashed"]
    check(
        len(killed) == 2 and all(tr.has_exit_status and tr.exit_status == -9 for tr in killed),
        f"the two crashes by SIGKILL were reported as {[_show(k) for k in killed]} with exit "
        f"statuses {[k.exit_status if k.has_exit_status else None for k in killed]}; "
        f"expected two, each with exit status -9 (SV-2)\n{shown}",
        requirement="SV-2",
    )
    expect(seen, "WatchPlugin sent no status (SV-2)", requirement="SV-2")
    check(
        all(s.plugin_id == p.plugin_id for s in seen),
        f"WatchPlugin sent statuses for {sorted({s.plugin_id for s in seen})}, not only for "
        f"{p.plugin_id!r} (SV-2)",
        requirement="SV-2",
    )
    start = len(seen[0].transitions)
    wanted = [tr.new_state for tr in final.transitions[start:]]
    got = [s.state for s in seen[1:]]
    check(
        got[: len(wanted)] == wanted,
        f"after its first status, WatchPlugin sent the states {got}; the changes were "
        f"{wanted}: one status per change, in order, none skipped (SV-2)\n{shown}",
        requirement="SV-2",
    )
