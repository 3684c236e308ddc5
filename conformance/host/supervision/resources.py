"""What the host keeps as it works: no descriptor per plugin process it stopped (SV-18: the
brokered servers closed), no memory per exchange it passed on (SH-19), measured on the host
process over processes that were activated and over request bodies and cancelled exchanges."""

from __future__ import annotations

import psutil

from pluginconf.reference.generator import iter_bytes
from pluginconf.runner import Profile, case, expect, skip
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.target import HostTarget
from pluginconf.units import MIB

CYCLES = 3
FD_ALLOWANCE = 2  # less than one per cycle: a descriptor kept per process shows
ROUNDS = 20
BODY = 4 * MIB + 1
MEMORY_BOUND = 64 * MIB  # SH-19; the rounds pass 80 MiB of request bodies


def _host(t: HostTarget) -> psutil.Process:
    if not t.host_pid:
        skip("the adapter reports no host pid (HostInfo.host_pid is 0)")
    return psutil.Process(t.host_pid)


@case("host/shutdown/no-descriptor-growth", requirements=["SV-18"], profile=Profile.HOOKS)
async def no_descriptor_growth(t: HostTarget) -> None:
    """
    Purpose: A plugin process the host stopped leaves no descriptor open in the host: its
      brokered servers and connections are closed.
    Procedure: Skipped without a host pid. Load a fake and let it become active (with
      HostAPI announced, where the host offers it); disable and enable it once, count the
      host process's open descriptors; then 3 more times, each time waiting until active.
    Asserts: After the 3 cycles the host has at most 2 descriptors more than before them.
    """
    host = _host(t)
    p = await t.load({}, stop_grace_s=0.5)
    await p.disable()
    await p.enable()
    await p.wait_active()
    before = host.num_fds()
    for n in range(CYCLES):
        t.step(f"stopping and starting the plugin ({n + 1} of {CYCLES})")
        await p.disable()
        await p.enable()
        await p.wait_active()
    after = host.num_fds()
    expect(
        after - before <= FD_ALLOWANCE,
        f"after {CYCLES} plugin processes were activated and stopped, the host has "
        f"{after} open descriptors, {after - before} more than the {before} before them: it "
        f"keeps something of each stopped process open (SV-18: close its brokered servers)"
        f"\n{p.evidence()}",
    )


@case("host/serve-http/no-memory-growth", requirements=["SH-19"], profile=Profile.HOOKS)
async def no_memory_growth(t: HostTarget) -> None:
    """
    Purpose: The host keeps nothing of the bodies it passed on, nor of exchanges cancelled.
    Procedure: Skipped without a host pid. Load a fake; after two warm-up rounds, measure
      the host's resident memory, then 20 rounds of: POST 4 MiB + 1 to /sink; GET /hold and
      go away after its first bytes. Wait until the fake saw every client go away.
    Asserts: The host's resident memory rose by at most 64 MiB over the 80 MiB of request
      bodies.
    """
    t.require(Capability.HTTP_FRONT)
    host = _host(t)
    p = await t.load()
    body = b"".join(iter_bytes(BODY, 61))
    client = t.http()

    async def round_() -> None:
        response = await client.post(p.url("/sink"), content=body)
        expect(response.status_code == 200, f"/sink answered {response.status_code}")
        async with client.stream("GET", p.url("/hold")) as held:
            async for _ in held.aiter_raw():
                break

    for _ in range(2):
        await round_()
    before = host.memory_info().rss
    t.step(f"{ROUNDS} rounds of a {BODY}-byte body and a cancelled exchange")
    for _ in range(ROUNDS):
        await round_()
    await t.observer.wait_count(
        lambda e: e.label == p.plugin_id and e.event == "http_disconnect", ROUNDS + 2, 10.0
    )
    growth = host.memory_info().rss - before
    expect(
        growth <= MEMORY_BOUND,
        f"over {ROUNDS} request bodies of {BODY} bytes and {ROUNDS} cancelled exchanges, the "
        f"host's resident memory rose by {growth / MIB:.1f} MiB; the bound is "
        f"{MEMORY_BOUND // MIB} MiB (SH-19: nor hold a whole body)",
    )
