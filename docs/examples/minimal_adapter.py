"""A minimal host adapter: HostControl over a host that supervises plugins, without HTTP front.

    pluginconf host --run 'host/launch/*' -- python docs/examples/minimal_adapter.py

The "host" here is the reference host's Supervisor, one per plugin; yours is whatever your
host's API is. The adapter only translates: HostControl calls in, host calls out, host state
back as PluginStatus. It serves the launch and health groups. It declares what its host lacks
(GetHostInfo's capabilities): no HTTP front and no AutoMTLS, so the cases that need them are
skipped under `--target go-plugin` and fail under the default target, which requires them. It
takes only two policy fields (cases that need others are skipped), and it fires only
ExecuteCommand (the filter and notification cases fail with UNIMPLEMENTED).
docs/host-adapter.md explains each call.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import grpc

from pluginconf.control import control_pb2, control_pb2_grpc
from pluginconf.host.client import HookError
from pluginconf.host.launcher import LaunchSpec
from pluginconf.host.supervision.config import SupervisorConfig
from pluginconf.host.supervision.states import StateEvent
from pluginconf.host.supervision.supervisor import Supervisor

APPLIED = ("start_timeout_ms", "restart_limit")


def status_of(plugin_id: str, supervisor: Supervisor) -> control_pb2.PluginStatus:
    status = control_pb2.PluginStatus(
        plugin_id=plugin_id,
        state=supervisor.state.value if supervisor.state else "loaded",
        last_error=supervisor.last_error,
        pid=supervisor.process.pid if supervisor.process else 0,
        implemented=sorted(supervisor.client.implemented) if supervisor.client else [],
    )
    for event in supervisor.events:
        status.transitions.add(
            old_state=event.old.value if event.old else "",
            new_state=event.new.value,
            wall_time=event.at,
            reason=event.reason,
            error_kind=event.error_kind,
            has_exit_status=event.exit_status is not None,
            exit_status=event.exit_status or 0,
            stderr_tail=event.stderr_tail,
        )
    return status


class MinimalAdapter(control_pb2_grpc.HostControlServicer):
    def __init__(self) -> None:
        self.plugins: dict[str, Supervisor] = {}

    async def _get(self, plugin_id: str, context: Any) -> Supervisor:
        if plugin_id not in self.plugins:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no plugin {plugin_id!r}")
        return self.plugins[plugin_id]

    async def GetHostInfo(self, request: Any, context: Any) -> control_pb2.HostInfo:
        # What this host has: supervision (restarts, health checks, a circuit breaker), but
        # no HTTP front (so no http_base_url), no AutoMTLS and no HostAPI.
        capabilities = control_pb2.HostCapabilities(
            restarts=True, health_checks=True, circuit_breaker=True
        )
        return control_pb2.HostInfo(
            host_pid=os.getpid(), name="minimal example adapter", capabilities=capabilities
        )

    async def LoadPlugin(self, request: Any, context: Any) -> control_pb2.PluginStatus:
        manifest, policy = request.manifest, request.policy
        if manifest.id in self.plugins:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, f"{manifest.id!r} is loaded")
        spec = LaunchSpec(
            argv=list(manifest.command),
            plugin_id=manifest.id,
            env=dict(manifest.env),
            start_timeout_s=policy.start_timeout_ms / 1000 or 60.0,
        )
        # This host takes only a start timeout and a restart limit from outside: a case that
        # needs another policy field is skipped, with this message.
        others = [f.name for f, _ in policy.ListFields() if f.name not in APPLIED]
        if others:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"the minimal adapter cannot set {', '.join(others)}",
            )
        config = SupervisorConfig(restart_limit=policy.restart_limit or 3)
        supervisor = Supervisor(manifest.id, spec, config, dict(manifest.configuration))
        self.plugins[manifest.id] = supervisor
        return status_of(manifest.id, supervisor)

    async def EnablePlugin(self, request: Any, context: Any) -> control_pb2.PluginStatus:
        supervisor = await self._get(request.plugin_id, context)
        await supervisor.enable()
        return status_of(request.plugin_id, supervisor)

    async def DisablePlugin(self, request: Any, context: Any) -> control_pb2.PluginStatus:
        supervisor = await self._get(request.plugin_id, context)
        await supervisor.disable()
        return status_of(request.plugin_id, supervisor)

    async def UnloadPlugin(self, request: Any, context: Any) -> control_pb2.UnloadPluginResponse:
        supervisor = await self._get(request.plugin_id, context)
        await supervisor.disable()
        del self.plugins[request.plugin_id]
        return control_pb2.UnloadPluginResponse()

    async def GetPluginStatus(self, request: Any, context: Any) -> control_pb2.PluginStatus:
        return status_of(request.plugin_id, await self._get(request.plugin_id, context))

    async def WatchPlugin(
        self, request: Any, context: Any
    ) -> AsyncIterator[control_pb2.PluginStatus]:
        supervisor = await self._get(request.plugin_id, context)
        changed: asyncio.Queue[control_pb2.PluginStatus] = asyncio.Queue()

        def on_change(event: StateEvent) -> None:
            changed.put_nowait(status_of(request.plugin_id, supervisor))

        supervisor.listeners.append(on_change)
        try:
            yield status_of(request.plugin_id, supervisor)
            while True:
                yield await changed.get()
        finally:
            supervisor.listeners.remove(on_change)

    async def FireHook(self, request: Any, context: Any) -> control_pb2.FireHookResponse:
        if request.WhichOneof("hook") != "execute_command":
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED, "this adapter fires ExecuteCommand only"
            )
        command = request.execute_command
        supervisor = await self._get(command.plugin_id, context)
        outcome = control_pb2.CommandOutcome()
        try:
            reply = await supervisor.call("ExecuteCommand", command.request)
        except HookError as exc:
            outcome.error.kind, outcome.error.message = exc.kind, str(exc)
        else:
            if reply.HasField("error"):
                outcome.error.kind = "app_error"
                outcome.error.code, outcome.error.message = reply.error.code, reply.error.message
            else:
                outcome.response.CopyFrom(reply)
        return control_pb2.FireHookResponse(command=outcome)


async def main() -> None:
    adapter = MinimalAdapter()
    server = grpc.aio.server()
    control_pb2_grpc.add_HostControlServicer_to_server(adapter, server)
    server.add_insecure_port(os.environ["PLUGINCONF_CONTROL_ADDRESS"])
    await server.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    # Stop every plugin by the stop sequence before exiting (SV-19).
    await asyncio.gather(*(s.disable() for s in adapter.plugins.values()))
    await server.stop(grace=1.0)


if __name__ == "__main__":
    asyncio.run(main())
