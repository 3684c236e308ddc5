"""The host's client for one plugin process: readiness, Implemented, hooks with deadlines.

Every hook call has a deadline, goes through the plugin's circuit breaker, and fails with a
typed HookError that says which plugin, which hook and why. Application errors are not
errors here: they come back inside the response, for the caller to interpret.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pluginconf.host.errors import HostError
from pluginconf.host.supervision.breaker import CircuitBreaker
from pluginconf.protocol.constants import HEALTH_SERVICE_NAME
from pluginconf.v1 import hooks_pb2, hooks_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
# The Hooks methods this host knows, as named in Implemented (which does not list itself).
KNOWN_HOOKS = frozenset(hooks_pb2.DESCRIPTOR.services_by_name["Hooks"].methods_by_name) - {
    "Implemented"
}
log = logging.getLogger("pluginconf.host.client")


@dataclass(frozen=True)
class ClientConfig:
    hook_timeout_s: float = 30.0
    # How long a new process has to report SERVING before its start counts as failed.
    ready_timeout_s: float = 10.0
    health_timeout_s: float = 3.0


class HookError(HostError):
    """A hook call that did not produce an answer. ``kind`` is the SPEC error kind (RR-3):
    this base class is "any other status"."""

    kind = "plugin_error"

    def __init__(self, plugin_id: str, hook: str, detail: str) -> None:
        super().__init__(f"plugin {plugin_id!r}, hook {hook}: {detail}")
        self.plugin_id = plugin_id
        self.hook = hook
        self.detail = detail


class HookNotImplemented(HookError):
    kind = "not_implemented"


class HookTimeout(HookError):
    kind = "timeout"


class PluginUnavailable(HookError):
    kind = "plugin_unavailable"


class CircuitOpen(HookError):
    kind = "circuit_open"


class NotServing(HostError):
    """The plugin did not report SERVING in time after starting."""

    kind = "not_serving"


async def health_problem(health: health_pb2_grpc.HealthStub, timeout_s: float) -> str | None:
    """One health check of "plugin"; None when it answers SERVING in time, else what was wrong."""
    request = health_pb2.HealthCheckRequest(service=HEALTH_SERVICE_NAME)
    try:
        reply = await health.Check(request, timeout=timeout_s)
    except grpc.aio.AioRpcError as exc:
        return f"health check failed: {exc.code().name}: {exc.details()}"
    if reply.status != SERVING:
        return f"health is {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
    return None


class PluginClient:
    def __init__(
        self,
        plugin_id: str,
        channel: grpc.aio.Channel,
        config: ClientConfig | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.plugin_id = plugin_id
        self.channel = channel
        self.config = config or ClientConfig()
        self.breaker = breaker or CircuitBreaker()
        self.hooks = hooks_pb2_grpc.HooksStub(channel)
        self._health = health_pb2_grpc.HealthStub(channel)
        self.implemented: frozenset[str] = frozenset()

    async def wait_serving(self) -> None:
        """Wait (bounded) until health reports SERVING for "plugin", watching, not polling."""
        request = health_pb2.HealthCheckRequest(service=HEALTH_SERVICE_NAME)
        last = "no answer"
        watch = self._health.Watch(request)
        try:
            async with asyncio.timeout(self.config.ready_timeout_s):
                async for reply in watch:
                    if reply.status == SERVING:
                        return
                    last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except TimeoutError:
            pass
        except grpc.aio.AioRpcError as exc:
            last = f"{exc.code().name}: {exc.details()}"
        finally:
            watch.cancel()  # an open Watch is an RPC in flight for the plugin
        raise NotServing(
            f"plugin {self.plugin_id!r} did not report SERVING for {HEALTH_SERVICE_NAME!r} "
            f"within {self.config.ready_timeout_s:g}s (last: {last})"
        )

    async def check_health(self) -> str | None:
        """One health check; None when SERVING, else what was wrong."""
        return await health_problem(self._health, self.config.health_timeout_s)

    async def load_implemented(self) -> frozenset[str]:
        reply = await self._unary(
            "Implemented",
            lambda timeout: self.hooks.Implemented(hooks_pb2.ImplementedRequest(), timeout=timeout),
            use_breaker=False,
        )
        assert isinstance(reply, hooks_pb2.ImplementedResponse)
        unknown = sorted(set(reply.hooks) - KNOWN_HOOKS)
        if unknown:
            # HK-6: a newer plugin may list hooks this host does not know; use the rest.
            log.warning(
                "plugin %s: ignoring unknown hooks in Implemented: %s", self.plugin_id, unknown
            )
        self.implemented = frozenset(reply.hooks) & KNOWN_HOOKS
        return self.implemented

    async def call(
        self,
        hook: str,
        request: Message,
        *,
        use_breaker: bool = True,
        timeout_s: float | None = None,
    ) -> Any:
        """Call a unary hook. Never sends a hook the plugin did not list in Implemented."""
        self.check_implemented(hook)
        method = getattr(self.hooks, hook)
        return await self._unary(
            hook, lambda timeout: method(request, timeout=timeout), use_breaker, timeout_s
        )

    def check_implemented(self, hook: str) -> None:
        """HK-5: a hook the process did not list is never sent."""
        if hook not in self.implemented:
            raise HookNotImplemented(self.plugin_id, hook, "the plugin does not implement it")

    async def _unary(
        self,
        hook: str,
        send: Callable[[float], Awaitable[Any]],
        use_breaker: bool,
        timeout_s: float | None = None,
    ) -> Any:
        if use_breaker and not self.breaker.allow():
            raise CircuitOpen(
                self.plugin_id,
                hook,
                "circuit open after repeated failures; "
                f"retry in {self.breaker.retry_after_s():.1f}s",
            )
        timeout = self.config.hook_timeout_s if timeout_s is None else timeout_s
        try:
            reply = await send(timeout)
        except asyncio.CancelledError:
            if use_breaker:
                self.breaker.release()
            task = asyncio.current_task()
            if task is not None and task.cancelling() == 0:
                # Not our caller's cancellation: the channel was closed under the call (the
                # process exited), and grpc.aio reports that locally cancelled call as
                # CancelledError rather than as a status (SV-5).
                raise PluginUnavailable(
                    self.plugin_id, hook, "the call was cancelled: the plugin went away"
                ) from None
            raise
        except grpc.aio.AioRpcError as exc:
            if use_breaker:
                # UNIMPLEMENTED is an answer, not a failure: it neither counts nor resets.
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                    self.breaker.release()
                else:
                    self.breaker.record_failure()
            raise _classify(self.plugin_id, hook, exc, timeout) from None
        if use_breaker:
            self.breaker.record_success()
        return reply


def _classify(plugin_id: str, hook: str, exc: grpc.aio.AioRpcError, timeout: float) -> HookError:
    code = exc.code()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return HookTimeout(plugin_id, hook, f"no answer within the {timeout:g}s deadline")
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return HookNotImplemented(
            plugin_id, hook, f"the plugin answered UNIMPLEMENTED: {exc.details()}"
        )
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
        return PluginUnavailable(plugin_id, hook, f"{code.name}: {exc.details()}")
    return HookError(plugin_id, hook, f"{code.name}: {exc.details()}")
