"""The plugin's go-plugin services: grpc.health.v1.Health and plugin.GRPCController."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2

from pluginconf.goplugin import grpc_controller_pb2, grpc_controller_pb2_grpc
from pluginconf.protocol.constants import HEALTH_SERVICE_NAME

log = logging.getLogger("pluginconf.plugin")


class HealthService(health_aio.HealthServicer):  # type: ignore[misc]
    """grpc.health.v1.Health whose Watch streams end when the plugin stops.

    A Watch stream never ends by itself; left open, it would hold the graceful stop for its
    whole grace, as if it were work in flight.
    """

    def __init__(self) -> None:
        super().__init__()
        self._streams_end = asyncio.Event()

    async def set_serving(self) -> None:
        for service in ("", HEALTH_SERVICE_NAME):
            await self.set(service, health_pb2.HealthCheckResponse.SERVING)

    async def set_stopping(self) -> None:
        """NOT_SERVING everywhere, and every Watch stream ended."""
        await self.enter_graceful_shutdown()
        self._streams_end.set()

    async def Watch(self, request: Any, context: Any) -> None:
        watch = asyncio.ensure_future(super().Watch(request, context))
        ended = asyncio.ensure_future(self._streams_end.wait())
        try:
            await asyncio.wait({watch, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
            ended.cancel()


class ControllerService(grpc_controller_pb2_grpc.GRPCControllerServicer):
    def __init__(self, on_shutdown: Callable[[], None]) -> None:
        self._on_shutdown = on_shutdown

    async def Shutdown(
        self, request: grpc_controller_pb2.Empty, context: grpc.aio.ServicerContext[object, object]
    ) -> grpc_controller_pb2.Empty:
        log.debug("GRPCController.Shutdown received")
        # The server's stop must have begun before the answer leaves: a host that has the
        # answer finds new calls refused (CT-2). The yield lets the stop task start first.
        self._on_shutdown()
        await asyncio.sleep(0)
        return grpc_controller_pb2.Empty()
