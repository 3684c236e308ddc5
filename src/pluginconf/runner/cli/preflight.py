"""Before a run: can the target be started at all, as the run will start it, and how?

A run whose target cannot start, or whose profile asks for a protocol the plugin does not
speak, would fail every case for one reason; it is stopped before it begins, with that reason
and what to give instead (the application's cookie, its versions, --auto-mtls always, ...).

The preflight also starts two processes of the plugin at once. When they announce the same
address, or the second cannot start while the first holds it, the plugin serves a fixed
address: two of its processes would answer each other's calls. The run then keeps one
process of it at a time (``one_process_at_a_time``), and the case
plugin/transport/address-per-process reports the sharing itself (TR-14).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import tempfile
from dataclasses import dataclass, replace
from typing import Any, overload

import grpc

from pluginconf.host import errors
from pluginconf.host.errors import LaunchError
from pluginconf.host.launcher import LaunchedPlugin, spawn
from pluginconf.runner.host.adapter_process import AdapterProcess, AdapterUnusable
from pluginconf.runner.model import Profile
from pluginconf.runner.options import SUITE_CHANNEL_OPTIONS, HostSuiteOptions, PluginSuiteOptions
from pluginconf.runner.plugin.tls import TLSChannel, connect_plugin
from pluginconf.runner.targets import AutoMTLS
from pluginconf.v1 import hooks_pb2, hooks_pb2_grpc

# go-plugin's answer to a wrong cookie ("This binary is a plugin. These are not meant to be
# executed directly."), or any message about the cookie.
_COOKIE_REFUSAL = re.compile(r"not\s+meant\s+to\s+be\s+executed\s+directly|cookie", re.I)


class PreflightError(Exception):
    """The run cannot usefully begin; the message says why and what to do."""


@dataclass
class _Started:
    """A process of the plugin, started as the run starts them, with its handshake read."""

    launched: LaunchedPlugin
    tmpdir: str
    tls: TLSChannel | None = None

    async def stop(self) -> None:
        try:
            await self.launched.stop()
        finally:
            if self.tls is not None:
                await self.tls.close()
            shutil.rmtree(self.tmpdir, ignore_errors=True)


async def _start(options: PluginSuiteOptions, **changes: Any) -> _Started:
    tmpdir = tempfile.mkdtemp(prefix="pluginconf-tmp-")
    try:
        launched = await spawn(options.launch_spec(tmpdir, **changes))
    except BaseException:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    try:
        await launched.read_handshake()
    except BaseException:
        await launched.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    return _Started(launched, tmpdir)


async def _stop_all(*started: _Started | BaseException) -> None:
    for one in started:
        if isinstance(one, _Started):
            with contextlib.suppress(Exception):
                await one.stop()


async def _needs_auto_mtls(options: PluginSuiteOptions) -> bool:
    """Whether the plugin, which failed to start without AutoMTLS, starts with it."""
    try:
        started = await _start(options, auto_mtls=True)
    except LaunchError:
        return False
    await started.stop()
    return True


async def _explain(options: PluginSuiteOptions, exc: LaunchError) -> str:
    """Why the plugin did not start, and what to give instead."""
    target = options.target.name
    cookie_refused = (
        isinstance(exc, errors.ExitedBeforeHandshake)
        and exc.exit_status == 1
        and _COOKIE_REFUSAL.search(exc.stderr_tail) is not None
    )
    if cookie_refused:
        return (
            f"the plugin refused the magic cookie {options.magic_cookie} (it exited with status "
            "1, saying it is a plugin not meant to be executed directly: a plugin's answer to a "
            "cookie that is not its application's). Give its application's cookie with "
            "--magic-cookie KEY=VALUE, or the --target of its application (pluginconf list "
            f"targets)\n{exc}"
        )
    if isinstance(exc, errors.AppVersionUnsupported):
        offered = ",".join(map(str, options.protocol_versions))
        return (
            f"the plugin answered with an app protocol version that the {target} target's "
            f"host does not speak (it offered {offered}): give the versions of the plugin's "
            "application with --protocol-versions, or the --target of its application "
            f"(pluginconf list targets)\n{exc}"
        )
    if isinstance(exc, errors.UnsupportedProtocol):
        return (
            f"the plugin's handshake names another go-plugin protocol than the {target} "
            f"target's {options.target.protocol!r} (netrpc plugins are Mattermost's: "
            f"--target mattermost)\n{exc}"
        )
    if isinstance(exc, errors.StartTimeout):
        # Not retried with AutoMTLS: that would wait the whole start timeout again.
        return (
            f"the plugin printed no handshake within --start-timeout "
            f"{options.start_timeout_s:g}s. It must print its handshake line on stdout once "
            "it listens; if it only needs longer to start, give it more with --start-timeout "
            f"SECONDS\n{exc}"
        )
    if options.auto_mtls is AutoMTLS.AUTO and await _needs_auto_mtls(options):
        return (
            "the plugin does not start without AutoMTLS (PLUGIN_CLIENT_CERT), and does with "
            "it: run with --auto-mtls always (the terraform, vault and boundary targets do), "
            f"so that every case starts it with a client certificate\n{exc}"
        )
    return f"the plugin could not be started:\n{exc}"


async def _two_at_once(options: PluginSuiteOptions) -> tuple[_Started, bool]:
    """Start two processes at once; one of them (stopping the other), and whether they
    showed that the plugin serves a fixed address."""
    first, second = await asyncio.gather(_start(options), _start(options), return_exceptions=True)
    for outcome in (first, second):
        if isinstance(outcome, BaseException) and not isinstance(outcome, LaunchError):
            await _stop_all(first, second)
            raise outcome
    if isinstance(first, _Started) and isinstance(second, _Started):
        a, b = first.launched.handshake, second.launched.handshake
        assert a is not None
        assert b is not None
        await _stop_all(second)
        return first, (a.network, a.address) == (b.network, b.address)
    running = first if isinstance(first, _Started) else second
    failure = first if isinstance(first, LaunchError) else second
    assert isinstance(failure, LaunchError)
    if not isinstance(running, _Started):
        raise PreflightError(await _explain(options, failure))
    # One started, the other did not: did the first hold what the second needed?
    await running.stop()
    try:
        alone = await _start(options)
    except LaunchError as exc:
        raise PreflightError(await _explain(options, exc)) from None
    return alone, True


async def _check_profile(options: PluginSuiteOptions, started: _Started) -> None:
    """For the hooks and sdk profiles: the plugin serves pluginconf.v1.Hooks."""
    profile = options.effective_profile
    if not profile.includes(Profile.HOOKS) or not options.speaks_grpc:
        return
    try:
        started.tls = await connect_plugin(started.launched, SUITE_CHANNEL_OPTIONS)
    except LaunchError as exc:
        raise PreflightError(f"the plugin could not be connected to:\n{exc}") from None
    assert started.launched.channel is not None
    hooks = hooks_pb2_grpc.HooksStub(started.launched.channel)
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


async def preflight(options: PluginSuiteOptions) -> PluginSuiteOptions:
    """Start the target as the run will (two processes at once), ask it Implemented when
    the profile needs hooks, stop it; the options for the run (one process at a time when
    the plugin serves a fixed address)."""
    started, fixed_address = await _two_at_once(options)
    try:
        await _check_profile(options, started)
    finally:
        await started.stop()
    if fixed_address:
        return replace(options, one_process_at_a_time=True)
    return options


async def preflight_host(options: HostSuiteOptions) -> None:
    """Start the adapter once and ask it what it is; exit 2 material when it cannot serve."""
    adapter = AdapterProcess(options.argv, options.start_timeout_s, options.env)
    try:
        await adapter.start()
    except AdapterUnusable as exc:
        raise PreflightError(f"the host adapter could not be started:\n{exc}") from None
    finally:
        await adapter.close()


@overload
def check_target(options: PluginSuiteOptions) -> PluginSuiteOptions: ...
@overload
def check_target(options: HostSuiteOptions) -> HostSuiteOptions: ...
@overload
def check_target(
    options: PluginSuiteOptions | HostSuiteOptions,
) -> PluginSuiteOptions | HostSuiteOptions: ...


def check_target(
    options: PluginSuiteOptions | HostSuiteOptions,
) -> PluginSuiteOptions | HostSuiteOptions:
    """The preflight of ``options``' suite, run to completion; PreflightError says why not.
    Returns the options the run should use (the plugin suite's may learn that the plugin
    serves a fixed address)."""
    if isinstance(options, HostSuiteOptions):
        asyncio.run(preflight_host(options))
        return options
    return asyncio.run(preflight(options))
