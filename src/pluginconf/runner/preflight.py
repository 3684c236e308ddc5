"""Before a run: can the target be started at all, and is the profile one it can take?

A run whose target cannot start, or whose profile asks for a protocol the plugin does not
speak, would fail every case for one reason; it is stopped before it begins, with that reason.
"""

from __future__ import annotations

import asyncio

import grpc

from pluginconf.host.errors import LaunchError
from pluginconf.host.launcher import launch
from pluginconf.runner.adapter_process import AdapterProcess, AdapterUnusable
from pluginconf.runner.model import Profile
from pluginconf.runner.options import HostSuiteOptions, PluginSuiteOptions
from pluginconf.v1 import hooks_pb2, hooks_pb2_grpc


class PreflightError(Exception):
    """The run cannot usefully begin; the message says why and what to do."""


async def preflight(options: PluginSuiteOptions) -> None:
    """Start the target once, ask it Implemented when the profile needs hooks, stop it."""
    try:
        plugin = await launch(options.launch_spec())
    except LaunchError as exc:
        raise PreflightError(f"the plugin could not be started:\n{exc}") from None
    try:
        profile = options.effective_profile
        if profile.includes(Profile.HOOKS) and plugin.channel is not None:
            hooks = hooks_pb2_grpc.HooksStub(plugin.channel)
            try:
                await hooks.Implemented(hooks_pb2.ImplementedRequest(), timeout=10)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                    raise PreflightError(
                        f"the {profile} profile needs a plugin of the pluginconf.v1 hooks "
                        "protocol, and this plugin does not serve pluginconf.v1.Hooks "
                        f"(Implemented: {exc.details()}); for any other go-plugin plugin, "
                        "use --profile transport"
                    ) from None
    finally:
        await plugin.stop()


async def preflight_host(options: HostSuiteOptions) -> None:
    """Start the adapter once and ask it what it is; exit 2 material when it cannot serve."""
    adapter = AdapterProcess(options.argv, options.start_timeout_s, options.env)
    try:
        await adapter.start()
    except AdapterUnusable as exc:
        raise PreflightError(f"the host adapter could not be started:\n{exc}") from None
    finally:
        await adapter.close()


def check_target(options: PluginSuiteOptions | HostSuiteOptions) -> None:
    """The preflight of ``options``' suite, run to completion; PreflightError says why not."""
    if isinstance(options, HostSuiteOptions):
        asyncio.run(preflight_host(options))
    else:
        asyncio.run(preflight(options))
