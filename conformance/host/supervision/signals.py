"""The host's own end (SV-19): on SIGTERM or SIGINT it stops every plugin by the stop
sequence, all at once, before it exits.

The case runs a host of its own (a second adapter process), signals its process group as the
suite does at the end of a run (docs/host-adapter.md), and reads what the fakes saw.
"""

from __future__ import annotations

import asyncio
import os
import signal

from pluginconf.fake.scenario.spec import ScenarioSpec
from pluginconf.runner import Profile, case_each, check, expect
from pluginconf.runner.host.target import HostTarget

# Each wait of the stop sequence: a plugin that ignores Shutdown and SIGTERM takes two of
# them, so plugins stopped one after the other get their Shutdowns at least that far apart.
GRACE_S = 1.5
ADAPTER_EXIT_S = 20.0  # the suite's own wait for an adapter after SIGTERM


@case_each(
    "host/shutdown/host-signal/{}",
    ["sigterm", "sigint"],
    requirements=["SV-19"],
    profile=Profile.HOOKS,
    timeout_s=60,
)
async def host_signal(t: HostTarget, name: str) -> None:
    """
    Purpose: {value} to the host stops every plugin by the stop sequence, concurrently,
      before the host exits.
    Procedure: Start a host of the case's own; load (sigterm) two fakes that ignore Shutdown
      and SIGTERM (stop grace 1.5 s, so each takes 3 s to stop), or (sigint) one well-behaved
      fake; send {value} to the host's process group and wait up to 20 s for it to exit.
    Asserts: The host exits; every fake received Shutdown (SV-14's first step), the two
      within 3 s of each other (one stop at a time would space them 3 s apart); no fake saw
      its host exit while it still ran.
    """
    host = await t.with_scrubbed_decoys()
    # SIGTERM: two plugins that take 3 s each to stop, for concurrency; SIGINT: one that
    # stops at Shutdown, for the sequence alone.
    scenario: ScenarioSpec
    scenario, count = ({"ignore_shutdown": True}, 2) if name == "sigterm" else ({}, 1)
    plugins = [
        await host.load(scenario, name="stubborn" if count == 2 else "plain", stop_grace_s=GRACE_S)
        for _ in range(count)
    ]
    process = host.adapter.process
    assert process is not None
    host.expect_exit = True
    t.step(f"sending {name} to the host")
    os.killpg(process.pid, signal.Signals[name.upper()])
    try:
        await asyncio.wait_for(process.wait(), ADAPTER_EXIT_S)
    except TimeoutError:
        expect(
            False,
            f"the host had not exited {ADAPTER_EXIT_S:g}s after {name} (SV-19)\n"
            + host.adapter.evidence(),
        )
    evidence = "\n".join(p.evidence() for p in plugins)
    asked = [p.events("shutdown_requested") for p in plugins]
    never = [p.plugin_id for p, a in zip(plugins, asked, strict=True) if not a]
    check(
        not never,
        f"after {name}, the plugins {never} "
        f"never received Shutdown: the host must stop each by the stop sequence of SV-14 "
        f"before it exits (SV-19)\n{evidence}",
    )
    gone = [p.plugin_id for p in plugins if p.events("host_gone")]
    check(
        not gone,
        f"the plugins {gone} saw their host exit while they still ran: the host exited "
        f"before it had stopped them (SV-19)\n{evidence}",
    )
    times = [a[0].monotonic for a in asked if a]
    if len(times) == len(plugins):
        spread = max(times) - min(times)
        check(
            spread < 2 * GRACE_S,
            f"the plugins received Shutdown over {spread:.2f}s, while stopping one that "
            f"ignores it takes {2 * GRACE_S:g}s: they were stopped one after the other, not "
            f"concurrently (SV-19)\n{evidence}",
        )
