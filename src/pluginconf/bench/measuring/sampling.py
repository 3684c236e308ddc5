"""What a transfer cost: its wall time, and each process's peak RSS growth and CPU time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import psutil

from pluginconf.units import MIB

SAMPLE_INTERVAL_S = 0.05


@dataclass(frozen=True)
class Cost:
    seconds: float
    rss_growth: Mapping[str, int]  # bytes: peak during the transfer minus RSS just before
    cpu_s: Mapping[str, float]  # user + system CPU seconds spent during the transfer

    def mib_per_s(self, n: int) -> float:
        return n / MIB / self.seconds

    def growth_mib(self, name: str) -> float:
        return self.rss_growth[name] / MIB

    def cpu_note(self) -> str:
        return ", ".join(f"{name} {s:.1f}s" for name, s in self.cpu_s.items())


class _Watched:
    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.before = self.peak = self.rss()
        self.cpu_before = self.cpu()

    def rss(self) -> int:
        return int(self.process.memory_info().rss)

    def cpu(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def sample(self) -> None:
        with contextlib.suppress(psutil.Error):
            self.peak = max(self.peak, self.rss())


async def measure(pids: Mapping[str, int], run: Callable[[], Awaitable[None]]) -> Cost:
    """Run ``run()`` while sampling the RSS of ``pids`` every 50 ms."""
    watched = {name: _Watched(pid) for name, pid in pids.items()}

    async def sampler() -> None:
        while True:
            for w in watched.values():
                w.sample()
            await asyncio.sleep(SAMPLE_INTERVAL_S)  # sampling at an interval is the point

    task = asyncio.ensure_future(sampler())
    started = time.perf_counter()
    try:
        await run()
        seconds = time.perf_counter() - started
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for w in watched.values():
        w.sample()
    return Cost(
        seconds,
        {name: max(w.peak - w.before, 0) for name, w in watched.items()},
        {name: w.cpu() - w.cpu_before for name, w in watched.items()},
    )
