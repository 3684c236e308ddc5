"""Host faults that break one requirement each (issue 15): stdio to states.

Stdio, Implemented, the lifecycle hooks, transport limits and the states (SV-1).
"""

from __future__ import annotations

import asyncio
import asyncio.unix_events
from typing import Any

from host_faults.common import exchange_streams, fault, patch

from pluginconf.host import client
from pluginconf.host.client import PluginClient
from pluginconf.host.http.front import HTTPFront, _Exchange
from pluginconf.host.launcher import LaunchedPlugin
from pluginconf.host.supervision import states
from pluginconf.host.supervision.process import PluginFailure, PluginProcess
from pluginconf.host.supervision.states import PluginState
from pluginconf.host.supervision.stdio import StdioMirror
from pluginconf.host.supervision.supervisor import Supervisor
from pluginconf.units import MIB
from pluginconf.v1 import hooks_pb2


@fault(
    "stdio-before-health",
    "opens StreamStdio as soon as it connects, before the health check, as go-plugin does (IO-7)",
)
def _() -> None:
    launch, mirror = PluginProcess.launch, StdioMirror.mirror
    early: dict[int, asyncio.Future[None]] = {}

    async def launch_then_stdio(self: PluginProcess) -> None:
        await launch(self)
        assert self.launched is not None and self.launched.channel is not None
        early[id(self.stdio)] = asyncio.ensure_future(mirror(self.stdio, self.launched.channel))
        # It waits a moment for the plugin's first output before it checks health, so that
        # the stream is surely open by then (a race the case would otherwise lose sometimes).
        await asyncio.sleep(0.5)

    async def already_open(self: StdioMirror, channel: Any) -> None:
        task = early.pop(id(self))
        try:
            await task
        finally:
            task.cancel()

    patch(PluginProcess, "launch", launch_then_stdio)
    patch(StdioMirror, "mirror", already_open)


@fault(
    "stdio-end-is-death",
    "takes the end of a plugin's stdio stream for its death and kills it (IO-8)",
)
def _() -> None:
    mirror = StdioMirror.mirror

    def fatal(self: PluginProcess) -> None:
        launched = self.launched
        assert launched is not None and launched.channel is not None

        async def then_kill(channel: Any) -> None:
            await mirror(self.stdio, channel)
            if launched.channel is channel:
                launched.kill_group()

        self._stdio_task = asyncio.create_task(then_kill(launched.channel))

    patch(PluginProcess, "start_stdio", fatal)


@fault(
    "unknown-hook-fails-plugin",
    "refuses a plugin whose Implemented lists a hook it does not know (HK-6)",
)
def _() -> None:
    async def strict(self: PluginClient) -> frozenset[str]:
        reply = await self.hooks.Implemented(
            hooks_pb2.ImplementedRequest(), timeout=self.config.hook_timeout_s
        )
        unknown = sorted(set(reply.hooks) - client.KNOWN_HOOKS)
        if unknown:
            raise client.HookError(self.plugin_id, "Implemented", f"unknown hooks {unknown}")
        self.implemented = frozenset(reply.hooks)
        return self.implemented

    patch(PluginClient, "load_implemented", strict)


@fault(
    "implemented-unimplemented-means-none",
    "takes an Implemented that answers UNIMPLEMENTED for a plugin implementing nothing (HK-7)",
)
def _() -> None:
    load = PluginClient.load_implemented

    async def nothing(self: PluginClient) -> frozenset[str]:
        try:
            return await load(self)
        except client.HookNotImplemented:
            self.implemented = frozenset()
            return self.implemented

    patch(PluginClient, "load_implemented", nothing)


@fault(
    "implemented-error-means-all",
    "takes an Implemented that fails with another status for a plugin implementing every hook "
    "(HK-7)",
)
def _() -> None:
    load = PluginClient.load_implemented

    async def everything(self: PluginClient) -> frozenset[str]:
        try:
            return await load(self)
        except client.HookNotImplemented:
            raise
        except client.HookError:
            self.implemented = client.KNOWN_HOOKS
            return self.implemented

    patch(PluginClient, "load_implemented", everything)


@fault(
    "configuration-error-deactivates",
    "stops a plugin whose OnConfigurationChange answers an AppError after activation (LC-5)",
)
def _() -> None:
    change = Supervisor.change_configuration

    async def deactivating(self: Supervisor, configuration: dict[str, str]) -> Any:
        error = await change(self, configuration)
        if error is not None:
            self._stop.set()
        return error

    patch(Supervisor, "change_configuration", deactivating)


@fault(
    "start-hook-failure-final",
    "gives a plugin up, without counting a failed start, when its activation hooks time out "
    "or fail on transport, as when they answer an AppError (LC-8)",
)
def _() -> None:
    activate = Supervisor._activate

    async def final(self: Supervisor, plugin_client: Any, broker_id: int) -> None:
        try:
            await activate(self, plugin_client, broker_id)
        except client.HookError as exc:
            raise PluginFailure(str(exc), "activation_failed", final=True) from None

    patch(Supervisor, "_activate", final)


@fault(
    "receive-limit-4mb",
    "limits what it receives from a plugin to 4000000 bytes, not 4 MiB (TR-10)",
)
def _() -> None:
    connect = LaunchedPlugin.connect

    async def limited(self: LaunchedPlugin, options: Any = ()) -> Any:
        opts = [*(options or self.spec.channel_options)]
        opts.append(("grpc.max_receive_message_length", 4_000_000))
        return await connect(self, opts)

    patch(LaunchedPlugin, "connect", limited)


@fault(
    "body-frames-8mib",
    "gathers request body chunks into frames of up to 8 MiB before sending them (TR-11)",
)
def _() -> None:
    init = HTTPFront.__init__

    def big_frames(self: HTTPFront, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.chunk = 8 * MIB

    def gathering(exchange: _Exchange) -> None:
        receive = exchange.receive

        async def gathered() -> Any:
            message = await receive()
            if message["type"] != "http.request":
                return message
            body, more = bytearray(message.get("body", b"")), message.get("more_body", False)
            while more and len(body) < 8 * MIB:
                following = await receive()
                if following["type"] != "http.request":
                    return following
                body += following.get("body", b"")
                more = following.get("more_body", False)
            return {"type": "http.request", "body": bytes(body), "more_body": more}

        exchange.receive = gathered

    patch(HTTPFront, "__init__", big_frames)
    exchange_streams(gathering)


# -- states (SV-1) ---------------------------------------------------------------------------


@fault(
    "restart-skips-restarting",
    "reports the wait before a restart as still crashed: crashed goes straight to starting, "
    "a transition SV-1's table does not have (SV-1)",
)
def _() -> None:
    transition = Supervisor._transition
    patch(states, "TRANSITIONS", states.TRANSITIONS | {("crashed", "starting")})

    async def without_restarting(self: Supervisor, new: PluginState, *args: Any, **kw: Any) -> None:
        if new is not PluginState.RESTARTING:
            await transition(self, new, *args, **kw)

    patch(Supervisor, "_transition", without_restarting)
