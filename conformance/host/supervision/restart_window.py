"""Restarts with time active between failures (SV-9): a failure that has left the restart
window no longer counts towards the limit."""

from __future__ import annotations

import asyncio

from pluginconf.runner import Profile, case, expect
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.fake_plugin import describe_status
from pluginconf.runner.host.target import HostTarget

WINDOW_S = 1.0
# How long after the first failure the second comes: past the window, with room for the
# host's own clock to agree.
APART_S = 1.5


@case("host/crash/restart-window-slides", requirements=["SV-9"], profile=Profile.HOOKS)
async def restart_window_slides(t: HostTarget) -> None:
    """
    Purpose: Failures further apart than the restart window do not add up to the limit.
    Procedure: Load a fake with restart limit 2 within a 1 s window (backoff up to 100 ms);
      SIGKILL its process, wait until it is active again, let 1.5 s pass since the first
      crash, SIGKILL the new process.
    Asserts: The host restarts it again (a third process becomes active) instead of putting
      it in `failed`: the first failure has left the window.
    """
    t.require(Capability.RESTARTS)
    p = await t.load(
        {}, restart_limit=2, restart_window_s=WINDOW_S, backoff_base_s=0.05, backoff_max_s=0.1
    )
    loop = asyncio.get_running_loop()
    p.kill()
    first = loop.time()
    await p.wait_started(2, timeout_s=15.0)
    crashed = await p.wait_state("crashed", timeout_s=15.0)
    await p.wait_status(
        lambda s: s.state == "active" and len(s.transitions) > len(crashed.transitions),
        "active again",
    )
    # The window is time itself: only its passing can take the first failure out of it.
    await asyncio.sleep(max(0.0, first + APART_S - loop.time()))
    p.kill()
    status = await p.wait_status(
        lambda s: (
            sum(tr.new_state == "crashed" for tr in s.transitions) == 2
            and s.state in ("active", "failed")
        ),
        "active again after the second crash, or failed",
    )
    expect(
        status.state == "active",
        f"two crashes {APART_S:g}s apart, with a restart limit of 2 within {WINDOW_S:g}s: the "
        f"host reports {status.state}; the first crash had left the window, so it must "
        f"restart the plugin (SV-9)\n{describe_status(status)}",
    )
