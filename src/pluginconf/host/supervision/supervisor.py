"""Supervision of one plugin (SPEC §17): the state machine of SV-1 and its restart policy.

The supervisor starts a process (process.py), watches it, and on a crash restarts it after a
backoff or gives the plugin up (policy.py), reporting each change of state as a StateEvent
(states.py, SV-2). It stops a plugin by the stop sequence (SV-14): OnDeactivate, then the
process's own stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from pluginconf.host.client import HookError, NotServing, PluginClient, PluginUnavailable
from pluginconf.host.hostapi import InMemoryHostAPI
from pluginconf.host.launcher import LaunchedPlugin, LaunchSpec
from pluginconf.host.supervision.clock import Clock, SystemClock
from pluginconf.host.supervision.config import SupervisorConfig
from pluginconf.host.supervision.policy import RestartPolicy
from pluginconf.host.supervision.process import PluginFailure, PluginProcess
from pluginconf.host.supervision.states import PluginState, StateEvent, transition_allowed
from pluginconf.host.supervision.stdio import StdioMirror
from pluginconf.v1 import common_pb2, hooks_pb2

log = logging.getLogger("pluginconf.host.supervisor")
S = PluginState


class Supervisor:
    def __init__(
        self,
        plugin_id: str,
        spec: LaunchSpec,
        config: SupervisorConfig | None = None,
        configuration: dict[str, str] | None = None,
        host_api: InMemoryHostAPI | None = None,
        rng: random.Random | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.plugin_id = plugin_id
        self.spec = spec
        self.config = config or SupervisorConfig()
        self.configuration = dict(configuration or {})
        self.host_api = host_api
        self.clock: Clock = clock or SystemClock()
        self.policy = RestartPolicy(self.config, self.clock, rng)
        self.state: PluginState | None = None
        self.events: list[StateEvent] = []
        self.listeners: list[Callable[[StateEvent], None]] = []
        self.last_error = ""
        # The active process's client: set once activation succeeded, None when not active.
        self.client: PluginClient | None = None
        self._process: PluginProcess | None = None
        self._changed = asyncio.Condition()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # What the plugin printed after its handshake, through GRPCStdio (IO-7).
        self.stdio = StdioMirror(plugin_id)
        # Serialises OnConfigurationChange calls to this plugin (LC-3).
        self._configuration_lock = asyncio.Lock()

    @property
    def process(self) -> LaunchedPlugin | None:
        """The plugin's process, from its spawn until it is reaped."""
        return self._process.launched if self._process is not None else None

    @property
    def stdio_tail(self) -> deque[tuple[str, str]]:
        return self.stdio.tail

    # -- public ---------------------------------------------------------------------------

    async def enable(self) -> bool:
        """Start supervising (again). Enabling a failed plugin clears its history (SV-9).

        Whether supervision started now (False: it was already running).
        """
        if self._task is not None and not self._task.done():
            return False
        if self.state is S.FAILED:
            self.policy.clear()
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name=f"supervise {self.plugin_id}")
        return True

    async def disable(self) -> None:
        """Stop the plugin with the stop sequence (SV-14) and leave it stopped."""
        self._stop.set()
        if self._task is not None:
            # Not `await task`: a task cancelled earlier must not cancel this caller.
            await asyncio.wait({self._task})
            if not self._task.cancelled() and self._task.exception() is not None:
                raise self._task.exception()  # type: ignore[misc]
        if self.state in (S.CRASHED, S.RESTARTING, S.FAILED):
            await self._transition(S.STOPPED, "disabled")

    async def wait_for(self, *states: PluginState, timeout_s: float = 30.0) -> PluginState:
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: self.state in states)
        assert self.state is not None
        return self.state

    async def wait_for_event(
        self, state: PluginState, after: int = 0, timeout_s: float = 30.0
    ) -> StateEvent:
        """Wait for a transition into ``state`` among the events from index ``after`` on."""

        def found() -> StateEvent | None:
            return next((e for e in self.events[after:] if e.new is state), None)

        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: found() is not None)
        event = found()
        assert event is not None
        return event

    async def call(self, hook: str, request: Message, timeout_s: float | None = None) -> Any:
        """Call a hook on the active plugin; typed HookError otherwise."""
        if self.state is not S.ACTIVE or self.client is None:
            raise PluginUnavailable(
                self.plugin_id, hook, f"the plugin is {self.state or 'not enabled'}"
            )
        return await self.client.call(hook, request, timeout_s=timeout_s)

    async def change_configuration(
        self, configuration: dict[str, str]
    ) -> common_pb2.AppError | None:
        """A new configuration (LC-3, LC-5): stored, and sent when the plugin is active.

        Changes to one plugin are sent one at a time, in the order they are made. Returns the
        plugin's AppError, if it answered one: that is logged and the plugin stays active
        with the new configuration. Raises PluginUnavailable when the plugin is not active
        (it gets the configuration at its next start, LC-1), or the HookError of the call.
        A plugin that does not list OnConfigurationChange counts as having accepted it.
        """
        async with self._configuration_lock:
            self._store_configuration(configuration)
            client = self.client
            if self.state is not S.ACTIVE or client is None:
                raise PluginUnavailable(
                    self.plugin_id,
                    "OnConfigurationChange",
                    f"the plugin is {self.state or 'not enabled'}; "
                    "the configuration is kept for its next start",
                )
            if "OnConfigurationChange" not in client.implemented:
                return None
            request = hooks_pb2.OnConfigurationChangeRequest(configuration=self.configuration)
            reply = await client.call("OnConfigurationChange", request)
        if not reply.HasField("error"):
            return None
        log.warning(
            "plugin %s: OnConfigurationChange answered an application error %s: %s; "
            "the plugin stays active with the new configuration",
            self.plugin_id,
            reply.error.code,
            reply.error.message,
        )
        error: common_pb2.AppError = reply.error
        return error

    def _store_configuration(self, configuration: dict[str, str]) -> None:
        self.configuration = dict(configuration)
        if self.host_api is not None:
            # HostAPI's GetConfiguration answers it from the moment the call is sent (HA-11).
            self.host_api.configuration = dict(configuration)

    # -- state machine --------------------------------------------------------------------

    async def _transition(self, new: PluginState, reason: str = "", **details: Any) -> None:
        if not transition_allowed(self.state, new):
            raise RuntimeError(f"supervisor bug: transition {self.state} -> {new} is not allowed")
        event = StateEvent(self.plugin_id, self.state, new, time.time(), reason, **details)
        self.state = new
        self.events.append(event)
        if reason and new in (S.CRASHED, S.FAILED):
            self.last_error = reason
        log.info("plugin %s: %s -> %s %s", self.plugin_id, event.old, new, reason)
        if event.exit_status is not None or event.stderr_tail:
            log.warning(
                "plugin %s: exit status %s; stderr (last lines):\n  %s",
                self.plugin_id,
                event.exit_status,
                "\n  ".join(event.stderr_tail.splitlines()) or "(empty)",
            )
        for listener in list(self.listeners):
            listener(event)
        async with self._changed:
            self._changed.notify_all()

    async def _run(self) -> None:
        try:
            await self._supervise()
        except BaseException as exc:
            # Cancelled (e.g. the host's event loop is shutting down), or a bug: no plugin may
            # outlive its supervisor. Kill, reap and clean up, then record the stop.
            await self._cleanup()
            if self.state not in (None, S.STOPPED):
                cancelled = isinstance(exc, asyncio.CancelledError)
                await self._transition(
                    S.STOPPED, "supervisor cancelled" if cancelled else f"supervisor error: {exc!r}"
                )
            raise

    async def _supervise(self) -> None:
        while True:
            await self._transition(S.STARTING)
            try:
                started = await self._start_unless_stopped()
            except PluginFailure as failure:
                if failure.final:
                    await self._stop_process()  # SV-14 without OnDeactivate (LC-7)
                await self._cleanup()
                if self._stop.is_set():
                    await self._transition(S.STOPPED, "disabled while starting")
                    return
                if failure.final:
                    await self._transition(S.FAILED, failure.reason, error_kind=failure.error_kind)
                    return
                await self._crashed(failure, active_for_s=0.0)
            else:
                if not started:
                    # Disabled before the start completed: no OnDeactivate (LC-9).
                    await self._stop_process()
                    await self._cleanup()
                    await self._transition(S.STOPPED, "disabled while starting")
                    return
                active_since = self.clock.monotonic()
                await self._transition(S.ACTIVE)
                assert self._process is not None
                outcome = await self._process.watch(self._stop)
                if outcome is None:
                    await self._stop_sequence()
                    await self._transition(S.STOPPED, "disabled")
                    return
                await self._cleanup()
                await self._crashed(outcome, active_for_s=self.clock.monotonic() - active_since)
            if self.state is S.FAILED:
                return
            delay = self.policy.backoff_delay()
            await self._transition(S.RESTARTING, f"restart in {delay:.3f}s")
            if await self.clock.wait(self._stop, delay):
                await self._transition(S.STOPPED, "disabled while restarting")
                return

    async def _crashed(self, failure: PluginFailure, active_for_s: float) -> None:
        await self._transition(
            S.CRASHED,
            failure.reason,
            error_kind=failure.error_kind,
            exit_status=failure.exit_status,
            stderr_tail=failure.stderr_tail,
        )
        self.policy.record_failure(active_for_s)
        if self.policy.gives_up():
            await self._transition(
                S.FAILED, self.policy.give_up_reason(failure.reason), error_kind="restart_limit"
            )

    # -- one process ----------------------------------------------------------------------

    async def _start_unless_stopped(self) -> bool:
        """Start a process; False when disabled first, so that a stop never waits for a
        start timeout. The half-started process is left for the caller to stop."""
        start = asyncio.ensure_future(self._start_process())
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({start, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not start.done():
                start.cancel()
                await asyncio.wait({start})
        if start.cancelled():
            return False
        start.result()  # a PluginFailure is raised from here
        return True

    async def _start_process(self) -> None:
        """Launch a process and activate it (LC-1); ``self.client`` once it is ready."""
        process = self._process = PluginProcess(
            self.plugin_id, self.spec, self.config, self.clock, self.stdio, self.host_api
        )
        await process.launch()
        client = process.connect_client()
        try:
            await client.wait_serving()
            process.start_stdio()
            await self._load_implemented(client)
            broker_id = await process.serve_host_api()
            await self._activate(client, broker_id)
        except NotServing as exc:
            raise process.failure(str(exc), NotServing.kind) from None
        except HookError as exc:
            raise process.failure(str(exc), exc.kind) from None
        self.client = client

    async def _load_implemented(self, client: PluginClient) -> None:
        try:
            await client.load_implemented()
        except HookError as exc:
            # HK-7: any non-OK status, UNIMPLEMENTED included, rejects the plugin.
            assert self._process is not None
            raise self._process.failure(str(exc), "implemented_failed") from None

    async def _activate(self, client: PluginClient, broker_id: int) -> None:
        """LC-1: the complete configuration, then OnActivate; an AppError is final (LC-4, LC-7)."""
        if "OnConfigurationChange" in client.implemented:
            async with self._configuration_lock:  # never concurrent with a change (LC-3)
                reply = await client.call(
                    "OnConfigurationChange",
                    hooks_pb2.OnConfigurationChangeRequest(configuration=self.configuration),
                    use_breaker=False,
                )
            if reply.HasField("error"):
                raise PluginFailure(
                    _app_error("OnConfigurationChange", reply.error),
                    "configuration_rejected",
                    final=True,
                )
        if "OnActivate" in client.implemented:
            reply = await client.call(
                "OnActivate",
                hooks_pb2.OnActivateRequest(plugin_id=self.plugin_id, host_api_broker_id=broker_id),
                use_breaker=False,
            )
            if reply.HasField("error"):
                raise PluginFailure(
                    _app_error("OnActivate", reply.error), "activation_failed", final=True
                )

    async def _stop_sequence(self) -> None:
        """SV-14: OnDeactivate, Shutdown, grace, SIGTERM, SIGKILL; reap; clean up."""
        if self.client is not None and "OnDeactivate" in self.client.implemented:
            with contextlib.suppress(HookError):
                await self.client.call(
                    "OnDeactivate",
                    hooks_pb2.OnDeactivateRequest(),
                    use_breaker=False,
                    timeout_s=self.config.deactivate_timeout_s,
                )
        await self._stop_process()
        await self._cleanup()

    async def _stop_process(self) -> None:
        """SV-14 after OnDeactivate: Shutdown, exit wait, SIGTERM, SIGKILL."""
        if self._process is not None:
            await self._process.stop()

    async def _cleanup(self) -> None:
        self.client = None
        if self._process is not None:
            await self._process.close()
            self._process = None


def _app_error(hook: str, error: Any) -> str:
    return f"{hook} answered an application error {error.code}: {error.message}"
