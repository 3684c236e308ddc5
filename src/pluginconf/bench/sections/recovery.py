"""Crash and shutdown, with the reference host's supervisor:

- crash: SIGKILL of an active, idle plugin, to the supervisor's ``crashed`` event (detection)
  and to ``active`` again (restart: backoff, launch, health SERVING, Implemented, the HostAPI
  broker, OnConfigurationChange, OnActivate). Baseline: a cold start of the same plugin by
  the launcher alone (spawn, handshake, connection, health SERVING), measured just before
  each kill, since start-up is mostly interpreter start and varies with the machine's load.
- shutdown: ``Supervisor.disable()`` of an active, idle plugin: OnDeactivate,
  GRPCController.Shutdown, the exit, reaping, and removal of its socket directory.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

from pluginconf.bench.context import BenchContext
from pluginconf.bench.errors import BenchError
from pluginconf.bench.figures import Figure, at_most, baseline_plus, p50
from pluginconf.bench.processes.raw import raw_server
from pluginconf.bench.processes.reference import REFERENCE_SPEC
from pluginconf.bench.processes.supervised import supervised
from pluginconf.host.client import PluginClient
from pluginconf.host.launcher import launch
from pluginconf.host.supervision.config import SupervisorConfig
from pluginconf.host.supervision.states import PluginState

# A tiny backoff, a limit the kills cannot reach, and the backoff started afresh after every
# restart (stable_after_s=0): each restart waits uniform(0, 1 ms).
CRASH_CONFIG = SupervisorConfig(backoff_base_s=0.001, stable_after_s=0.0, restart_limit=1000)
SETTLE_S = 0.2  # idle time after activation, before a kill or a disable
DETECTION_TARGET_S = 0.050
RESTART_SLACK_S = 0.100
SHUTDOWN_TARGET_S = 0.100
EVENT_TIMEOUT_S = 60.0


async def cold_start() -> float:
    """Seconds from spawn to health SERVING, with the launcher alone."""
    started = time.perf_counter()
    plugin = await launch(REFERENCE_SPEC)
    try:
        assert plugin.channel is not None
        await PluginClient("ref", plugin.channel).wait_serving()
        return time.perf_counter() - started
    finally:
        await plugin.stop()


async def raw_exit_seen() -> float:
    """Seconds from SIGKILL of a raw grpcio server to asyncio's ``wait()`` returning: the
    floor under any host's detection of a death."""
    async with raw_server() as raw:
        killed_at = time.perf_counter()
        os.kill(raw.pid, signal.SIGKILL)
        await asyncio.wait_for(raw.process.wait(), EVENT_TIMEOUT_S)
        return time.perf_counter() - killed_at


async def raw_stop() -> float:
    """Seconds for a raw grpcio server to stop and be reaped once told to (its stdin closed):
    the floor under a graceful shutdown."""
    async with raw_server() as raw:
        started = time.perf_counter()
        await raw.stop()
        return time.perf_counter() - started


async def run_crash(ctx: BenchContext) -> list[Figure]:
    floor = [await raw_exit_seen() for _ in range(ctx.sizes.kills)]
    cold: list[float] = []
    detection: list[float] = []
    restart: list[float] = []
    async with supervised(CRASH_CONFIG) as supervisor:
        for _ in range(ctx.sizes.kills):
            cold.append(await cold_start())
            await asyncio.sleep(SETTLE_S)  # an idle plugin is the point
            if supervisor.process is None or supervisor.state is not PluginState.ACTIVE:
                raise BenchError(f"the supervised plugin is {supervisor.state}, not active")
            after = len(supervisor.events)
            killed_at = time.time()
            os.kill(supervisor.process.pid, signal.SIGKILL)
            async with asyncio.timeout(EVENT_TIMEOUT_S):
                crashed = await supervisor.wait_for_event(PluginState.CRASHED, after=after)
                active = await supervisor.wait_for_event(PluginState.ACTIVE, after=after)
            detection.append(crashed.at - killed_at)
            restart.append(active.at - killed_at)
            ctx.progress(
                f"cold start {cold[-1] * 1000:.1f} ms; kill: crashed after "
                f"{detection[-1] * 1000:.1f} ms, active after {restart[-1] * 1000:.1f} ms"
            )
    return [
        Figure(
            "crash_detection_p50", "s", p50(detection), "process_exit_seen_p50", p50(floor),
            at_most(DETECTION_TARGET_S, "s"),
        ),
        Figure(
            "crash_detection_max", "s", max(detection), "process_exit_seen_max", max(floor),
            at_most(DETECTION_TARGET_S, "s"),
        ),
        Figure(
            "restart_to_active_p50", "s", p50(restart), "plugin_cold_start_p50", p50(cold),
            baseline_plus(RESTART_SLACK_S, "s"),
        ),
        Figure("restart_to_active_max", "s", max(restart), "plugin_cold_start_max", max(cold)),
    ]  # fmt: skip


async def run_shutdown(ctx: BenchContext) -> list[Figure]:
    floor = [await raw_stop() for _ in range(ctx.sizes.shutdowns)]
    stops: list[float] = []
    for _ in range(ctx.sizes.shutdowns):
        async with supervised() as supervisor:
            await asyncio.sleep(SETTLE_S)  # an idle plugin is the point
            started = time.perf_counter()
            await supervisor.disable()
            stops.append(time.perf_counter() - started)
            if supervisor.state is not PluginState.STOPPED:
                raise BenchError(f"after disable() the plugin is {supervisor.state}, not stopped")
    ctx.progress("disable(): " + ", ".join(f"{s * 1000:.1f}" for s in stops) + " ms")
    ctx.progress("raw server stop: " + ", ".join(f"{s * 1000:.1f}" for s in floor) + " ms")
    return [
        Figure(
            "graceful_shutdown_p50", "s", p50(stops), "grpcio_server_stop_p50", p50(floor),
            at_most(SHUTDOWN_TARGET_S, "s"),
        ),
        Figure("graceful_shutdown_max", "s", max(stops), "grpcio_server_stop_max", max(floor)),
    ]  # fmt: skip
