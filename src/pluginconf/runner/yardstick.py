"""The yardstick process: the least a gRPC server process can be, for calibrating time bounds.

    python -m pluginconf.runner.yardstick unix:/path/to/socket

It serves ``grpc.health.v1.Health`` (SERVING for every name) with grpc.aio and none of the
SDK, prints ``ready`` once listening, and stops its server and exits (the ordinary way, the
interpreter's teardown included) when its stdin ends or on SIGTERM. What the machine makes
it take (to answer, to stop, to exit) is what the machine adds to any plugin's figure at that
moment (timing.py). An exit through os._exit would skip the teardown that every Python plugin
pays, and that a loaded machine stretches most.
"""

from __future__ import annotations

import asyncio
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
    # stdin is read on the loop, not in a thread, so nothing is left to join: the process
    # exits the ordinary way, interpreter teardown included, as a Python plugin does.
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    stdin_closed = asyncio.ensure_future(reader.read())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({stdin_closed, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    stdin_closed.cancel()
    await server.stop(0)


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
