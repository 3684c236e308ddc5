"""plugin.GRPCBroker, host side: serve a service for the plugin under a broker id.

As in go-plugin, the host opens StartStream on the plugin's connection, starts a server for a
new id, announces it with ConnInfo, and only then passes the id to the plugin (for HostAPI:
in OnActivate), whose dial waits for the announcement.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import Callable

import grpc

from pluginconf.goplugin import grpc_broker_pb2, grpc_broker_pb2_grpc


class HostBroker:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        socket_dir: str,
        server_credentials: grpc.ServerCredentials | None = None,
    ) -> None:
        self._stub = grpc_broker_pb2_grpc.GRPCBrokerStub(channel)
        self._socket_dir = socket_dir
        self._creds = server_credentials
        self._ids = itertools.count(1)
        self._servers: list[grpc.aio.Server] = []
        self._call: (
            grpc.aio.StreamStreamCall[grpc_broker_pb2.ConnInfo, grpc_broker_pb2.ConnInfo] | None
        ) = None
        self._reader: asyncio.Task[None] | None = None
        # What the plugin announced: service id -> ConnInfo.
        self.announced: dict[int, grpc_broker_pb2.ConnInfo] = {}

    async def start(self) -> None:
        self._call = self._stub.StartStream(None)
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self._call is not None
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            async for info in self._call:
                self.announced[info.service_id] = info

    def next_id(self) -> int:
        return next(self._ids)

    async def serve(self, register: Callable[[grpc.aio.Server], None]) -> int:
        """Start a server with ``register``'s services, announce it, return its broker id."""
        assert self._call is not None, "call start() first"
        service_id = self.next_id()
        server = grpc.aio.server()
        register(server)
        path = os.path.join(self._socket_dir, f"broker-{service_id}.sock")
        if self._creds is None:
            server.add_insecure_port(f"unix:{path}")
        else:
            server.add_secure_port(f"unix:{path}", self._creds)
        await server.start()
        self._servers.append(server)
        await self._call.write(
            grpc_broker_pb2.ConnInfo(service_id=service_id, network="unix", address=path)
        )
        return service_id

    async def close(self) -> None:
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for server in self._servers:
            await server.stop(0)
        self._servers.clear()
