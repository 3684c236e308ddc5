"""Host faults in supervising a plugin (SV).

Crashes, restarts, backoff, the circuit breaker and stopping; and a supervision bug only
fuzzing finds (HIDDEN).
"""

from __future__ import annotations

import asyncio
import asyncio.unix_events
import contextlib
import dataclasses
import os
import shutil
import signal
from collections import deque
from typing import Any

import grpc
from host_faults.common import fault, forever, hidden, patch, shadow

from pluginconf.control import control_pb2
from pluginconf.host import launcher
from pluginconf.host.adapter import convert as adapter_convert
from pluginconf.host.adapter import service as adapter_service
from pluginconf.host.client import PluginClient, PluginUnavailable
from pluginconf.host.launcher import LaunchedPlugin
from pluginconf.host.supervision.breaker import CircuitBreaker, CircuitState
from pluginconf.host.supervision.policy import RestartPolicy
from pluginconf.host.supervision.process import PluginProcess
from pluginconf.host.supervision.states import PluginState
from pluginconf.host.supervision.supervisor import Supervisor

# -- crashes --------------------------------------------------------------------------------


@fault("no-restart", "gives a plugin up at its first crash (SV-8, SV-9)")
def _() -> None:
    crashed = Supervisor._crashed

    async def final(self: Supervisor, failure: Any, active_for_s: float) -> None:
        await crashed(self, failure, active_for_s)
        if self.state is PluginState.CRASHED:
            await self._transition(
                PluginState.FAILED,
                f"not restarted: {failure.reason}",
                error_kind=failure.error_kind,
            )

    patch(Supervisor, "_crashed", final)


@fault("exit-unwatched", "notices a plugin's exit only at the next health check (SV-3, SV-4)")
def _() -> None:
    watch = PluginProcess.watch

    async def health_only(self: PluginProcess, stop: asyncio.Event) -> Any:
        assert self.launched is not None
        process = self.launched.process
        wait = process.wait

        def unwatched() -> Any:
            process.wait = wait  # type: ignore[method-assign]  # later waits are real
            return forever()

        process.wait = unwatched  # type: ignore[method-assign]  # the watch's own wait
        return await watch(self, stop)

    patch(PluginProcess, "watch", health_only)


@fault(
    "exit-noticed-late",
    "notices a plugin's exit 25 s after it happened, and checks no active plugin's health (SV-3)",
)
def _() -> None:
    watch = PluginProcess.watch

    async def never(self: PluginProcess, client: PluginClient) -> str:
        await forever()
        return ""

    async def late(self: PluginProcess, stop: asyncio.Event) -> Any:
        assert self.launched is not None
        process = self.launched.process
        wait = process.wait

        async def delayed() -> int:
            process.wait = wait  # type: ignore[method-assign]  # later waits are real
            status = await wait()
            await asyncio.sleep(25.0)
            return status

        process.wait = delayed  # type: ignore[method-assign]  # the watch's own wait
        return await watch(self, stop)

    patch(PluginProcess, "watch", late)
    patch(PluginProcess, "_health_loop", never)


@fault("exit-zero-is-stop", "takes a plugin's exit with status 0 as a stop (SV-6)")
def _() -> None:
    watch = PluginProcess.watch

    async def zero_is_stop(self: PluginProcess, stop: asyncio.Event) -> Any:
        outcome = await watch(self, stop)
        return None if outcome is not None and outcome.exit_status == 0 else outcome

    patch(PluginProcess, "watch", zero_is_stop)


@fault(
    "retries-until-deadline", "retries a call to a plugin that went away until its deadline (SV-5)"
)
def _() -> None:
    unary = PluginClient._unary

    async def retrying(
        self: PluginClient, hook: str, send: Any, use_breaker: bool, timeout_s: float | None = None
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.config.hook_timeout_s if timeout_s is None else timeout_s)
        while True:
            try:
                return await unary(self, hook, send, use_breaker, deadline - loop.time())
            except (PluginUnavailable, grpc.aio.UsageError):  # UsageError: channel closed
                if loop.time() + 0.1 >= deadline:
                    raise PluginUnavailable(
                        self.plugin_id, hook, "retried until the deadline"
                    ) from None
                await asyncio.sleep(0.1)  # the plugin may be back: try again

    patch(PluginClient, "_unary", retrying)


@fault(
    "no-supervision",
    "declares no restarts, health checks or circuit breaker, and has none: a plugin that "
    "crashes stays down, as under go-plugin's client (SV-7, SV-8, SV-11)",
)
def _() -> None:
    patch(
        adapter_service,
        "EVERY_CAPABILITY",
        control_pb2.HostCapabilities(http_front=True, auto_mtls=True, host_api=True),
    )
    crashed = Supervisor._crashed

    async def final(self: Supervisor, failure: Any, active_for_s: float) -> None:
        await crashed(self, failure, active_for_s)
        if self.state is PluginState.CRASHED:
            await self._transition(
                PluginState.FAILED,
                f"not restarted: {failure.reason}",
                error_kind=failure.error_kind,
            )

    async def never(self: PluginProcess, client: PluginClient) -> str:
        await forever()
        return ""

    patch(Supervisor, "_crashed", final)
    patch(PluginProcess, "_health_loop", never)
    patch(CircuitBreaker, "record_failure", lambda self: None)


