"""plugin.GRPCBroker, plugin side, with go-plugin semantics.

The host opens StartStream once. Either side announces a server it listens on for a service
id with a ConnInfo; the other side's dial(id) waits for that announcement, then connects.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator

import grpc

from pluginconf._grpc_compat import EOF
from pluginconf.goplugin import grpc_broker_pb2, grpc_broker_pb2_grpc
from pluginconf.plugin.errors import BrokerError
from pluginconf.plugin.serving.tls_front import PrivateDir, Splicer, dial_through

log = logging.getLogger("pluginconf.plugin.broker")


def channel_target(network: str, address: str) -> str:
    if network == "unix":
        return f"unix:{address}"
    if network == "tcp":
        return address
    raise BrokerError(f"broker announced network {network!r}; expected unix or tcp")


class PluginBroker(grpc_broker_pb2_grpc.GRPCBrokerServicer):
    def __init__(self, dial_timeout_s: float, tls: ssl.SSLContext | None) -> None:
        self._dial_timeout = dial_timeout_s
        self._tls = tls
        # Under AutoMTLS, gRPC dials a private socket and TLS is spliced on (tls_front.py).
        self._private: PrivateDir | None = None
        self._splicers: list[Splicer] = []
        self._known: dict[int, grpc_broker_pb2.ConnInfo] = {}
        self._arrived = asyncio.Condition()
        self._closed = asyncio.Event()

    async def StartStream(  # type: ignore[override]
        self,
        request_iterator: AsyncIterator[grpc_broker_pb2.ConnInfo],
        context: grpc.aio.ServicerContext[object, object],
    ) -> None:
        reader = asyncio.ensure_future(self._read(context))
        closer = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({reader, closer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            reader.cancel()
            closer.cancel()

    async def _read(self, context: grpc.aio.ServicerContext[object, object]) -> None:
        while True:
            info = await context.read()
            if info is EOF:
                return
            assert isinstance(info, grpc_broker_pb2.ConnInfo)
            knock = info.knock
            if knock.knock or knock.ack or knock.error:
                # Multiplexed brokering (go-plugin >= 1.5) is not supported; the host falls
                # back to announced addresses when we never acknowledge.
                log.debug("ignoring broker knock for service %d", info.service_id)
                continue
            async with self._arrived:
                self._known[info.service_id] = info
                self._arrived.notify_all()

    async def dial(self, service_id: int) -> grpc.aio.Channel:
        """Connect to the host's server for ``service_id``, once the host has announced it."""
        try:
            async with asyncio.timeout(self._dial_timeout):
                async with self._arrived:
                    await self._arrived.wait_for(lambda: service_id in self._known)
        except TimeoutError:
            raise BrokerError(
                f"timeout after {self._dial_timeout:g}s waiting for the host to announce "
                f"broker service id {service_id} on GRPCBroker.StartStream; the host must "
                "serve the id before passing it to the plugin"
            ) from None
        info = self._known[service_id]
        target = channel_target(info.network, info.address)
        if self._tls is None:
            return grpc.aio.insecure_channel(target)
        if self._private is None:
            self._private = PrivateDir()
        splicer, plain_target = await dial_through(
            self._private, f"broker-{service_id}.sock", (info.network, info.address), self._tls
        )
        self._splicers.append(splicer)
        return grpc.aio.insecure_channel(plain_target)

    async def close(self) -> None:
        self._closed.set()
        for splicer in self._splicers:
            await splicer.close()
        if self._private is not None:
            self._private.close()
