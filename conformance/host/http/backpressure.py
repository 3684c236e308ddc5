"""ServeHTTP's resources: bounded memory for a large body, a client that goes away."""

from __future__ import annotations

import asyncio
import time

import psutil

from pluginconf.runner import Profile, case, expect, fail, skip
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.fake_plugin import FakePlugin
from pluginconf.runner.host.target import HostTarget
from pluginconf.runner.plugin.duplex import duplex_exchange
from pluginconf.runner.timing import Yardstick, judge_time
from pluginconf.units import MIB

from ._helpers import generated_body, request_target

MEMORY_BOUND = 64 * MIB


@case(
    "host/serve-http/bounded-memory",
    requirements=["SH-19"],
    profile=Profile.HOOKS,
    timeout_s=300,
    heavy=True,
)
async def bounded_memory(t: HostTarget) -> None:
    """
    Purpose: Bodies stream through the host; it never holds a whole one.
    Procedure: Skipped when the adapter reports no host pid. POST min(256 MiB, --max-body)
      bytes to the fake's /echo, reading the echo while sending, and sample the host
      process's resident memory every 50 ms from just before until the end.
    Asserts: The echo is exact, and the host's resident memory never rose more than 64 MiB
      above where it was before the exchange.
    """
    t.require(Capability.HTTP_FRONT)
    if not t.host_pid:
        skip("the adapter reports no host pid (HostInfo.host_pid is 0)")
    n = min(256 * MIB, t.max_body)
    plugin = await t.load()
    host = psutil.Process(t.host_pid)
    t.step("warming up with a 1 MiB echo")
    await duplex_exchange(
        t.http_base_url, request_target(plugin, "/echo"), generated_body(MIB, 40), MIB
    )
    baseline = peak = host.memory_info().rss

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, host.memory_info().rss)
            await asyncio.sleep(0.05)

    sampler = asyncio.ensure_future(sample())
    t.step(f"echoing {n} bytes while sampling the host's memory")
    try:
        result = await duplex_exchange(
            t.http_base_url,
            request_target(plugin, "/echo"),
            generated_body(n, 41),
            n,
            timeout_s=240,
        )
    finally:
        sampler.cancel()
        await asyncio.wait({sampler})
    peak = max(peak, host.memory_info().rss)
    expect(
        result.complete and result.received == n and result.received_sha256 == result.sent_sha256,
        f"the echo of {n} bytes is not exact: {result.describe()}\n{plugin.evidence()}",
    )
    growth = peak - baseline
    expect(
        growth <= MEMORY_BOUND,
        f"echoing {n} bytes raised the host's resident memory by {growth / MIB:.1f} MiB (from "
        f"{baseline / MIB:.1f} to {peak / MIB:.1f} MiB); the bound is "
        f"{MEMORY_BOUND // MIB} MiB (SH-19: never read further ahead than it can pass on)",
    )


# SH-20: the host cancels the exchange within 1 s of the client's going away.
CANCEL_BOUND_S = 1.0


# Not a SPEC bound: how long the suite waits for the plugin to see the exchange end at all.
CANCEL_GUARD_S = 5.0


async def _disconnect_delay(t: HostTarget, plugin: FakePlugin) -> float | None:
    """Read the first line of /hold, then close the connection: how long until the plugin
    saw its exchange end (None: not within the guard)."""
    t.step("reading the first line of /hold")
    sent = time.monotonic()  # events of earlier exchanges come before
    async with t.http().stream("GET", plugin.url("/hold")) as response:
        expect(
            response.status_code == 200,
            f"GET /hold answered {response.status_code}\n{plugin.evidence()}",
        )
        first = b""
        async for chunk in response.aiter_raw():
            first += chunk
            if b"\n" in first:
                break
    # Leaving the block closed the response before its end: httpx drops the connection.
    closed = time.monotonic()
    t.step("waiting for the plugin to see the exchange end")
    ended = await t.observer.wait_for(
        lambda e: (
            e.label == plugin.plugin_id
            and e.monotonic >= sent
            and (
                e.event == "http_disconnect"
                or (e.event == "call_end" and e.get("hook") == "ServeHTTP")
            )
        ),
        CANCEL_GUARD_S,
    )
    return None if ended is None else ended.monotonic - closed


@case("host/serve-http/client-disconnect", requirements=["SH-20"], profile=Profile.HOOKS)
async def client_disconnect(t: HostTarget) -> None:
    """
    Purpose: When the client goes away, the plugin's exchange is cancelled promptly.
    Procedure: GET the fake's /hold, which sends one line and then waits for ever; read the
      line, then close the connection, noting the time. A late end is timed again, on a new
      exchange, against the same-run yardstick of a call.
    Asserts: Within 1 s of the close, the fake sees its ServeHTTP call end or its handler told
      of the disconnect.
    """
    t.require(Capability.HTTP_FRONT)
    plugin = await t.load()
    delay = await _disconnect_delay(t, plugin)
    if delay is None:
        fail(
            f"{CANCEL_GUARD_S:g}s after the client closed its connection, the plugin's "
            f"ServeHTTP call was still going on (SH-20: cancel it within 1 s)\n{plugin.evidence()}"
        )

    async def again() -> float | None:
        return await _disconnect_delay(t, plugin)

    verdict = await judge_time(
        CANCEL_BOUND_S,
        again,
        Yardstick.CALL,
        "the end of the plugin's exchange after the client closed its connection",
        seen=[delay],
    )
    expect(verdict.met, f"{verdict.evidence()} (SH-20)\n{plugin.evidence()}")
