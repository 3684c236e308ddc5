"""The yardstick process: the least a gRPC server process can be, for calibrating time bounds.

    python -m pluginconf.runner.yardstick unix:/path/to/socket

It serves ``grpc.health.v1.Health`` (SERVING for every name) with grpc.aio and none of the
SDK, prints ``ready`` once listening, and stops its server and exits when its stdin ends or
on SIGTERM. What the machine makes it take (to answer, to stop, to exit) is what the machine
adds to any plugin's figure at that moment (timing.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


class _AlwaysServing(health.HealthServicer):
    async def Check(  # the gRPC method's name
        self, request: health_pb2.HealthCheckRequest, context: object
    ) -> health_pb2.HealthCheckResponse:
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


async def serve(address: str) -> None:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(_AlwaysServing(), server)
    server.add_insecure_port(address)
    await server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    stdin_closed = loop.run_in_executor(None, sys.stdin.buffer.read)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({stdin_closed, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    await server.stop(0)
    # The executor thread may still block on stdin (after SIGTERM), and asyncio.run would
    # wait for it when it shuts its executor down: leave at once, without joining it.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
