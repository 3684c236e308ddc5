"""Host faults of the HostAPI the host serves its plugins (HA)."""

from __future__ import annotations

import asyncio
import asyncio.unix_events
import os
from collections.abc import Callable
from typing import Any

import grpc
from host_faults.common import fault, patch

from pluginconf.goplugin import grpc_broker_pb2
from pluginconf.host import environment
from pluginconf.host import hostapi as host_hostapi
from pluginconf.host.broker import HostBroker
from pluginconf.host.client import PluginClient
from pluginconf.host.hostapi import InMemoryHostAPI
from pluginconf.host.supervision.process import PluginProcess
from pluginconf.host.supervision.supervisor import Supervisor
from pluginconf.v1 import hostapi_pb2

# -- HostAPI and broker (host/hostapi/*, host/broker/*) ------------------------------------


@fault("hostapi-kv-shared", "keys its key-value store by key only, not by plugin (HA-5)")
def _() -> None:
    shared: dict[str, bytes] = {}

    def one_store(**kwargs: Any) -> InMemoryHostAPI:
        return InMemoryHostAPI(kv=shared, **kwargs)

    patch(environment, "InMemoryHostAPI", one_store)


@fault(
    "hostapi-kv-per-process",
    "gives each plugin process a fresh key-value store, losing the data on a restart (HA-6)",
)
def _() -> None:
    serve = PluginProcess.serve_host_api

    async def fresh(self: PluginProcess) -> int:
        if self.host_api is not None:
            self.host_api.kv = {}
        return await serve(self)

    patch(PluginProcess, "serve_host_api", fresh)


@fault("hostapi-empty-value-absent", "answers KVGet of an empty value as not found (HA-7)")
def _() -> None:
    async def kv_get(
        self: InMemoryHostAPI, request: hostapi_pb2.KVGetRequest, context: Any
    ) -> hostapi_pb2.KVGetResponse:
        if error := host_hostapi._bad_key(request.key):
            return hostapi_pb2.KVGetResponse(error=error)
        value = self.kv.get(request.key)
        return hostapi_pb2.KVGetResponse(found=bool(value), value=value or b"")

    patch(InMemoryHostAPI, "KVGet", kv_get)


def _cas(
    expected_of: Callable[[hostapi_pb2.KVCompareAndSetRequest], bytes | None], yields: bool
) -> Any:
    async def cas(
        self: InMemoryHostAPI, request: hostapi_pb2.KVCompareAndSetRequest, context: Any
    ) -> hostapi_pb2.KVCompareAndSetResponse:
        if error := host_hostapi._bad_key(request.key):
            return hostapi_pb2.KVCompareAndSetResponse(error=error)
        current = self.kv.get(request.key)
        if yields:
            await asyncio.sleep(0.01)  # a store read over the network: a round trip
        if current != expected_of(request):
            return hostapi_pb2.KVCompareAndSetResponse(swapped=False)
        self.kv[request.key] = request.new_value
        return hostapi_pb2.KVCompareAndSetResponse(swapped=True)

    return cas


@fault(
    "hostapi-cas-empty-old-as-absent",
    "reads an empty old_value as absent in KVCompareAndSet (HA-8)",
)
def _() -> None:
    patch(InMemoryHostAPI, "KVCompareAndSet", _cas(lambda r: r.old_value or None, False))


@fault(
    "hostapi-cas-not-atomic",
    "reads, yields, then writes in KVCompareAndSet: concurrent calls all swap (HA-8)",
)
def _() -> None:
    def expected(r: hostapi_pb2.KVCompareAndSetRequest) -> bytes | None:
        return r.old_value if r.HasField("old_value") else None

    patch(InMemoryHostAPI, "KVCompareAndSet", _cas(expected, True))


@fault("hostapi-key-limit-off-by-one", "refuses keys of exactly 256 bytes (HA-9)")
def _() -> None:
    bad_key = host_hostapi._bad_key

    def strict(key: str) -> Any:
        if len(key.encode()) >= host_hostapi.MAX_KEY_BYTES:
            return host_hostapi.common_pb2.AppError(code="invalid_argument", message="too long")
        return bad_key(key)

    patch(host_hostapi, "_bad_key", strict)


@fault(
    "hostapi-errors-as-status",
    "answers HostAPI application failures with an INVALID_ARGUMENT status (HA-9, HA-12)",
)
def _() -> None:
    for name in ("KVGet", "KVSet", "KVDelete", "KVCompareAndSet"):
        method = getattr(InMemoryHostAPI, name)

        def aborting(method: Any) -> Any:
            async def call(self: InMemoryHostAPI, request: Any, context: Any) -> Any:
                answer = await method(self, request, context)
                if answer.HasField("error"):
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, answer.error.message)
                return answer

            return call

        patch(InMemoryHostAPI, name, aborting(method))


