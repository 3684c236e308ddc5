"""Host faults in activation, hooks and filters (HL, LC, HK, NT, FL).

Health checks before and after activation, what hooks are sent and how, the filter chain.
"""

from __future__ import annotations

import asyncio
import asyncio.unix_events
import contextlib
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from host_faults.common import fault, forever, patch, shadow

from pluginconf.host import client, environment
from pluginconf.host.client import HookTimeout as HookTimeoutError
from pluginconf.host.client import NotServing, PluginClient
from pluginconf.host.environment import Environment
from pluginconf.host.http.front import HTTPFront, _Exchange
from pluginconf.host.supervision import states
from pluginconf.host.supervision.process import PluginFailure, PluginProcess
from pluginconf.host.supervision.states import PluginState
from pluginconf.host.supervision.supervisor import Supervisor
from pluginconf.v1 import hooks_pb2

# -- health and activation ------------------------------------------------------------------


@fault("calls-before-serving", "calls Implemented without waiting for SERVING (HL-6)")
def _() -> None:
    async def ready_at_once(self: PluginClient) -> None:
        return None

    patch(PluginClient, "wait_serving", ready_at_once)


@fault(
    "implemented-asked-again",
    "asks Implemented again before activating, as if the answer could have changed (HK-1)",
)
def _() -> None:
    activate = Supervisor._activate

    async def asked_again(self: Supervisor, plugin: PluginClient, broker_id: int) -> None:
        await plugin.load_implemented()
        await activate(self, plugin, broker_id)

    patch(Supervisor, "_activate", asked_again)


@fault("checks-empty-service", 'waits for SERVING of the service "", not "plugin" (HL-6)')
def _() -> None:
    patch(client, "HEALTH_SERVICE_NAME", "")


@fault("no-health-checks", "never checks an active plugin's health (SV-7)")
def _() -> None:
    async def never(self: PluginProcess, client: PluginClient) -> str:
        await forever()
        return ""

    patch(PluginProcess, "_health_loop", never)


@fault(
    "slow-health-poll",
    "polls Health/Check every 500 ms until the plugin reports SERVING, not 100 ms (HL-6)",
)
def _() -> None:
    async def poll(self: PluginClient) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.ready_timeout_s
        request = health_pb2.HealthCheckRequest(service=client.HEALTH_SERVICE_NAME)
        while loop.time() < deadline:
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await self._health.Check(request, timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.5)
        raise NotServing(f"plugin {self.plugin_id!r} never reported SERVING")

    patch(PluginClient, "wait_serving", poll)


@fault("calls-unimplemented-hooks", "sends hooks the plugin did not list in Implemented (HK-5)")
def _() -> None:
    patch(PluginClient, "check_implemented", lambda self, hook: None)


@fault(
    "configuration-error-ignored",
    "activates a plugin whose OnConfigurationChange answered an AppError (LC-4)",
)
def _() -> None:
    call = PluginClient.call

    async def lenient(self: PluginClient, hook: str, request: Any, **kwargs: Any) -> Any:
        reply = await call(self, hook, request, **kwargs)
        if hook == "OnConfigurationChange":
            reply.ClearField("error")
        return reply

    patch(PluginClient, "call", lenient)


@fault("serve-http-deadline", "puts the hook deadline on ServeHTTP calls (SH-23)")
def _() -> None:
    init = _Exchange.__init__

    def with_deadline(
        self: _Exchange, front: HTTPFront, plugin_id: str, hooks: Any, *rest: Any
    ) -> None:
        timeout = front.env.plugins[plugin_id].config.client.hook_timeout_s

        class Timed:
            def ServeHTTP(self, request: Any) -> Any:
                return hooks.ServeHTTP(request, timeout=timeout)

        init(self, front, plugin_id, Timed(), *rest)

    patch(_Exchange, "__init__", with_deadline)


@fault("activation-order-swapped", "sends OnActivate before the configuration (LC-1)")
def _() -> None:
    activate = Supervisor._activate

    async def swapped(self: Supervisor, client: PluginClient, broker_id: int) -> None:
        listed = client.implemented
        try:
            for left_out in ("OnConfigurationChange", "OnActivate"):
                client.implemented = listed - {left_out}
                await activate(self, client, broker_id)
        finally:
            client.implemented = listed

    patch(Supervisor, "_activate", swapped)


@fault(
    "activation-error-restarts", "restarts a plugin whose OnActivate answered an AppError (LC-7)"
)
def _() -> None:
    activate = Supervisor._activate

    async def retried(self: Supervisor, client: PluginClient, broker_id: int) -> None:
        try:
            await activate(self, client, broker_id)
        except PluginFailure as failure:
            failure.final = False  # taken for a crash: restarted with backoff
            raise

    patch(Supervisor, "_activate", retried)


@fault(
    "restart-without-configuration",
    "sends the configuration to a plugin's first process only (LC-1)",
)
def _() -> None:
    activate = Supervisor._activate
    configured: set[int] = set()

    async def once(self: Supervisor, client: PluginClient, broker_id: int) -> None:
        listed = client.implemented
        if id(self) in configured:
            client.implemented = listed - {"OnConfigurationChange"}
        configured.add(id(self))
        try:
            await activate(self, client, broker_id)
        finally:
            client.implemented = listed

    patch(Supervisor, "_activate", once)


# -- hooks ----------------------------------------------------------------------------------


@fault("payload-strings-trimmed", "trims the command line before sending it (HK-14)")
def _() -> None:
    execute = Environment.execute_command

    async def trimmed(
        self: Environment, plugin_id: str, request: hooks_pb2.ExecuteCommandRequest
    ) -> Any:
        stripped = hooks_pb2.ExecuteCommandRequest()
        stripped.CopyFrom(request)
        stripped.command = request.command.strip()
        return await execute(self, plugin_id, stripped)

    patch(Environment, "execute_command", trimmed)


