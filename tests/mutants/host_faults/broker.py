"""Host faults of the host's GRPCBroker and the servers it brokers (BR)."""

from __future__ import annotations

import asyncio
import asyncio.unix_events
import contextlib
import itertools
import tempfile
from collections.abc import Callable
from typing import Any

import grpc
from host_faults.common import fault, patch, shadow

from pluginconf.goplugin import grpc_broker_pb2
from pluginconf.host import broker as host_broker
from pluginconf.host.broker import HostBroker
from pluginconf.host.supervision.supervisor import Supervisor


def _conninfo(**changes: Any) -> Callable[..., grpc_broker_pb2.ConnInfo]:
    def make(**fields: Any) -> grpc_broker_pb2.ConnInfo:
        info = grpc_broker_pb2.ConnInfo(**fields)
        if changes.get("knock"):
            info.knock.SetInParent()  # present, every field zero
        return info

    return make


@fault("broker-knock-set", "sends its ConnInfo with an empty knock message (BR-8)")
def _() -> None:
    stand_in = shadow(grpc_broker_pb2, ConnInfo=_conninfo(knock=True))
    patch(host_broker, "grpc_broker_pb2", stand_in)


@fault("broker-id-zero", "numbers its brokered services from 0 (BR-4)")
def _() -> None:
    init = HostBroker.__init__

    def from_zero(self: HostBroker, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._ids = itertools.count(0)

    patch(HostBroker, "__init__", from_zero)


@fault(
    "broker-all-interfaces",
    "serves brokered services on TCP on every interface and announces 0.0.0.0 (BR-3)",
)
def _() -> None:
    async def serve(self: HostBroker, register: Callable[[grpc.aio.Server], None]) -> int:
        assert self._call is not None
        service_id = self.next_id()
        server = grpc.aio.server()
        register(server)
        if self._creds is None:
            port = server.add_insecure_port("0.0.0.0:0")
        else:
            port = server.add_secure_port("0.0.0.0:0", self._creds)
        await server.start()
        self._servers.append(server)
        await self._call.write(
            grpc_broker_pb2.ConnInfo(
                service_id=service_id, network="tcp", address=f"0.0.0.0:{port}"
            )
        )
        return service_id

    patch(HostBroker, "serve", serve)


@fault(
    "broker-plaintext-under-mtls",
    "serves the brokered HostAPI without TLS even under AutoMTLS (BR-7)",
)
def _() -> None:
    init = HostBroker.__init__

    def plaintext(self: HostBroker, channel: Any, socket_dir: str, creds: Any = None) -> None:
        init(self, channel, socket_dir, None)

    patch(HostBroker, "__init__", plaintext)


@fault(
    "broker-ends-on-bad-conninfo",
    "ends the broker stream when the plugin announces a network it does not know (BR-9)",
)
def _() -> None:
    async def read(self: HostBroker) -> None:
        assert self._call is not None
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            async for info in self._call:
                if info.network not in ("unix", "tcp"):
                    self._call.cancel()
                    return
                self.announced[info.service_id] = info

    patch(HostBroker, "_read", read)


_LEFT_RUNNING: list[grpc.aio.Server] = []


def _host_wide_sockets() -> None:
    """Brokered sockets in one directory of the host's, not the plugin's socket directory."""
    where = tempfile.mkdtemp(prefix="broker-")
    init = HostBroker.__init__

    def elsewhere(self: HostBroker, channel: Any, socket_dir: str, *args: Any) -> None:
        init(self, channel, where, *args)

    patch(HostBroker, "__init__", elsewhere)


@fault(
    "broker-servers-left-running",
    "keeps brokered sockets in a directory of its own and never stops their servers (BR-10, BR-12)",
)
def _() -> None:
    _host_wide_sockets()

    async def close(self: HostBroker) -> None:
        if self._call is not None:
            self._call.cancel()
        _LEFT_RUNNING.extend(self._servers)  # referenced: not collected, still serving

    patch(HostBroker, "close", close)


@fault(
    "broker-kept-after-crash",
    "keeps brokered sockets in a directory of its own and closes them only in the stop "
    "sequence, not when the plugin exits (BR-12)",
)
def _() -> None:
    _host_wide_sockets()
    cleanup = Supervisor._cleanup
    stop_sequence = Supervisor._stop_sequence

    async def crash_cleanup(self: Supervisor) -> None:
        broker = self._process.broker if self._process is not None else None
        if not getattr(self, "_mutant_stopping", False) and broker is not None:
            _LEFT_RUNNING.extend(broker._servers)  # forgotten, still serving
            broker._servers = []
        await cleanup(self)

    async def stopping(self: Supervisor) -> None:
        self._mutant_stopping = True  # type: ignore[attr-defined]
        try:
            await stop_sequence(self)
        finally:
            self._mutant_stopping = False  # type: ignore[attr-defined]

    patch(Supervisor, "_cleanup", crash_cleanup)
    patch(Supervisor, "_stop_sequence", stopping)