@fault("hostapi-log-unspecified-refused", "refuses Log at LOG_LEVEL_UNSPECIFIED (HA-10)")
def _() -> None:
    log = InMemoryHostAPI.Log

    async def picky(self: InMemoryHostAPI, request: Any, context: Any) -> Any:
        if request.level == hostapi_pb2.LOG_LEVEL_UNSPECIFIED:
            error = host_hostapi.common_pb2.AppError(code="invalid_argument", message="level")
            return hostapi_pb2.LogResponse(error=error)
        return await log(self, request, context)

    patch(InMemoryHostAPI, "Log", picky)


@fault(
    "hostapi-config-after-answer",
    "updates what GetConfiguration answers only once OnConfigurationChange is answered (HA-11)",
)
def _() -> None:
    change = Supervisor.change_configuration

    def keep_api(self: Supervisor, configuration: dict[str, str]) -> None:
        self.configuration = dict(configuration)

    async def later(self: Supervisor, configuration: dict[str, str]) -> Any:
        try:
            return await change(self, configuration)
        finally:
            if self.host_api is not None:
                self.host_api.configuration = dict(configuration)

    patch(Supervisor, "_store_configuration", keep_api)
    patch(Supervisor, "change_configuration", later)


@fault(
    "hostapi-closed-before-deactivate",
    "closes the brokered HostAPI server before OnDeactivate (HA-3)",
)
def _() -> None:
    stop_sequence = Supervisor._stop_sequence

    async def early(self: Supervisor) -> None:
        if self._process is not None and self._process.broker is not None:
            await self._process.broker.close()
        await stop_sequence(self)

    patch(Supervisor, "_stop_sequence", early)


@fault(
    "hostapi-under-hook-lock",
    "serves HostAPI calls and ExecuteCommand through one lock: a handler that calls back "
    "waits for itself (HA-4)",
)
def _() -> None:
    lock = asyncio.Lock()
    call = PluginClient.call

    async def locked_call(self: PluginClient, hook: str, *args: Any, **kwargs: Any) -> Any:
        if hook != "ExecuteCommand":
            return await call(self, hook, *args, **kwargs)
        async with lock:
            return await call(self, hook, *args, **kwargs)

    def locked(method: Any) -> Any:
        async def serve(self: InMemoryHostAPI, request: Any, context: Any) -> Any:
            async with lock:
                return await method(self, request, context)

        return serve

    patch(PluginClient, "call", locked_call)
    for name in ("KVGet", "KVSet"):
        patch(InMemoryHostAPI, name, locked(getattr(InMemoryHostAPI, name)))


@fault(
    "hostapi-announced-late",
    "announces the HostAPI server in the background, after OnActivate may have gone (HA-1)",
)
def _() -> None:
    async def serve(self: HostBroker, register: Callable[[grpc.aio.Server], None]) -> int:
        assert self._call is not None
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
        info = grpc_broker_pb2.ConnInfo(service_id=service_id, network="unix", address=path)
        call = self._call

        async def announce() -> None:
            await asyncio.sleep(0.3)
            await call.write(info)

        self._mutant_announce = asyncio.ensure_future(announce())  # type: ignore[attr-defined]
        return service_id

    patch(HostBroker, "serve", serve)


@fault(
    "broker-stream-closed-after-activate",
    "cancels the broker stream once OnActivate is answered, keeping its servers (BR-2)",
)
def _() -> None:
    activate = Supervisor._activate

    async def then_close(self: Supervisor, client: Any, broker_id: int) -> None:
        await activate(self, client, broker_id)
        broker = self._process.broker if self._process is not None else None
        if broker is not None and broker._call is not None:
            broker._call.cancel()

    patch(Supervisor, "_activate", then_close)


@fault(
    "broker-before-health",
    "opens the broker stream and announces HostAPI as soon as it connects, before the "
    "health check (BR-13)",
)
def _() -> None:
    launch = PluginProcess.launch
    serve = PluginProcess.serve_host_api

    async def early(self: PluginProcess) -> None:
        await launch(self)
        self._mutant_id = await serve(self)  # type: ignore[attr-defined]

    async def stored(self: PluginProcess) -> int:
        return int(getattr(self, "_mutant_id", 0))

    patch(PluginProcess, "launch", early)
    patch(PluginProcess, "serve_host_api", stored)