@fault("app-error-trips-breaker", "counts an AppError answer as a failure (HK-9, SV-11)")
def _() -> None:
    unary = PluginClient._unary

    async def counted(
        self: PluginClient, hook: str, send: Any, use_breaker: bool, timeout_s: float | None = None
    ) -> Any:
        failures = self.breaker._failures
        reply = await unary(self, hook, send, use_breaker, timeout_s)
        if use_breaker and "error" in reply.DESCRIPTOR.fields_by_name and reply.HasField("error"):
            self.breaker._failures = failures  # a failure where the success was recorded
            self.breaker.record_failure()
        return reply

    patch(PluginClient, "_unary", counted)


@fault("hook-deadline-not-sent", "times hooks out itself and never cancels the call (HK-11)")
def _() -> None:
    unary = PluginClient._unary

    async def local(
        self: PluginClient, hook: str, send: Any, use_breaker: bool, timeout_s: float | None = None
    ) -> Any:
        timeout = self.config.hook_timeout_s if timeout_s is None else timeout_s

        async def without_deadline(_: float) -> Any:
            call = asyncio.ensure_future(send(None))  # no gRPC deadline on the call
            try:
                return await asyncio.wait_for(asyncio.shield(call), timeout)
            except TimeoutError:
                call.add_done_callback(lambda f: f.cancelled() or f.exception())
                raise HookTimeoutError(self.plugin_id, hook, f"no answer in {timeout:g}s") from None

        return await unary(self, hook, without_deadline, use_breaker, timeout_s)

    patch(PluginClient, "_unary", local)


@fault("configuration-changes-concurrent", "sends configuration changes concurrently (LC-3)")
def _() -> None:
    init = Supervisor.__init__

    def unlocked(self: Supervisor, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._configuration_lock = contextlib.nullcontext()  # type: ignore[assignment]

    patch(Supervisor, "__init__", unlocked)


@fault("crash-restarts-all", "restarts every plugin when one crashes (SV-20)")
def _() -> None:
    add = Environment.add

    def restarting_all(self: Environment, plugin_id: str, *args: Any, **kwargs: Any) -> Any:
        crashed = add(self, plugin_id, *args, **kwargs)

        def restart_the_others(event: states.StateEvent) -> None:
            if event.new is not PluginState.CRASHED:
                return
            for other in self.plugins.values():
                if other is not crashed and other.state is PluginState.ACTIVE and other.process:
                    other.process.kill_group()

        crashed.listeners.append(restart_the_others)
        return crashed

    patch(Environment, "add", restarting_all)


@fault(
    "notify-waits-longer",
    "holds the operation that notified a post 1.5 s past the hook deadline (NT-3)",
)
def _() -> None:
    notify = Environment.notify

    async def lingering(self: Environment, post: hooks_pb2.Post) -> Any:
        outcome = await notify(self, post)
        if any(failure is not None for failure in outcome.values()):
            await asyncio.sleep(1.5)  # e.g. waiting for a plugin that timed out to go away
        return outcome

    patch(Environment, "notify", lingering)


@fault(
    "timeout-reported-late",
    "reports a hook call that passed its deadline 1 s after the deadline (HK-11)",
)
def _() -> None:
    unary = PluginClient._unary

    async def late(
        self: PluginClient, hook: str, send: Any, use_breaker: bool, timeout_s: float | None = None
    ) -> Any:
        try:
            return await unary(self, hook, send, use_breaker, timeout_s)
        except HookTimeoutError:
            await asyncio.sleep(1.0)
            raise

    patch(PluginClient, "_unary", late)


@fault("fan-out-sequential", "notifies plugins one after another (NT-2)")
def _() -> None:
    async def sequential(*aws: Any, return_exceptions: bool = False) -> list[Any]:
        return [await aw for aw in aws]

    patch(environment, "asyncio", shadow(asyncio, gather=sequential))


# -- filters --------------------------------------------------------------------------------


@fault("filter-chain-reversed", "runs the filter chain in reverse order (FL-1)")
def _() -> None:
    serving = Environment._serving
    patch(Environment, "_serving", lambda self, hook: serving(self, hook)[::-1])


@fault("keep-takes-response-post", "takes the response's post when a filter keeps it (FL-2)")
def _() -> None:
    call = Supervisor.call

    async def keep_is_modify(
        self: Supervisor, hook: str, request: Any, timeout_s: float | None = None
    ) -> Any:
        reply = await call(self, hook, request, timeout_s)
        if hook == "MessageWillBePosted" and reply.action == hooks_pb2.FILTER_ACTION_KEEP:
            reply.action = hooks_pb2.FILTER_ACTION_MODIFY
            reply.post.SetInParent()  # the empty post a KEEP answer carries
        return reply

    patch(Supervisor, "call", keep_is_modify)


@fault("reject-does-not-stop", "goes on filtering after a plugin rejected the post (FL-4)")
def _() -> None:
    step = Environment._filter_step

    async def go_on(self: Environment, supervisor: Supervisor, result: Any) -> bool:
        await step(self, supervisor, result)
        return False

    patch(Environment, "_filter_step", go_on)


@fault("filter-fails-closed", "rejects the post when a filter fails (FL-5, FL-6)")
def _() -> None:
    step = Environment._filter_step

    async def closed(self: Environment, supervisor: Supervisor, result: Any) -> bool:
        ended = await step(self, supervisor, result)
        if result.steps and result.steps[-1].outcome == "error":
            result.rejected, result.rejected_by = True, supervisor.plugin_id
            result.reason = result.steps[-1].detail
            return True
        return ended

    patch(Environment, "_filter_step", closed)
