"""The fake's health, controller, broker and stdio services, which misbehave as scenarios say."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, NoReturn, cast

import grpc
from google.protobuf import empty_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pluginconf.fake.broker_watch import StreamWatch
from pluginconf.fake.record import to_dict
from pluginconf.goplugin import (
    grpc_broker_pb2,
    grpc_controller_pb2,
    grpc_controller_pb2_grpc,
    grpc_stdio_pb2,
)
from pluginconf.plugin.broker import PluginBroker
from pluginconf.plugin.serving.stdio import StdioCapture, StdioService
from pluginconf.protocol.constants import HEALTH_SERVICE_NAME

if TYPE_CHECKING:
    from pluginconf.fake.process import Runner


SERVING: int = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: int = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN: int = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
HEALTH_SERVICES = ("", HEALTH_SERVICE_NAME)

AnyContext = grpc.aio.ServicerContext[Any, Any]


async def forever() -> NoReturn:
    """Wait until cancelled (a deadline, a cancelled call, the process ending)."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


class FakeHealth(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    """grpc.health.v1.Health for "" and "plugin": SERVING, NOT_SERVING, flapping, or SERVING
    only some time after the handshake; NOT_SERVING once stopping, and silent when the scenario
    hangs it. Each status answered is recorded (health_answer) before it is sent."""

    CHECK = "/grpc.health.v1.Health/Check"
    WATCH = "/grpc.health.v1.Health/Watch"

    def __init__(self, runner: Runner) -> None:
        self._scenario = runner.scenario
        self._rec = runner.rec
        self._since = time.monotonic()
        self._checks = 0
        self._stopping = False
        # serving_after_s: False until the timer fires; True for every other scenario.
        self._serving_yet = runner.scenario.health.serving_after_s is None
        self._timer: asyncio.TimerHandle | None = None
        # Replaced on every change, so that each Watch waits on the one it read the status
        # under, and no change is missed between reading the status and waiting.
        self._changed = asyncio.Event()

    def start(self) -> None:
        """The handshake is about to be written: flapping and after_s count from here."""
        self._since = time.monotonic()
        after = self._scenario.health.serving_after_s
        if after is not None:
            self._timer = asyncio.get_running_loop().call_later(after, self._become_serving)

    def stopping(self) -> None:
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _become_serving(self) -> None:
        if self._stopping:
            return
        self._serving_yet = True
        self._rec.event("health_serving", after_s=self._scenario.health.serving_after_s)
        self._notify()

    def _status(self) -> int:
        if self._stopping or not self._serving_yet:
            return NOT_SERVING
        flap = self._scenario.health.flap_every_s
        if flap is not None:
            phase = int((time.monotonic() - self._since) / flap)
            return SERVING if phase % 2 == 0 else NOT_SERVING
        return SERVING if self._scenario.health.status == "SERVING" else NOT_SERVING

    def _next_change_s(self) -> float | None:
        """Seconds until a time-driven change; None when only an event changes the status."""
        flap = self._scenario.health.flap_every_s
        if flap is None or self._stopping:
            return None
        return flap - (time.monotonic() - self._since) % flap

    def _hung(self) -> bool:
        hang = self._scenario.hang
        if not hang.health:
            return False
        if hang.health_after_checks is not None:
            return self._checks > hang.health_after_checks
        if hang.health_after_s is not None:
            return time.monotonic() - self._since >= hang.health_after_s
        return True

    def _answer(self, method: str, service: str, status: int) -> health_pb2.HealthCheckResponse:
        name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
        self._rec.event("health_answer", method=method, service=service, answer=name)
        return health_pb2.HealthCheckResponse(status=status)

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: AnyContext
    ) -> health_pb2.HealthCheckResponse:
        self._checks += 1
        self._rec.event("rpc", method=self.CHECK, request=to_dict(request))
        if self._hung():
            await forever()
        if request.service not in HEALTH_SERVICES:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return self._answer(self.CHECK, request.service, self._status())

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: AnyContext
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        self._rec.event("rpc", method=self.WATCH, request=to_dict(request))
        if self._hung():
            await forever()
        if request.service not in HEALTH_SERVICES:
            yield self._answer(self.WATCH, request.service, SERVICE_UNKNOWN)
            await forever()
        last = None
        while True:
            changed = self._changed
            status = self._status()
            if status != last:
                yield self._answer(self.WATCH, request.service, status)
                last = status
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), self._next_change_s())


class FakeController(grpc_controller_pb2_grpc.GRPCControllerServicer):
    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    async def Shutdown(
        self, request: grpc_controller_pb2.Empty, context: AnyContext
    ) -> grpc_controller_pb2.Empty:
        ignored = self._runner.scenario.ignore_shutdown
        self._runner.rec.event("shutdown_requested", ignored=ignored)
        if not ignored:
            self._runner.request_stop("shutdown")
        return grpc_controller_pb2.Empty()


class RecordingBroker(PluginBroker):
    def __init__(
        self, runner: Runner, dial_timeout_s: float, tls: Any, host_cert_pem: str | None
    ) -> None:
        super().__init__(dial_timeout_s, tls)
        self._rec = runner.rec
        self._scenario = runner.scenario
        self._host_cert_pem = host_cert_pem
        self._stopping = False
        self._received: set[int] = set()
        # The ids announced when the last OnActivate arrived (HA-1).
        self.announced_at_activate: frozenset[int] = frozenset()

    def activating(self) -> None:
        self.announced_at_activate = frozenset(self._received)

    def _seen(self, name: str, **fields: Any) -> None:
        if name == "broker_conninfo":
            self._received.add(fields["service_id"])
        self._rec.event(name, **fields)

    async def StartStream(  # type: ignore[override]
        self,
        request_iterator: AsyncIterator[grpc_broker_pb2.ConnInfo],
        context: AnyContext,
    ) -> None:
        self._rec.event("rpc", method="/plugin.GRPCBroker/StartStream", request=None)
        watch = StreamWatch(context, self._scenario.broker, self._seen, self._host_cert_pem)
        how = "host"
        try:
            await watch.send_scenario()
            await super().StartStream(request_iterator, cast(AnyContext, watch))
            how = "plugin_stopping" if self._stopping else "host_closed"
        except asyncio.CancelledError:
            how = "plugin_stopping" if self._stopping else "host_cancelled"
            raise
        finally:
            self._rec.event("broker_stream_end", by=how)

    async def close(self) -> None:
        self._stopping = True
        await super().close()


class RecordingStdio(StdioService):
    def __init__(self, runner: Runner, capture: StdioCapture) -> None:
        super().__init__(capture)
        self._rec = runner.rec
        self._mode = runner.scenario.stdio

    async def StreamStdio(
        self, request: empty_pb2.Empty, context: AnyContext
    ) -> AsyncIterator[grpc_stdio_pb2.StdioData]:
        self._rec.event("rpc", method="/plugin.GRPCStdio/StreamStdio", request=None)
        mode = self._mode
        if mode == "absent":
            # What a server without GRPCStdio answers (go-plugin before 1.2), but recorded.
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED, "unknown service plugin.GRPCStdio (stdio: absent)"
            )
        if mode == "ends":
            return
        async for data in super().StreamStdio(request, context):
            yield data
