"""The handshake's timing: written within the host's start timeout."""

from __future__ import annotations

import asyncio
import time

from pluginconf.runner import Profile, case, check
from pluginconf.runner.plugin.target import PluginTarget
from pluginconf.runner.timing import Yardstick

from .._helpers import judge_bound

# Beyond the start timeout, how much longer the suite waits for a late handshake, so that
# a late one is measured rather than cut short: a deadlock guard, not a verdict.
_LATE_GUARD_S = 10.0


@case(
    "plugin/handshake/within-start-timeout",
    requirements=["HS-17"],
    profile=Profile.TRANSPORT,
    timeout_s=300.0,
)
async def within_start_timeout(t: PluginTarget) -> None:
    """
    Purpose: The plugin is ready before its host gives up on it.
    Procedure: Start the plugin as a host does and time, from the start, the arrival of its
      handshake line (up to the start timeout, --start-timeout (default 60 s), plus 10 s). A
      time over the start timeout is set beside a minimal gRPC process's start timed just
      then, and measured again on a new process before it counts (up to three times).
    Asserts: The handshake line arrives within the host's start timeout.
    """
    bound = t.options.start_timeout_s
    lines: list[str] = []

    async def start_once() -> float | None:
        fresh = await t.spawn(start_timeout_s=bound + _LATE_GUARD_S)
        stdout = fresh.launched.process.stdout
        assert stdout is not None
        try:
            async with asyncio.timeout(bound + _LATE_GUARD_S):
                while b"|" not in (line := await stdout.readline()):
                    if not line:
                        lines.append("stdout ended without a handshake line")
                        return None
        except TimeoutError:
            return None
        took = time.monotonic() - fresh.launched.spawned_at
        await fresh.close()
        return took

    verdict = await judge_bound(bound, start_once, Yardstick.START, "the handshake after start")
    check(verdict.met, verdict.evidence() + "".join(f"; {line}" for line in lines[:1]))
