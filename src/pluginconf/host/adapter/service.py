"""HostControl served over one reference-host Environment (pluginconf.conformance.v1).

Status codes: NOT_FOUND for an unknown plugin id (the message lists the loaded ids),
INVALID_ARGUMENT for an unusable manifest or an empty FireHook, ALREADY_EXISTS for an id
that is taken, UNAVAILABLE once the adapter is stopping. What a plugin did wrong is never a
status: it is a transition's error_kind, or a HostError inside the answer.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import grpc

from pluginconf.control import control_pb2, control_pb2_grpc
from pluginconf.host.adapter import convert
from pluginconf.host.client import HookError
from pluginconf.host.environment import AppErrorAnswer, Environment
from pluginconf.host.supervision.states import PluginState, StateEvent
from pluginconf.host.supervision.supervisor import Supervisor

log = logging.getLogger("pluginconf.host.adapter")

Context = grpc.aio.ServicerContext[Any, Any]
# A watcher's queue: statuses in order, None when the plugin is unloaded.
_Queue = asyncio.Queue[control_pb2.PluginStatus | None]
# EnablePlugin answers once the plugin is `starting`, which takes one loop turn.
_STARTING_WAIT_S = 5.0
# The reference host has every feature of the SPEC.
EVERY_CAPABILITY = control_pb2.HostCapabilities(
    **{field.name: True for field in control_pb2.HostCapabilities.DESCRIPTOR.fields}
)


class HostControlService(control_pb2_grpc.HostControlServicer):
    """The servicer. When the adapter stops, ``stop_accepting()`` refuses new plugins and
    ``end_watches()`` ends the WatchPlugin streams.

    LoadPlugin uses the manifest's structured fields only: ``manifest.directory`` (the same
    manifest as plugin.toml) is ignored, the fields being authoritative.
    """

    def __init__(self, env: Environment, http_base_url: str, name: str) -> None:
        self.env = env
        self.http_base_url = http_base_url
        self.name = name
        self._watchers: dict[str, set[_Queue]] = {}
        self._closing = False
        self._watches_ended = False

    def stop_accepting(self) -> None:
        """From now on, LoadPlugin and EnablePlugin answer UNAVAILABLE."""
        self._closing = True

    def end_watches(self) -> None:
        """End every WatchPlugin stream (with OK), and any opened later."""
        self._closing = True
        self._watches_ended = True
        for queues in self._watchers.values():
            for queue in queues:
                queue.put_nowait(None)

    # -- helpers --------------------------------------------------------------------------

    async def _not_found(self, plugin_id: str, context: Context) -> NoReturn:
        loaded = ", ".join(repr(i) for i in sorted(self.env.plugins)) or "none"
        await context.abort(
            grpc.StatusCode.NOT_FOUND, f"no plugin with id {plugin_id!r}; loaded: {loaded}"
        )

    async def _supervisor(self, plugin_id: str, context: Context) -> Supervisor:
        supervisor = self.env.plugins.get(plugin_id)
        if supervisor is None:
            await self._not_found(plugin_id, context)
        return supervisor

    async def _refuse_if_closing(self, context: Context) -> None:
        if self._closing:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, "the adapter is stopping: no plugin may start now"
            )

    # -- RPCs -----------------------------------------------------------------------------

    async def GetHostInfo(
        self, request: control_pb2.GetHostInfoRequest, context: Context
    ) -> control_pb2.HostInfo:
        return control_pb2.HostInfo(
            http_base_url=self.http_base_url,
            host_pid=os.getpid(),
            name=self.name,
            capabilities=EVERY_CAPABILITY,
        )

    async def LoadPlugin(
        self, request: control_pb2.LoadPluginRequest, context: Context
    ) -> control_pb2.PluginStatus:
        await self._refuse_if_closing(context)
        manifest = request.manifest
        problem = convert.manifest_problem(manifest)
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        if manifest.id in self.env.plugins:
            await context.abort(
                grpc.StatusCode.ALREADY_EXISTS,
                f"a plugin with id {manifest.id!r} is already loaded; unload it first",
            )
        supervisor = self.env.add(
            manifest.id,
            convert.launch_spec(manifest, request.policy),
            dict(manifest.configuration),
            convert.supervisor_config(request.policy, self.env.config),
        )
        log.info("loaded plugin %s: %s", manifest.id, " ".join(manifest.command))
        return convert.plugin_status(supervisor)

    async def EnablePlugin(
        self, request: control_pb2.PluginRef, context: Context
    ) -> control_pb2.PluginStatus:
        await self._refuse_if_closing(context)
        supervisor = await self._supervisor(request.plugin_id, context)
        seen = len(supervisor.events)
        if await supervisor.enable():
            await supervisor.wait_for_event(
                PluginState.STARTING, after=seen, timeout_s=_STARTING_WAIT_S
            )
        return convert.plugin_status(supervisor)

    async def DisablePlugin(
        self, request: control_pb2.PluginRef, context: Context
    ) -> control_pb2.PluginStatus:
        supervisor = await self._supervisor(request.plugin_id, context)
        await supervisor.disable()
        return convert.plugin_status(supervisor)

    async def UnloadPlugin(
        self, request: control_pb2.PluginRef, context: Context
    ) -> control_pb2.UnloadPluginResponse:
        await self._supervisor(request.plugin_id, context)
        try:
            await self.env.remove(request.plugin_id)
        except KeyError:  # unloaded meanwhile by another call
            await self._not_found(request.plugin_id, context)
        for queue in self._watchers.pop(request.plugin_id, set()):
            queue.put_nowait(None)
        return control_pb2.UnloadPluginResponse()

    async def GetPluginStatus(
        self, request: control_pb2.PluginRef, context: Context
    ) -> control_pb2.PluginStatus:
        return convert.plugin_status(await self._supervisor(request.plugin_id, context))

    async def WatchPlugin(
        self, request: control_pb2.PluginRef, context: Context
    ) -> AsyncIterator[control_pb2.PluginStatus]:
        supervisor = await self._supervisor(request.plugin_id, context)
        queue: _Queue = asyncio.Queue()

        def on_change(event: StateEvent) -> None:
            # Called inside the transition: the status is taken as of this change.
            queue.put_nowait(convert.plugin_status(supervisor))

        # No await between the first status and the listener: no change can slip between.
        first = convert.plugin_status(supervisor)
        supervisor.listeners.append(on_change)
        watchers = self._watchers.setdefault(request.plugin_id, set())
        watchers.add(queue)
        if self._watches_ended:
            queue.put_nowait(None)
        try:
            yield first
            while (status := await queue.get()) is not None:
                yield status
        finally:
            if on_change in supervisor.listeners:
                supervisor.listeners.remove(on_change)
            watchers.discard(queue)

    async def FireHook(
        self, request: control_pb2.FireHookRequest, context: Context
    ) -> control_pb2.FireHookResponse:
        hook = request.WhichOneof("hook")
        if hook == "message_will_be_posted":
            result = await self.env.message_will_be_posted(request.message_will_be_posted)
            return control_pb2.FireHookResponse(filter=convert.filter_outcome(result))
        if hook == "message_has_been_posted":
            outcomes = await self.env.notify(request.message_has_been_posted)
            return control_pb2.FireHookResponse(notify=convert.notify_outcome(outcomes))
        if hook == "execute_command":
            command = await self._execute_command(request.execute_command, context)
            return control_pb2.FireHookResponse(command=command)
        if hook == "configuration_change":
            change = request.configuration_change
            outcome = await self._change_configuration(change, context)
            return control_pb2.FireHookResponse(configuration=outcome)
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            "FireHookRequest sets no hook: set message_will_be_posted, message_has_been_posted, "
            "execute_command or configuration_change",
        )

    async def _execute_command(
        self, fire: control_pb2.ExecuteCommand, context: Context
    ) -> control_pb2.CommandOutcome:
        await self._supervisor(fire.plugin_id, context)
        try:
            reply = await self.env.execute_command(fire.plugin_id, fire.request)
        except KeyError:
            await self._not_found(fire.plugin_id, context)
        except AppErrorAnswer as exc:
            return control_pb2.CommandOutcome(error=convert.app_error(exc.code, exc.message))
        except HookError as exc:
            return control_pb2.CommandOutcome(error=convert.host_error(exc))
        return control_pb2.CommandOutcome(response=reply)

    async def _change_configuration(
        self, change: control_pb2.ConfigurationChange, context: Context
    ) -> control_pb2.ConfigurationOutcome:
        supervisor = await self._supervisor(change.plugin_id, context)
        try:
            error = await supervisor.change_configuration(dict(change.configuration))
        except HookError as exc:
            return control_pb2.ConfigurationOutcome(error=convert.host_error(exc))
        if error is None:
            return control_pb2.ConfigurationOutcome()
        return control_pb2.ConfigurationOutcome(error=convert.app_error(error.code, error.message))
