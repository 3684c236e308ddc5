"""Streaming throughput, both ways at once, against the raw grpcio bidi echo:

- ServeHTTP echo over gRPC: the suite's client to the reference plugin's /echo, through the
  SDK's ASGI bridge;
- end-to-end HTTP: an HTTP/1.1 client to ``pluginconf serve``'s front, over ServeHTTP to the
  same plugin, and back;
- baseline: the same client to the raw baseline server, which writes each body frame back.

Each echo moves N bytes up and N bytes down concurrently in 64 KiB frames. The three run in
alternating rounds against processes started once; the median of each is reported.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable

from pluginconf.bench.context import BenchContext
from pluginconf.bench.figures import Figure, p50, ratio_at_least
from pluginconf.bench.measuring.sampling import measure
from pluginconf.bench.measuring.transfers import (
    ECHO_PATH,
    WARMUP_BYTES,
    grpc_echo,
    http_echo,
    transfer_timeout_s,
)
from pluginconf.bench.processes.raw import raw_server
from pluginconf.bench.processes.reference import reference_plugin
from pluginconf.bench.processes.serve import serve_process

SERVE_HTTP_TARGET = 0.9
HTTP_TARGET = 0.5


async def run(ctx: BenchContext) -> list[Figure]:
    n = ctx.sizes.stream_bytes
    timeout_s = transfer_timeout_s(n)
    rates: dict[str, list[float]] = {"raw": [], "sdk": [], "http": []}
    async with raw_server() as raw, reference_plugin() as sdk, serve_process() as served:
        echoes: dict[str, Callable[[int], Awaitable[None]]] = {
            "raw": lambda size: grpc_echo(raw.stub, size),
            "sdk": lambda size: grpc_echo(sdk.stub, size),
            "http": lambda size: http_echo(served.base_url, ECHO_PATH, size, timeout_s),
        }
        for echo in echoes.values():
            await echo(WARMUP_BYTES)
        client = os.getpid()
        pids = {
            "raw": {"client": client, "raw server": raw.pid},
            "sdk": {"client": client, "plugin": sdk.pid},
            "http": {"client": client, "host": served.serve_pid, "plugin": served.plugin_pid},
        }
        order = list(echoes)
        for round_ in range(ctx.sizes.stream_rounds):
            first = round_ % len(order)  # each echo goes first in turn
            for name in order[first:] + order[:first]:
                cost = await measure(pids[name], functools.partial(echoes[name], n))
                rates[name].append(cost.mib_per_s(n))
                ctx.progress(f"{name} echo: {cost.mib_per_s(n):.1f} MiB/s; CPU {cost.cpu_note()}")
    raw_rate = p50(rates["raw"])
    return [
        Figure(
            "serve_http_echo_throughput", "MiB/s", p50(rates["sdk"]),
            "grpcio_bidi_echo_throughput", raw_rate, ratio_at_least(SERVE_HTTP_TARGET),
        ),
        Figure(
            "http_echo_throughput", "MiB/s", p50(rates["http"]),
            "grpcio_bidi_echo_throughput", raw_rate, ratio_at_least(HTTP_TARGET),
        ),
    ]  # fmt: skip
