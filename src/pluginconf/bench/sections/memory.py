"""Memory: the peak RSS growth of the host (``pluginconf serve``) and of the plugin while one
HTTP echo moves N bytes each way through them (1 GiB in the full run), against the raw
grpcio echo server's growth over the same bytes.

RSS is sampled every 50 ms; growth is the peak minus the RSS just before the transfer, after
a 1 MiB warm-up. Neither side may hold a body: SPEC SH-19 bounds it to 64 MiB.
"""

from __future__ import annotations

import functools
import os

from pluginconf.bench.context import BenchContext
from pluginconf.bench.figures import Figure, at_most
from pluginconf.bench.measuring.sampling import measure
from pluginconf.bench.measuring.transfers import (
    ECHO_PATH,
    WARMUP_BYTES,
    grpc_echo,
    http_echo,
    transfer_timeout_s,
)
from pluginconf.bench.processes.raw import raw_server
from pluginconf.bench.processes.serve import serve_process
from pluginconf.units import MIB

RSS_TARGET_MIB = 64.0


async def run(ctx: BenchContext) -> list[Figure]:
    n = ctx.sizes.memory_bytes
    client = os.getpid()
    async with raw_server() as raw:
        await grpc_echo(raw.stub, WARMUP_BYTES)
        base = await measure(
            {"client": client, "raw server": raw.pid}, functools.partial(grpc_echo, raw.stub, n)
        )
    ctx.progress(
        f"raw echo of {n // MIB} MiB: server RSS +{base.growth_mib('raw server'):.1f} MiB, "
        f"{base.mib_per_s(n):.1f} MiB/s; CPU {base.cpu_note()}"
    )
    async with serve_process() as served:
        echo = functools.partial(http_echo, served.base_url, ECHO_PATH)
        await echo(WARMUP_BYTES, transfer_timeout_s(WARMUP_BYTES))
        pids = {"client": client, "host": served.serve_pid, "plugin": served.plugin_pid}
        cost = await measure(pids, functools.partial(echo, n, transfer_timeout_s(n)))
    ctx.progress(
        f"HTTP echo of {n // MIB} MiB: host RSS +{cost.growth_mib('host'):.1f} MiB, plugin "
        f"+{cost.growth_mib('plugin'):.1f} MiB, {cost.mib_per_s(n):.1f} MiB/s; "
        f"CPU {cost.cpu_note()}"
    )
    baseline = base.growth_mib("raw server")
    target = at_most(RSS_TARGET_MIB, "MiB")
    return [
        Figure(
            "host_rss_growth", "MiB", cost.growth_mib("host"),
            "grpcio_echo_server_rss_growth", baseline, target,
        ),
        Figure(
            "plugin_rss_growth", "MiB", cost.growth_mib("plugin"),
            "grpcio_echo_server_rss_growth", baseline, target,
        ),
    ]  # fmt: skip