@fault("no-backoff", "restarts a failed plugin at once (SV-8)")
def _() -> None:
    patch(RestartPolicy, "backoff_delay", lambda self: 0.0)


@fault("backoff-too-long", "waits 500 ms more than the backoff allows before a restart (SV-8)")
def _() -> None:
    def longer(self: RestartPolicy) -> float:
        config = self.config
        ceiling = min(config.backoff_max_s, config.backoff_base_s * 2 ** (self.consecutive - 1))
        return ceiling + 0.5

    patch(RestartPolicy, "backoff_delay", longer)


@fault("no-circuit-breaker", "never opens a plugin's circuit (SV-11, SE-4)")
def _() -> None:
    patch(CircuitBreaker, "record_failure", lambda self: None)


@fault("half-open-lets-all-through", "lets every call through a half-open circuit (SV-12)")
def _() -> None:
    allow = CircuitBreaker.allow

    def every_call(self: CircuitBreaker) -> bool:
        return allow(self) or self.state is CircuitState.HALF_OPEN

    patch(CircuitBreaker, "allow", every_call)


@fault("deactivate-through-circuit", "sends OnDeactivate through the circuit breaker (SV-13)")
def _() -> None:
    call = PluginClient.call

    async def breakered(self: PluginClient, hook: str, request: Any, **kwargs: Any) -> Any:
        if hook == "OnDeactivate":
            kwargs["use_breaker"] = True
        return await call(self, hook, request, **kwargs)

    patch(PluginClient, "call", breakered)


# -- stopping -------------------------------------------------------------------------------


@fault("socket-dir-kept", "never removes a plugin's socket directory (SV-18)")
def _() -> None:
    patch(launcher, "shutil", shadow(shutil, rmtree=lambda *args, **kwargs: None))


@fault("no-on-deactivate", "stops a plugin without OnDeactivate (SV-14, LC-9)")
def _() -> None:
    stop_sequence = Supervisor._stop_sequence

    async def without(self: Supervisor) -> None:
        if self.client is not None:
            self.client.implemented -= {"OnDeactivate"}
        await stop_sequence(self)

    patch(Supervisor, "_stop_sequence", without)


@fault("deactivate-unlisted", "sends OnDeactivate to a plugin that does not list it (LC-9)")
def _() -> None:
    stop_sequence = Supervisor._stop_sequence

    async def always(self: Supervisor) -> None:
        if self.client is not None:
            self.client.implemented |= {"OnDeactivate"}
        await stop_sequence(self)

    patch(Supervisor, "_stop_sequence", always)


@fault(
    "no-sigterm-step",
    "goes from the exit wait straight to SIGKILL, as go-plugin's client does (SV-22)",
)
def _() -> None:
    signal_group = LaunchedPlugin._signal_group

    def without_sigterm(self: LaunchedPlugin, sig: signal.Signals) -> None:
        if sig is not signal.SIGTERM:
            signal_group(self, sig)

    patch(LaunchedPlugin, "_signal_group", without_sigterm)


@fault(
    "kills-pid-only",
    "signals the plugin's process, never its process group, as go-plugin's client does "
    "(HS-25, SV-16, SV-22)",
)
def _() -> None:
    def process_only(self: LaunchedPlugin, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.process.pid, sig)

    patch(LaunchedPlugin, "_signal_group", process_only)


@fault("stop-waits-tripled", "waits three times each wait of the stop sequence (SV-22)")
def _() -> None:
    config = adapter_convert.supervisor_config

    def tripled(policy: Any, base: Any = None) -> Any:
        made = config(policy, base)
        return dataclasses.replace(
            made,
            shutdown_timeout_s=3 * made.shutdown_timeout_s,
            exit_grace_s=3 * made.exit_grace_s,
            term_grace_s=3 * made.term_grace_s,
        )

    patch(adapter_convert, "supervisor_config", tripled)


@fault("never-sigkill", "escalates to SIGTERM at most, then leaves the plugin running (SV-14)")
def _() -> None:
    signal_group = LaunchedPlugin._signal_group

    def no_sigkill(self: LaunchedPlugin, sig: signal.Signals) -> None:
        signal_group(self, signal.SIGTERM if sig is signal.SIGKILL else sig)

    async def gives_up(self: LaunchedPlugin) -> None:
        self.kill_group()
        await self.wait_exit(1.0)

    patch(LaunchedPlugin, "_signal_group", no_sigkill)
    patch(LaunchedPlugin, "kill", gives_up)


# -- hidden bugs: found by fuzzing, not by any fixed case (tests/fuzz/test_fuzz_finds_bugs.py) ----
# Not in FAULTS: the host mutant matrix wants a case that fails for each of those.


class _AgesFromTheNewest(deque[float]):
    """Failure times whose "oldest" is read from the wrong end: the supervisor's pruning
    compares the newest failure with the window, finds it recent, and drops nothing."""

    def __getitem__(self, index: Any) -> Any:
        return super().__getitem__(-1 if index == 0 else index)


@hidden(
    "restart-counter-never-resets",
    "counts every failure since the plugin was enabled against restart_limit, ignoring "
    "restart_window (SV-8, SV-9): the window's pruning reads the wrong end of the history",
)
def _() -> None:
    init = Supervisor.__init__

    def never_pruned(self: Supervisor, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.policy.failure_times = _AgesFromTheNewest()

    patch(Supervisor, "__init__", never_pruned)
