"""Stopping: the stop sequence as the plugin sees it, escalation, and what is left afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import time

import grpc
import psutil

from pluginconf.runner import Profile, case, check, fail
from pluginconf.runner.host.fake_plugin import FakePlugin, describe_status, is_zombie
from pluginconf.runner.host.observer import Observed
from pluginconf.runner.host.target import HostTarget
from pluginconf.runner.timing import Yardstick, judge_time

from .._helpers import gone_path, kill_left, socket_dir_of

# Not a SPEC bound: how long the suite gives the host to clean up after a stop.
CLEAN_UP_GUARD_S = 5.0

# What the order of the stop sequence is checked on: these events of the fake, by seq.
STOP_EVENTS = ("call", "shutdown_requested", "signal", "stopping", "exiting")


def stop_events(p: FakePlugin, pid: int) -> list[Observed]:
    return [
        e
        for e in p.events(pid=pid)
        if e.event in STOP_EVENTS and (e.event != "call" or e.get("hook") == "OnDeactivate")
    ]


def names(events: list[Observed]) -> list[str]:
    shown = []
    for e in events:
        if e.event == "call":
            shown.append(str(e.get("hook")))
        elif e.event == "signal":
            shown.append(f"signal {e.get('signal')}")
        else:
            shown.append(e.event)
    return shown


async def disable(p: FakePlugin) -> tuple[int, float]:
    """Disable the active plugin: its pid and how long DisablePlugin took."""
    pid = p.pids()[-1]
    start = time.monotonic()
    await p.disable(timeout_s=30)
    return pid, time.monotonic() - start


@case(
    "host/shutdown/sequence",
    requirements=["SV-14", "SV-15", "SV-21", "LC-9"],
    profile=Profile.HOOKS,
    timeout_s=45,
)
async def sequence(t: HostTarget) -> None:
    """
    Purpose: A plugin that is stopped is told so in the agreed order and can finish on its
      own, without being signalled.
    Procedure: Load a well-behaved fake, wait until it is active, and disable it.
    Asserts: The fake receives OnDeactivate first (SV-21), once (LC-9), then Shutdown, and
      exits by itself (its last event says it exits because of the Shutdown), no signal
      reaching it (SV-14); the plugin ends `stopped` without a `crashed` transition (SV-15),
      and its process is gone and reaped (SV-14, SV-17).
    """
    p = await t.load({})
    before = len((await p.status()).transitions)
    pid, _ = await disable(p)
    status = await p.status()
    seen = names(stop_events(p, pid))
    check(
        seen[:1] == ["OnDeactivate"],
        f"while being stopped the fake saw {seen}; expected OnDeactivate first (SV-21)"
        f"\n{p.evidence()}",
        requirement="SV-21",
    )
    check(
        seen.count("OnDeactivate") <= 1,
        f"OnDeactivate was called {seen.count('OnDeactivate')} times; at most once per "
        f"process (LC-9)\n{p.evidence()}",
        requirement="LC-9",
    )
    deactivated = seen.index("OnDeactivate") + 1 if "OnDeactivate" in seen else 0
    check(
        "shutdown_requested" in seen[deactivated:],
        f"while being stopped the fake saw {seen}; expected Shutdown (after OnDeactivate) "
        f"(SV-14)\n{p.evidence()}",
        requirement="SV-14",
    )
    signals = [s for s in seen if s.startswith("signal")]
    check(
        not signals,
        f"the fake, which stops on Shutdown, was sent {signals}; the host must wait for the "
        f"exit before signalling (SV-14)\n{p.evidence()}",
        requirement="SV-14",
    )
    exiting = await p.wait_event("exiting", where=lambda e: e.pid == pid, timeout_s=5.0)
    check(
        exiting.get("reason") == "shutdown",
        f"the fake exited for {exiting.get('reason')!r}, expected 'shutdown' (SV-14)"
        f"\n{p.evidence()}",
        requirement="SV-14",
    )
    text = describe_status(status)
    check(
        status.state == "stopped",
        f"after DisablePlugin answered the plugin is {status.state!r}, not stopped (SV-14)\n{text}",
        requirement="SV-14",
    )
    check(
        not any(tr.new_state == "crashed" for tr in status.transitions[before:]),
        "the host recorded a crash while stopping the plugin; an exit during the stop "
        f"sequence is not a crash (SV-15)\n{text}",
        requirement="SV-15",
    )
    left = await t.wait_gone([pid], timeout_s=5.0)
    zombie = bool(left) and is_zombie(pid)
    check(
        not left,
        f"the plugin process {pid} is "
        + ("a zombie: the host did not reap it (SV-14)" if zombie else "still running (SV-14)")
        + " 5 s after DisablePlugin answered",
        requirement="SV-14",
    )


@case(
    "host/shutdown/no-deactivate-when-not-listed",
    requirements=["LC-9", "SV-14"],
    profile=Profile.HOOKS,
    timeout_s=45,
)
async def no_deactivate_when_not_listed(t: HostTarget) -> None:
    """
    Purpose: A plugin that does not implement OnDeactivate is stopped without it.
    Procedure: Load a fake implementing OnConfigurationChange, OnActivate and ExecuteCommand
      only; disable it.
    Asserts: The fake receives no OnDeactivate call (LC-9) and still receives Shutdown
      (SV-14).
    """
    p = await t.load({"hooks": ["OnConfigurationChange", "OnActivate", "ExecuteCommand"]})
    pid, _ = await disable(p)
    seen = names(stop_events(p, pid))
    check(
        "OnDeactivate" not in seen,
        f"the host called OnDeactivate, which the plugin does not list in Implemented "
        f"(LC-9, HK-5); the fake saw {seen}\n{p.evidence()}",
        requirement="LC-9",
    )
    check(
        "shutdown_requested" in seen,
        f"the stop sequence went on without Shutdown (SV-14): the fake saw {seen}\n{p.evidence()}",
        requirement="SV-14",
    )


# The waits of the stop sequence, shortened from the SPEC's 2 s (SV-14, SV-22).
STOP_GRACE_S = 0.5
# Shutdown's deadline, the exit wait and the wait after SIGTERM, then the SIGKILL.
STOP_BOUND_S = 3 * STOP_GRACE_S
# Not a SPEC bound: how long the suite waits for the processes at all.
STOP_GUARD_S = 15.0


async def _stop_stubborn(t: HostTarget) -> tuple[FakePlugin, int, int, float | None, int]:
    """Load a fake that ignores Shutdown and SIGTERM and has a grandchild in its process
    group, and disable it: the plugin, its pid, the grandchild's, how long until the plugin
    process was gone (None: not within the guard), and its transitions before."""
    p = await t.load({"ignore_shutdown": True, "spawn_grandchild": True}, stop_grace_s=STOP_GRACE_S)
    grandchild = int((await p.wait_event("grandchild", timeout_s=5.0)).get("grandchild_pid", 0))
    before = len((await p.status()).transitions)
    pid = p.pids()[-1]
    start = time.monotonic()
    # DisablePlugin answers once the plugin is stopped, which a host that never sends
    # SIGKILL never reaches: the call runs aside while the process is watched.
    disabling = asyncio.create_task(p.disable(timeout_s=30))
    try:
        left = await t.wait_gone([pid], STOP_GUARD_S)
        gone_at = time.monotonic()
        # Timed from Shutdown, when the fake saw it: OnDeactivate's time is not the bound's.
        asked = next(iter(p.events("shutdown_requested", pid)), None)
        took = None if left else gone_at - (asked.monotonic if asked is not None else start)
        t.step("waiting for DisablePlugin to answer")
        await asyncio.wait({disabling}, timeout=STOP_GUARD_S)
    finally:
        if not disabling.done():
            disabling.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await disabling
    return p, pid, grandchild, took, before


@case(
    "host/shutdown/ignores-shutdown-killed",
    requirements=["SV-14", "SV-15", "SV-22"],
    profile=Profile.HOOKS,
    timeout_s=90,
)
async def ignores_shutdown_killed(t: HostTarget) -> None:
    """
    Purpose: A plugin that does not stop when asked is stopped anyway, and takes the
      processes it started with it.
    Procedure: Load a fake that ignores Shutdown and SIGTERM and has started a grandchild
      in its process group, with each wait of the stop sequence set to 0.5 s; disable it. A
      late stop is timed again on a new fake, against the same-run yardstick of a stop.
    Asserts: The fake receives Shutdown (SV-14), then SIGTERM (SV-22); the plugin process
      is gone within 3 x 0.5 s of the fake receiving Shutdown (SV-14: it was sent SIGKILL;
      SV-22: the waits are bounded) and the grandchild with it (SV-22: the SIGKILL goes to
      the group); DisablePlugin answers and the plugin ends `stopped` without a `crashed`
      transition (SV-15).
    """
    p, pid, grandchild, took, before = await _stop_stubborn(t)
    seen = names(stop_events(p, pid))
    what = f"a fake that ignores Shutdown and SIGTERM (each wait {STOP_GRACE_S:g}s)"
    check(
        "shutdown_requested" in seen,
        f"{what} saw {seen}; expected Shutdown first (SV-14)\n{p.evidence()}",
        requirement="SV-14",
    )
    shutdown_at = seen.index("shutdown_requested") if "shutdown_requested" in seen else 0
    check(
        "signal SIGTERM" in seen[shutdown_at:],
        f"{what} saw {seen}; expected Shutdown, then SIGTERM (SV-22)\n{p.evidence()}",
        requirement="SV-22",
    )
    if took is None:
        fail(
            f"{STOP_GUARD_S:g}s after DisablePlugin was called on {what}, the plugin process "
            + (
                f"{pid} is a zombie (SV-14: it must be reaped)"
                if is_zombie(pid)
                else f"{pid} still runs: it was never sent SIGKILL (SV-14)"
            )
            + f"\n{p.evidence()}",
            requirement="SV-14",
        )
    left = await t.wait_gone([], 1.0, members=[grandchild])
    check(
        not left,
        f"after the plugin process was killed, the grandchild {grandchild} still runs: the "
        f"host did not SIGKILL the plugin's process group (SV-22)\n{p.evidence()}",
        requirement="SV-22",
    )
    kill_left(left)
    status = await p.status()
    check(
        status.state == "stopped"
        and not any(tr.new_state == "crashed" for tr in status.transitions[before:]),
        f"after the stop sequence the plugin is {status.state!r}; it must end `stopped`, "
        f"without a crash (SV-15)\n{describe_status(status)}",
        requirement="SV-15",
    )

    async def again() -> float | None:
        return (await _stop_stubborn(t))[3]

    verdict = await judge_time(
        STOP_BOUND_S,
        again,
        Yardstick.STOP,
        f"the end of {what} after it received Shutdown",
        seen=[took],
    )
    check(verdict.met, f"{verdict.evidence()} (SV-22: each wait bounded)", requirement="SV-22")


@case(
    "host/shutdown/no-leaks",
    requirements=["SV-17", "SV-18"],
    profile=Profile.HOOKS,
    timeout_s=45,
)
async def no_leaks(t: HostTarget) -> None:
    """
    Purpose: Stopping a plugin leaves nothing behind on the machine.
    Procedure: Load a well-behaved fake, note the socket directory the host gave it
      (PLUGIN_UNIX_SOCKET_DIR), and disable it.
    Asserts: Within 5 s of DisablePlugin answering, the socket directory is removed (SV-18),
      the plugin process is gone and not a zombie, and (when the host reports its pid) the
      host has no zombie children (SV-17).
    """
    p = await t.load({})
    pid = p.pids()[-1]
    socket_dir = socket_dir_of(p, pid)
    await p.disable(timeout_s=30)
    after = f"{CLEAN_UP_GUARD_S:g} s after DisablePlugin answered"
    if socket_dir:
        check(
            await gone_path(socket_dir, CLEAN_UP_GUARD_S),
            f"{after}, the socket directory {socket_dir} is still there (SV-18)",
            requirement="SV-18",
        )
    if await t.wait_gone([pid], timeout_s=CLEAN_UP_GUARD_S):
        check(
            False,
            f"{after}, the plugin process {pid} is a zombie: the host did not reap it (SV-17)"
            if is_zombie(pid)
            else f"{after}, the plugin process {pid} still runs (SV-17)",
            requirement="SV-17",
        )
    if t.host_pid:
        zombies = await host_zombies(t.host_pid, CLEAN_UP_GUARD_S)
        check(
            not zombies,
            f"{after}, the host (pid {t.host_pid}) has zombie children {zombies} (SV-17)",
            requirement="SV-17",
        )


async def host_zombies(host_pid: int, timeout_s: float) -> list[int]:
    """The host's zombie children, waiting (polling) up to ``timeout_s`` for none."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            children = psutil.Process(host_pid).children()
        except psutil.NoSuchProcess:
            return []
        zombies = []
        for child in children:
            try:
                if child.status() == psutil.STATUS_ZOMBIE:
                    zombies.append(child.pid)
            except psutil.NoSuchProcess:
                continue
        if not zombies or time.monotonic() >= deadline:
            return zombies
        await asyncio.sleep(0.05)
