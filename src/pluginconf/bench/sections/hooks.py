"""Hook round trip: a no-op MessageHasBeenPosted through the host's client, against a raw
grpc.aio unary call of the same message to the raw baseline server.

Both run over unix sockets to another process. Calls alternate in blocks of 50, the order
swapped every block, so that drift in the machine's load falls on both sides alike.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from pluginconf.bench.context import BenchContext
from pluginconf.bench.figures import Figure, p50, p99, ratio_at_most
from pluginconf.bench.processes.raw import raw_server
from pluginconf.bench.processes.supervised import supervised
from pluginconf.v1 import hooks_pb2

WARMUP_CALLS = 200
BLOCK_CALLS = 50
HOOK_TIMEOUT_S = 30.0  # the host client's default hook deadline, given to the raw calls too
P50_TARGET = 1.25

REQUEST = hooks_pb2.MessageHasBeenPostedRequest(
    post=hooks_pb2.Post(id="post-1", channel_id="town-square", user_id="u1", message="hello")
)

Send = Callable[[], Awaitable[object]]


async def _block(send: Send, n: int, out: list[float]) -> None:
    for _ in range(n):
        started = time.perf_counter()
        await send()
        out.append(time.perf_counter() - started)


async def round_trips(calls: int) -> tuple[list[float], list[float]]:
    """Seconds per call of ``calls`` host calls and ``calls`` raw calls, interleaved."""
    async with raw_server() as raw, supervised() as supervisor:

        def via_host() -> Awaitable[object]:
            return supervisor.call("MessageHasBeenPosted", REQUEST)

        def via_raw() -> Awaitable[object]:
            return raw.stub.MessageHasBeenPosted(REQUEST, timeout=HOOK_TIMEOUT_S)

        await _block(via_host, WARMUP_CALLS, [])
        await _block(via_raw, WARMUP_CALLS, [])
        host: list[float] = []
        direct: list[float] = []
        done = 0
        while done < calls:
            n = min(BLOCK_CALLS, calls - done)
            pair: list[tuple[Send, list[float]]] = [(via_host, host), (via_raw, direct)]
            if (done // BLOCK_CALLS) % 2:
                pair.reverse()
            for send, out in pair:
                await _block(send, n, out)
            done += n
    return host, direct


async def run(ctx: BenchContext) -> list[Figure]:
    host, raw = await round_trips(ctx.sizes.hook_calls)
    ctx.progress(
        f"host p50 {p50(host) * 1000:.3f} ms, p99 {p99(host) * 1000:.3f} ms; "
        f"raw p50 {p50(raw) * 1000:.3f} ms, p99 {p99(raw) * 1000:.3f} ms"
    )
    return [
        Figure(
            "hook_roundtrip_p50", "s", p50(host), "grpcio_unary_p50", p50(raw),
            ratio_at_most(P50_TARGET),
        ),
        Figure("hook_roundtrip_p99", "s", p99(host), "grpcio_unary_p99", p99(raw)),
    ]  # fmt: skip
