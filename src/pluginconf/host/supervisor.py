"""Supervision of one plugin (SPEC §17): start, watch, restart with backoff, give up, stop.

States and the only transitions (SV-1); each one is a StateEvent (SV-2):

  (none), stopped --enable--> starting
  starting --handshake, SERVING, Implemented, activation ok--> active
  starting --start failure--> crashed          starting --activation AppError--> failed
  active --unexpected exit or failed health check--> crashed
  crashed --restart allowed--> restarting      crashed --restart limit--> failed
  restarting --backoff elapsed--> starting
  starting, active --stop sequence done--> stopped
  crashed, restarting, failed --disable--> stopped
  failed --enable--> starting
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import empty_pb2
from google.protobuf.message import Message

from pluginconf.goplugin import grpc_stdio_pb2, grpc_stdio_pb2_grpc
from pluginconf.host.breaker import CircuitBreaker
from pluginconf.host.broker import HostBroker
from pluginconf.host.client import (
    ClientConfig,
    HookError,
    NotServing,
    PluginClient,
    PluginUnavailable,
)
from pluginconf.host.errors import LaunchError, describe_status
from pluginconf.host.hostapi import InMemoryHostAPI
from pluginconf.host.launcher import LaunchedPlugin, LaunchSpec, spawn
from pluginconf.protocol.mtls import der_to_pem
from pluginconf.v1 import common_pb2, hooks_pb2, hostapi_pb2_grpc

log = logging.getLogger("pluginconf.host.supervisor")


class PluginState(enum.StrEnum):
    STARTING = "starting"
    ACTIVE = "active"
    CRASHED = "crashed"
    RESTARTING = "restarting"
    FAILED = "failed"
    STOPPED = "stopped"


S = PluginState
ALLOWED: frozenset[tuple[PluginState | None, PluginState]] = frozenset(
    {
        (None, S.STARTING), (S.STOPPED, S.STARTING), (S.FAILED, S.STARTING),
        (S.STARTING, S.ACTIVE), (S.STARTING, S.CRASHED), (S.STARTING, S.FAILED),
        (S.ACTIVE, S.CRASHED), (S.CRASHED, S.RESTARTING), (S.CRASHED, S.FAILED),
        (S.RESTARTING, S.STARTING),
        (S.STARTING, S.STOPPED), (S.ACTIVE, S.STOPPED), (S.CRASHED, S.STOPPED),
        (S.RESTARTING, S.STOPPED), (S.FAILED, S.STOPPED),
    }
)  # fmt: skip


@dataclass(frozen=True)
class StateEvent:
    plugin_id: str
    old: PluginState | None
    new: PluginState
    at: float  # wall clock, seconds since the epoch
    reason: str = ""
    error_kind: str = ""
    exit_status: int | None = None
    stderr_tail: str = ""


@dataclass(frozen=True)
class SupervisorConfig:
    client: ClientConfig = field(default_factory=ClientConfig)
    health_interval_s: float = 5.0
    health_failures: int = 1
    backoff_base_s: float = 0.2
    backoff_max_s: float = 30.0
    # A plugin active this long without interruption starts its backoff afresh (SV-8).
    stable_after_s: float = 60.0
    restart_limit: int = 3
    restart_window_s: float = 3600.0
    breaker_threshold: int = 3
    breaker_cooldown_s: float = 30.0
    deactivate_timeout_s: float = 10.0
    shutdown_timeout_s: float = 2.0
    exit_grace_s: float = 2.0
    term_grace_s: float = 2.0


@dataclass
class _Failure(Exception):
    reason: str
    error_kind: str
    exit_status: int | None = None
    stderr_tail: str = ""
    # An activation AppError: the plugin is healthy but refused; no restart (LC-4, LC-7).
    final: bool = False


class Supervisor:
    def __init__(
        self,
        plugin_id: str,
        spec: LaunchSpec,
        config: SupervisorConfig | None = None,
        configuration: dict[str, str] | None = None,
        host_api: InMemoryHostAPI | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.plugin_id = plugin_id
        self.spec = spec
        self.config = config or SupervisorConfig()
        self.configuration = dict(configuration or {})
        self.host_api = host_api
        self._rng = rng or random.Random()
        self.state: PluginState | None = None
        self.events: list[StateEvent] = []
        self.listeners: list[Callable[[StateEvent], None]] = []
        self.last_error = ""
        self.client: PluginClient | None = None
        self.process: LaunchedPlugin | None = None
        self._broker: HostBroker | None = None
        self._changed = asyncio.Condition()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failure_times: deque[float] = deque()
        # What the plugin printed after its handshake, through GRPCStdio (IO-7).
        self.stdio_tail: deque[tuple[str, str]] = deque(maxlen=200)
        self._stdio_task: asyncio.Task[None] | None = None
        self._consecutive = 0
        # Serialises OnConfigurationChange calls to this plugin (LC-3).
        self._configuration_lock = asyncio.Lock()

    # -- public ---------------------------------------------------------------------------

    async def enable(self) -> bool:
        """Start supervising (again). Enabling a failed plugin clears its history (SV-9).

        Whether supervision started now (False: it was already running).
        """
        if self._task is not None and not self._task.done():
            return False
        if self.state is S.FAILED:
            self._failure_times.clear()
            self._consecutive = 0
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
        if (self.state, new) not in ALLOWED:
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
            except _Failure as failure:
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
                active_since = time.monotonic()
                await self._transition(S.ACTIVE)
                outcome = await self._watch()
                if outcome is None:
                    await self._stop_sequence()
                    await self._transition(S.STOPPED, "disabled")
                    return
                await self._cleanup()
                await self._crashed(outcome, active_for_s=time.monotonic() - active_since)
            if self.state is S.FAILED:
                return
            delay = self._backoff_delay()
            await self._transition(S.RESTARTING, f"restart in {delay:.3f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
                await self._transition(S.STOPPED, "disabled while restarting")
                return

    async def _crashed(self, failure: _Failure, active_for_s: float) -> None:
        await self._transition(
            S.CRASHED,
            failure.reason,
            error_kind=failure.error_kind,
            exit_status=failure.exit_status,
            stderr_tail=failure.stderr_tail,
        )
        if active_for_s >= self.config.stable_after_s:
            self._consecutive = 0
        self._consecutive += 1
        now = time.monotonic()
        self._failure_times.append(now)
        while self._failure_times and now - self._failure_times[0] > self.config.restart_window_s:
            self._failure_times.popleft()
        if len(self._failure_times) >= self.config.restart_limit:
            await self._transition(
                S.FAILED,
                f"restart_limit: {len(self._failure_times)} failures within "
                f"{self.config.restart_window_s:g}s; last: {failure.reason}",
                error_kind="restart_limit",
            )

    def _backoff_delay(self) -> float:
        ceiling = min(
            self.config.backoff_max_s, self.config.backoff_base_s * 2 ** (self._consecutive - 1)
        )
        return self._rng.uniform(0.0, ceiling)

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
        start.result()  # a _Failure is raised from here
        return True

    async def _start_process(self) -> None:
        await self._launch()
        assert self.process is not None
        assert self.process.channel is not None
        client = PluginClient(
            self.plugin_id,
            self.process.channel,
            self.config.client,
            CircuitBreaker(self.config.breaker_threshold, self.config.breaker_cooldown_s),
        )
        try:
            await client.wait_serving()
            self._stdio_task = asyncio.create_task(self._mirror_stdio(self.process.channel))
            await self._load_implemented(client)
            broker_id = await self._serve_host_api()
            await self._activate(client, broker_id)
        except NotServing as exc:
            raise self._process_failure(str(exc), NotServing.kind) from None
        except HookError as exc:
            raise self._process_failure(str(exc), exc.kind) from None
        self.client = client

    async def _launch(self) -> None:
        """Spawn, read the handshake, connect. The process is ``self.process`` from the
        spawn on, so that it is known (and cleaned up by the caller) while it starts."""
        try:
            self.process = await spawn(self.spec)
            await self.process.read_handshake()
            await self.process.connect()
        except LaunchError as exc:
            reason = str(exc).splitlines()[0]
            if exc.line is not None:
                reason += f"; handshake line {exc.line!r}"
            raise _Failure(reason, exc.kind, exc.exit_status, exc.stderr_tail) from None

    async def _load_implemented(self, client: PluginClient) -> None:
        try:
            await client.load_implemented()
        except HookError as exc:
            # HK-7: any non-OK status, UNIMPLEMENTED included, rejects the plugin.
            raise self._process_failure(str(exc), "implemented_failed") from None

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
                raise _Failure(
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
                raise _Failure(
                    _app_error("OnActivate", reply.error), "activation_failed", final=True
                )

    def _process_failure(self, reason: str, kind: str) -> _Failure:
        assert self.process is not None
        return _Failure(
            reason, kind, self.process.process.returncode, "\n".join(self.process.stderr_tail)
        )

    async def _serve_host_api(self) -> int:
        if self.host_api is None or self.process is None or self.process.channel is None:
            return 0
        creds = None
        if self.process.client_cert is not None and self.process.handshake is not None:
            assert self.process.handshake.server_cert_der is not None
            creds = grpc.ssl_server_credentials(
                [(self.process.client_cert.key_pem, self.process.client_cert.cert_pem)],
                root_certificates=der_to_pem(self.process.handshake.server_cert_der),
                require_client_auth=True,
            )
        self._broker = HostBroker(self.process.channel, self.process.socket_dir, creds)
        await self._broker.start()
        api = self.host_api
        return await self._broker.serve(
            lambda server: hostapi_pb2_grpc.add_HostAPIServicer_to_server(api, server)
        )

    async def _mirror_stdio(self, channel: grpc.aio.Channel) -> None:
        """Log what the plugin writes to stdout/stderr, as GRPCStdio serves it (IO-7, IO-8)."""
        plugin_log = logging.getLogger(f"pluginconf.host.plugin.{self.plugin_id}")
        names = {
            grpc_stdio_pb2.StdioData.STDOUT: "stdout",
            grpc_stdio_pb2.StdioData.STDERR: "stderr",
        }
        # Chunks are not lines: a line may come in pieces, so each channel keeps its partial.
        partial: dict[str, bytes] = {}

        def emit(name: str, raw: bytes) -> None:
            line = raw.decode("utf-8", "replace").rstrip("\r")
            self.stdio_tail.append((name, line))
            plugin_log.info("%s: %s", name, line)

        call = grpc_stdio_pb2_grpc.GRPCStdioStub(channel).StreamStdio(empty_pb2.Empty())
        try:
            async for data in call:
                name = names.get(data.channel, "stdio")
                *lines, rest = (partial.pop(name, b"") + data.data).split(b"\n")
                for raw in lines:
                    emit(name, raw)
                if rest:
                    partial[name] = rest
        except grpc.aio.AioRpcError as exc:
            # A plugin without GRPCStdio, or a stream that ends, is not a failure (IO-8).
            plugin_log.debug("GRPCStdio ended: %s", exc.code().name)
        finally:
            call.cancel()
            for name, raw in partial.items():
                emit(name, raw)

    async def _watch(self) -> _Failure | None:
        """Wait for a stop request (None), the process exiting, or health failing."""
        assert self.process is not None
        assert self.client is not None
        process = self.process
        exited = asyncio.ensure_future(process.process.wait())
        stop = asyncio.ensure_future(self._stop.wait())
        health = asyncio.ensure_future(self._health_loop(self.client))
        try:
            done, _ = await asyncio.wait(
                {exited, stop, health}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (exited, stop, health):
                task.cancel()
        if stop in done:
            return None
        if exited in done:
            status = process.process.returncode
            assert status is not None
            return _Failure(
                f"plugin exited unexpectedly ({describe_status(status)})",
                "unexpected_exit",
                status,
                "\n".join(process.stderr_tail),
            )
        reason = health.result()
        await process.kill()  # SV-7: a plugin failing its health check gets no grace
        return _Failure(
            f"health_check_failed: {reason}", "health_check_failed", process.process.returncode
        )

    async def _health_loop(self, client: PluginClient) -> str:
        failures = 0
        while True:
            await asyncio.sleep(self.config.health_interval_s)
            problem = await client.check_health()
            failures = failures + 1 if problem else 0
            if problem and failures >= self.config.health_failures:
                return problem

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
        if self.process is not None:
            await self.process.stop(
                self.config.shutdown_timeout_s, self.config.exit_grace_s, self.config.term_grace_s
            )

    async def _cleanup(self) -> None:
        self.client = None
        if self._stdio_task is not None:
            self._stdio_task.cancel()
            await asyncio.wait({self._stdio_task})
            self._stdio_task = None
        if self._broker is not None:
            await self._broker.close()
            self._broker = None
        if self.process is not None:
            await self.process.close()
            self.process = None


def _app_error(hook: str, error: Any) -> str:
    return f"{hook} answered an application error {error.code}: {error.message}"
