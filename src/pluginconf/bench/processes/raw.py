"""The raw grpcio baseline server (``raw_server.py``), started on a unix socket and stopped by
closing its stdin."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from pluginconf.bench.errors import BenchError
from pluginconf.bench.processes.endpoint import Endpoint
from pluginconf.bench.processes.lifecycle import START_TIMEOUT_S, STOP_TIMEOUT_S, reap
from pluginconf.runner.timing import helper_ready, spawn_helper_server
from pluginconf.v1 import hooks_pb2_grpc

RAW_SERVER_MODULE = "pluginconf.bench.processes.raw_server"


@dataclass(frozen=True)
class RawServer(Endpoint):
    process: asyncio.subprocess.Process

    async def stop(self) -> None:
        """Close its stdin, which stops it (grpc.aio ``server.stop``), and reap it."""
        await _stop_raw(self.process)


async def _stop_raw(process: asyncio.subprocess.Process) -> None:
    """The raw server exits when its stdin ends; SIGKILL if it has not in time; reaped."""
    assert process.stdin is not None
    process.stdin.close()
    await reap(process, STOP_TIMEOUT_S)


@contextlib.asynccontextmanager
async def raw_server() -> AsyncIterator[RawServer]:
    """The raw grpcio baseline (``python -m pluginconf.bench.processes.raw_server``) on a unix
    socket."""
    workdir = tempfile.mkdtemp(prefix="pluginconf-bench-")
    address = f"unix:{workdir}/raw.sock"
    process = await spawn_helper_server(RAW_SERVER_MODULE, address)
    channel = None
    try:
        line = await helper_ready(process, START_TIMEOUT_S)
        if line.strip() != b"ready":
            raise BenchError(
                f"the raw grpcio baseline server did not start: it printed {line!r} where "
                f"'ready' was expected; run `python -m {RAW_SERVER_MODULE} unix:/tmp/x` "
                "to see why"
            )
        channel = grpc.aio.insecure_channel(address)
        await asyncio.wait_for(channel.channel_ready(), 10)
        yield RawServer(hooks_pb2_grpc.HooksStub(channel), process.pid, process)
    finally:
        if channel is not None:
            await channel.close(None)
        await _stop_raw(process)
        shutil.rmtree(workdir, ignore_errors=True)
