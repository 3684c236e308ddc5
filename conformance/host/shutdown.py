"""Stopping: the stop sequence as the plugin sees it, escalation, and what is left afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import time

import grpc
import psutil

from pluginconf.runner import Profile, case, expect
from pluginconf.runner.host_target import FakePlugin, HostTarget, describe_status, is_zombie
from pluginconf.runner.observer import Observed

from ._helpers import gone_path, socket_dir_of

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


def expect_stopped(status_text: str, status_state: str, crashed: bool) -> None:
    expect(
        status_state == "stopped",
        f"after DisablePlugin answered the plugin is {status_state!r}, not stopped\n{status_text}",
    )
    expect(
        not crashed,
        "the host recorded a crash while stopping the plugin; an exit during the stop "
        f"sequence is not a crash (SV-15)\n{status_text}",
    )


@case(
    "host/shutdown/sequence",
    requirements=["SV-14", "LC-9", "SV-15"],
    profile=Profile.HOOKS,
    timeout_s=45,
)
async def sequence(t: HostTarget) -> None:
    """
    Purpose: A plugin that is stopped is told so in the agreed order and can finish on its
      own, without being signalled.
    Procedure: Load a well-behaved fake, wait until it is active, and disable it.
    Asserts: The fake receives OnDeactivate once, then Shutdown, and exits by itself (its
      last event says it exits because of the Shutdown); no signal reaches it; the plugin
      ends `stopped` without a `crashed` transition, and its process is gone and reaped.
    """
    p = await t.load({})
    before = len((await p.status()).transitions)
    pid, _ = await disable(p)
    status = await p.status()
    events = stop_events(p, pid)
    seen = names(events)
    expect(
        seen[:2] == ["OnDeactivate", "shutdown_requested"],
        f"while being stopped the fake saw {seen}; expected OnDeactivate, then Shutdown "
        f"(SV-14, LC-9)\n{p.evidence()}",
    )
    expect(
        seen.count("OnDeactivate") == 1,
        f"OnDeactivate was called {seen.count('OnDeactivate')} times; at most once per "
        f"process (LC-9)\n{p.evidence()}",
    )
    signals = [s for s in seen if s.startswith("signal")]
    expect(
        not signals,
        f"the fake, which stops on Shutdown, was sent {signals}; the host must wait for the "
        f"exit before signalling (SV-14)\n{p.evidence()}",
    )
    exiting = await p.wait_event("exiting", where=lambda e: e.pid == pid, timeout_s=5.0)
    expect(
        exiting.get("reason") == "shutdown",
        f"the fake exited for {exiting.get('reason')!r}, expected 'shutdown'\n{p.evidence()}",
    )
    text = describe_status(status)
    crashed = any(tr.new_state == "crashed" for tr in status.transitions[before:])
    expect_stopped(text, status.state, crashed)
    left = await t.wait_gone([pid], timeout_s=5.0)
    expect(
        not left,
        f"the plugin process {pid} is "
        + ("a zombie (SV-17)" if is_zombie(pid) else "still running")
        + " 5 s after DisablePlugin answered",
    )


@case(
    "host/shutdown/no-deactivate-when-not-listed",
    requirements=["LC-9"],
    profile=Profile.HOOKS,
    timeout_s=45,
)
async def no_deactivate_when_not_listed(t: HostTarget) -> None:
    """
    Purpose: A plugin that does not implement OnDeactivate is stopped without it.
    Procedure: Load a fake implementing OnConfigurationChange, OnActivate and ExecuteCommand
      only; disable it.
    Asserts: The fake receives no OnDeactivate call and still receives Shutdown.
    """
    p = await t.load({"hooks": ["OnConfigurationChange", "OnActivate", "ExecuteCommand"]})
    pid, _ = await disable(p)
    seen = names(stop_events(p, pid))
    expect(
        "OnDeactivate" not in seen,
        f"the host called OnDeactivate, which the plugin does not list in Implemented "
        f"(LC-9, HK-5); the fake saw {seen}\n{p.evidence()}",
    )
    expect(
        "shutdown_requested" in seen,
        f"the stop sequence went on without Shutdown (SV-14): the fake saw {seen}\n{p.evidence()}",
    )


@case(
    "host/shutdown/ignores-shutdown-killed",
    requirements=["SV-14", "SV-16"],
    profile=Profile.HOOKS,
    timeout_s=45,
)
async def ignores_shutdown_killed(t: HostTarget) -> None:
    """
    Purpose: A plugin that does not stop when asked is stopped anyway, and takes the
      processes it started with it.
    Procedure: Load a fake that ignores Shutdown and SIGTERM and has started a grandchild
      in its process group, with each wait of the stop sequence set to 0.5 s; disable it.
    Asserts: The fake receives Shutdown, then SIGTERM; the plugin process and the
      grandchild are gone, and DisablePlugin has answered, within 3 x 0.5 s plus 1.5 s of
      DisablePlugin being called; the plugin ends `stopped` without a `crashed` transition.
    """
    grace = 0.5
    p = await t.load({"ignore_shutdown": True, "spawn_grandchild": True}, stop_grace_s=grace)
    grandchild = int((await p.wait_event("grandchild", timeout_s=5.0)).get("grandchild_pid", 0))
    before = len((await p.status()).transitions)
    pid = p.pids()[-1]
    bound = 3 * grace + 1.5
    start = time.monotonic()
    # DisablePlugin answers once the plugin is stopped, which a host that never sends
    # SIGKILL never reaches: the call runs aside while the processes are watched.
    disabling = asyncio.create_task(p.disable(timeout_s=30))
    try:
        left = await t.wait_gone([pid, grandchild], bound)
        t.step("waiting for DisablePlugin to answer")
        done, _ = await asyncio.wait(
            {disabling}, timeout=max(0.0, start + bound - time.monotonic())
        )
    finally:
        if not disabling.done():
            disabling.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await disabling
    seen = names(stop_events(p, pid))
    shutdown_at = seen.index("shutdown_requested") if "shutdown_requested" in seen else -1
    problems = []
    if shutdown_at < 0 or "signal SIGTERM" not in seen[shutdown_at:]:
        problems.append(f"the fake saw {seen}; expected Shutdown, then SIGTERM (SV-14)")
    if pid in left:
        problems.append(
            f"the plugin process {pid} is a zombie (SV-17)"
            if is_zombie(pid)
            else f"the plugin process {pid} still runs: it was never sent SIGKILL (SV-14)"
        )
    if grandchild in left and not is_zombie(grandchild):
        problems.append(
            f"the grandchild {grandchild} still runs: the host did not SIGKILL the plugin's "
            "process group (SV-14, SV-16)"
        )
    if not done:
        problems.append("DisablePlugin had not answered")
    expect(
        not problems,
        f"{bound:g}s after DisablePlugin was called on a fake that ignores Shutdown and "
        f"SIGTERM (each wait {grace:g}s): " + "; ".join(problems) + f"\n{p.evidence()}",
    )
    disabling.result()
    status = await p.status()
    crashed = any(tr.new_state == "crashed" for tr in status.transitions[before:])
    expect_stopped(describe_status(status), status.state, crashed)


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
    Asserts: Within 2 s of DisablePlugin answering, the socket directory is removed, the
      plugin process is gone and not a zombie, and (when the host reports its pid) the
      host has no zombie children.
    """
    p = await t.load({})
    pid = p.pids()[-1]
    socket_dir = socket_dir_of(p, pid)
    await p.disable(timeout_s=30)
    problems = []
    if socket_dir and not await gone_path(socket_dir, 2.0):
        problems.append(f"the socket directory {socket_dir} is still there (SV-18)")
    if await t.wait_gone([pid], timeout_s=2.0):
        problems.append(
            f"the plugin process {pid} is a zombie: the host did not reap it (SV-17)"
            if is_zombie(pid)
            else f"the plugin process {pid} still runs after DisablePlugin answered"
        )
    if t.host_pid:
        zombies = await host_zombies(t.host_pid, 2.0)
        if zombies:
            problems.append(f"the host (pid {t.host_pid}) has zombie children {zombies} (SV-17)")
    expect(not problems, "; ".join(problems) + f"\n{p.evidence()}")


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
