"""What a host case is given: the host under test, driven through its adapter, and fakes.

A case loads fake plugins (pluginconf.fake, run by the host as ``python -m pluginconf.fake
SCENARIO``) whose scenario files send every event to the suite's Observer. It fires hooks
and HTTP requests through the host, and asserts on what the fakes observed. Everything a
case loaded is unloaded after it; a plugin process that outlives that is reported and killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil

from pluginconf.control import control_pb2, control_pb2_grpc
from pluginconf.runner.adapter_process import INHERITED_DECOYS, SCRUBBED_DECOYS, AdapterProcess
from pluginconf.runner.fake_start import describe_start
from pluginconf.runner.host_capabilities import Capability, HostCapabilities
from pluginconf.runner.model import CaseSkipped, fail
from pluginconf.runner.observer import Observed, ObserverServer, describe_events
from pluginconf.runner.options import HostSuiteOptions
from pluginconf.runner.targets import AutoMTLS
from pluginconf.v1 import hooks_pb2

# Policy fields in milliseconds, as cases give them in seconds.
_POLICY_SECONDS = {
    "start_timeout_s": "start_timeout_ms",
    "hook_timeout_s": "hook_timeout_ms",
    "health_interval_s": "health_interval_ms",
    "health_timeout_s": "health_timeout_ms",
    "backoff_base_s": "backoff_base_ms",
    "backoff_max_s": "backoff_max_ms",
    "restart_window_s": "restart_window_ms",
    "breaker_cooldown_s": "breaker_cooldown_ms",
    "stop_grace_s": "stop_grace_ms",
}
_POLICY_PLAIN = ("restart_limit", "breaker_threshold", "auto_mtls")
# How long the suite waits for a plugin process to be gone after its host stopped it.
_GONE_WAIT_S = 10.0


def host_policy(**policy: Any) -> control_pb2.HostPolicy:
    """A HostPolicy from seconds and counts: ``host_policy(start_timeout_s=2, restart_limit=1)``."""
    message = control_pb2.HostPolicy()
    for key, value in policy.items():
        if key in _POLICY_SECONDS:
            setattr(message, _POLICY_SECONDS[key], max(1, round(value * 1000)))
        elif key in _POLICY_PLAIN:
            setattr(message, key, value)
        else:
            raise TypeError(f"unknown host policy field {key!r}")
    return message


def describe_status(status: control_pb2.PluginStatus) -> str:
    lines = [f"plugin {status.plugin_id!r}: state {status.state}, pid {status.pid or '-'}"]
    if status.last_error:
        lines.append(f"  last error: {status.last_error}")
    for t in status.transitions[-12:]:
        line = f"  {t.old_state or '(none)'} -> {t.new_state}"
        if t.reason:
            line += f": {t.reason.splitlines()[0][:200]}"
        if t.error_kind:
            line += f" [{t.error_kind}]"
        if t.has_exit_status:
            line += f" (exit {t.exit_status})"
        lines.append(line)
    tails = [t.stderr_tail for t in status.transitions if t.stderr_tail]
    if tails:
        lines.append("  the plugin's last stderr lines, as the host reported them:")
        lines += [f"    {text}" for text in tails[-1].splitlines()[-8:]]
    return "\n".join(lines)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie counts as alive: nobody has reaped it."""
    try:
        return psutil.Process(pid).is_running()
    except psutil.NoSuchProcess:
        return False


def is_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class FakePlugin:
    """One fake plugin the case loaded: its id, what it observed, and the host's view of it."""

    def __init__(
        self, target: HostTarget, plugin_id: str, scenario: dict[str, Any], auto_mtls: bool
    ) -> None:
        self.target = target
        self.plugin_id = plugin_id
        self.scenario = scenario
        self.auto_mtls = auto_mtls  # loaded with AutoMTLS (HostPolicy.auto_mtls)

    # -- what the fake observed -------------------------------------------------------------

    def events(self, event: str | None = None, pid: int | None = None) -> list[Observed]:
        return self.target.observer.select(self.plugin_id, event, pid)

    def pids(self) -> list[int]:
        """Every process of this plugin that started, in order."""
        return [e.pid for e in self.events("started")]

    def calls(self, hook: str | None = None, pid: int | None = None) -> list[Observed]:
        return [e for e in self.events("call", pid) if hook is None or e.get("hook") == hook]

    def evidence(self) -> str:
        return f"what {self.plugin_id!r} observed:\n" + describe_events(self.events())

    def start_evidence(self) -> str:
        """What each process of this plugin saw at its start: the variables it was given
        wrong, and why it refused to serve if it did."""
        started = self.events("started")
        if not started:
            return f"no process of {self.plugin_id!r} reported its start"
        lines = [f"what the processes of {self.plugin_id!r} saw at their start:"]
        for event in started:
            exiting = next(iter(self.events("exiting", event.pid)), None)
            lines.append(
                describe_start(event, exiting, self.target.adapter.inherited, self.auto_mtls)
            )
        return "\n".join(lines)

    async def wait_event(
        self,
        event: str,
        *,
        timeout_s: float = 10.0,
        where: Callable[[Observed], bool] = lambda _: True,
        why: str = "",
        requirement: str | Sequence[str] = (),
    ) -> Observed:
        """The first such event; fails the case with the evidence when none comes in time,
        breaking ``requirement`` (all the case cites when none is named)."""
        found = await self.target.observer.wait_for(
            lambda e: e.label == self.plugin_id and e.event == event and where(e), timeout_s
        )
        if found is None:
            fail(
                f"{why or f'expected a {event!r} event'}: none came from plugin "
                f"{self.plugin_id!r} within {timeout_s:g}s\n{self.evidence()}",
                requirement=requirement,
            )
        return found

    async def wait_started(self, count: int = 1, timeout_s: float = 15.0) -> list[int]:
        """Wait until ``count`` processes of this plugin have started; their pids."""
        events = await self.target.observer.wait_count(
            lambda e: e.label == self.plugin_id and e.event == "started", count, timeout_s
        )
        if len(events) < count:
            fail(
                f"expected {count} process(es) of plugin {self.plugin_id!r} to start within "
                f"{timeout_s:g}s, saw {len(events)}\n{self.evidence()}"
            )
        return [e.pid for e in events]

    # -- what the host says -----------------------------------------------------------------

    async def status(self) -> control_pb2.PluginStatus:
        return await self.target.control("reading the plugin's status").GetPluginStatus(
            control_pb2.PluginRef(plugin_id=self.plugin_id), timeout=10
        )

    async def wait_status(
        self,
        predicate: Callable[[control_pb2.PluginStatus], bool],
        what: str,
        timeout_s: float = 15.0,
    ) -> control_pb2.PluginStatus:
        """Watch the plugin (WatchPlugin) until ``predicate`` holds; fail with evidence if not."""
        self.target.step(f"waiting for plugin {self.plugin_id!r} to be {what}")
        found, last = await self._watch(predicate, timeout_s)
        if found is not None:
            return found
        shown = describe_status(last) if last is not None else "(the host sent no status)"
        fail(
            f"plugin {self.plugin_id!r} was not {what} within {timeout_s:g}s; the host "
            f"reports:\n{shown}\n{self.start_evidence()}\n{self.evidence()}"
        )

    async def watch_until(
        self, predicate: Callable[[control_pb2.PluginStatus], bool], timeout_s: float
    ) -> control_pb2.PluginStatus | None:
        """The first status (WatchPlugin: now, then at each change) that satisfies
        ``predicate``; None after ``timeout_s`` or when the stream ends."""
        found, _ = await self._watch(predicate, timeout_s)
        return found

    async def _watch(
        self, predicate: Callable[[control_pb2.PluginStatus], bool], timeout_s: float
    ) -> tuple[control_pb2.PluginStatus | None, control_pb2.PluginStatus | None]:
        """The first status that satisfies ``predicate`` (or None), and the last one seen."""
        watch = self.target.control().WatchPlugin(control_pb2.PluginRef(plugin_id=self.plugin_id))
        last: control_pb2.PluginStatus | None = None
        try:
            async with asyncio.timeout(timeout_s):
                async for status in watch:
                    last = status
                    if predicate(status):
                        return status, last
        except TimeoutError:
            pass
        finally:
            watch.cancel()
        return None, last

    async def wait_state(
        self, *states: str, timeout_s: float = 15.0, after: int = 0
    ) -> control_pb2.PluginStatus:
        """Wait for a transition into one of ``states`` at index ``after`` or later."""
        return await self.wait_status(
            lambda s: any(t.new_state in states for t in s.transitions[after:]),
            " or ".join(states) + (f" (after transition {after})" if after else ""),
            timeout_s,
        )

    async def wait_active(self, timeout_s: float = 15.0) -> control_pb2.PluginStatus:
        """Wait until the plugin is active; fail at once, with what its processes saw at
        their start, when the host gives up on starting it."""
        gave_up = {"failed"} | (set() if self.target.supports(Capability.RESTARTS) else {"crashed"})
        status = await self.wait_status(
            lambda s: s.state == "active" or s.state in gave_up, "active", timeout_s
        )
        if status.state != "active":
            fail(
                f"plugin {self.plugin_id!r} did not start: the host reports it "
                f"{status.state}\n{describe_status(status)}\n{self.start_evidence()}\n"
                f"{self.evidence()}"
            )
        return status

    async def wait_given_up(self, timeout_s: float = 20.0) -> control_pb2.PluginStatus:
        """Wait until the host has given up on the plugin: `failed`, or `crashed` when the
        host has no restarts (its plugins stay crashed)."""
        if self.target.supports(Capability.RESTARTS):
            return await self.wait_state("failed", timeout_s=timeout_s)
        return await self.wait_state("crashed", "failed", timeout_s=timeout_s)

    async def enable(self) -> control_pb2.PluginStatus:
        return await self.target.control(f"enabling {self.plugin_id!r}").EnablePlugin(
            control_pb2.PluginRef(plugin_id=self.plugin_id), timeout=15
        )

    async def disable(self, timeout_s: float = 60.0) -> control_pb2.PluginStatus:
        return await self.target.control(f"disabling {self.plugin_id!r}").DisablePlugin(
            control_pb2.PluginRef(plugin_id=self.plugin_id), timeout=timeout_s
        )

    # -- hooks through the host -------------------------------------------------------------

    async def command(
        self, command: str = "/cmd", timeout_s: float = 60.0, **fields: Any
    ) -> control_pb2.CommandOutcome:
        request = hooks_pb2.ExecuteCommandRequest(command=command, **fields)
        return await self.command_request(request, timeout_s)

    async def command_request(
        self, request: hooks_pb2.ExecuteCommandRequest, timeout_s: float = 60.0
    ) -> control_pb2.CommandOutcome:
        reply = await self.target.fire(
            control_pb2.FireHookRequest(
                execute_command=control_pb2.ExecuteCommand(
                    plugin_id=self.plugin_id, request=request
                )
            ),
            timeout_s,
        )
        return reply.command

    async def configure(
        self, configuration: Mapping[str, str], timeout_s: float = 60.0
    ) -> control_pb2.ConfigurationOutcome:
        reply = await self.target.fire(
            control_pb2.FireHookRequest(
                configuration_change=control_pb2.ConfigurationChange(
                    plugin_id=self.plugin_id, configuration=dict(configuration)
                )
            ),
            timeout_s,
        )
        return reply.configuration

    def url(self, path: str) -> str:
        """The plugin's ``path`` under the host's HTTP front, which the case then needs."""
        self.target.require(Capability.HTTP_FRONT)
        return f"{self.target.http_base_url}/plugins/{self.plugin_id}{path}"

    def kill(self, pid: int | None = None, sig: signal.Signals = signal.SIGKILL) -> int:
        """Kill a process of this plugin (the latest to start, by default); its pid."""
        pids = self.pids()
        if pid is None:
            if not pids:
                fail(f"plugin {self.plugin_id!r} has no process to kill\n{self.evidence()}")
            pid = pids[-1]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        return pid


@dataclass
class Cleanup:
    """What was wrong after a case: leftover processes, unloads that failed."""

    problems: list[str] = field(default_factory=list)
    # The requirements the problems break, when each names its own; see ``unattributed``.
    violated: list[str] = field(default_factory=list)
    # A problem that names no requirement: it breaks every one the case cites.
    unattributed: bool = False

    def add(self, problem: str, *requirements: str) -> None:
        self.problems.append(problem)
        if not requirements:
            self.unattributed = True
        self.violated += [r for r in requirements if r not in self.violated]

    def merge(self, other: Cleanup) -> None:
        self.problems += other.problems
        self.violated += [r for r in other.violated if r not in self.violated]
        self.unattributed = self.unattributed or other.unattributed

    @property
    def message(self) -> str | None:
        return "\n".join(self.problems) or None


class HostTarget:
    """The host under test for one case."""

    def __init__(
        self,
        options: HostSuiteOptions,
        adapter: AdapterProcess,
        observer: ObserverServer,
        workdir: Path,
        serial: Callable[[], int],
        requirements: Sequence[str] = (),
    ) -> None:
        self.options = options
        self.adapter = adapter
        self.observer = observer
        self.workdir = workdir
        self._serial = serial
        # The requirements the running case cites: a missing capability fails those it serves.
        self.requirements = tuple(requirements)
        self.current_step = "starting"
        self.plugins: list[FakePlugin] = []
        self._http: httpx.AsyncClient | None = None
        # Hosts of their own for this case (with_scrubbed_decoys), closed with it.
        self._own_hosts: list[HostTarget] = []
        self._parent: HostTarget | None = None

    # -- plumbing ---------------------------------------------------------------------------

    def step(self, text: str) -> None:
        self.current_step = text
        if self._parent is not None:
            self._parent.step(text)

    def control(self, step: str | None = None) -> control_pb2_grpc.HostControlAsyncStub:
        if step is not None:
            self.step(step)
        assert self.adapter.control is not None
        return self.adapter.control

    @property
    def host_pid(self) -> int:
        return self.adapter.info.host_pid

    @property
    def http_base_url(self) -> str:
        """Where the host's HTTP front listens; "" when it has none. http() and
        FakePlugin.url() require the front (Capability.HTTP_FRONT)."""
        return self.adapter.info.http_base_url.rstrip("/")

    @property
    def max_body(self) -> int:
        return self.options.max_body

    def http(self, timeout_s: float = 60.0) -> httpx.AsyncClient:
        """An HTTP client for the host's front (SE-1), made on first use, closed after the case."""
        self.require(Capability.HTTP_FRONT)
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(timeout_s), limits=httpx.Limits(max_connections=64)
            )
        return self._http

    # -- what the host supports ---------------------------------------------------------------

    @property
    def capabilities(self) -> HostCapabilities:
        return HostCapabilities.of(self.adapter.info)

    def supports(self, capability: Capability) -> bool:
        return self.capabilities.has(capability)

    def require(self, capability: Capability, needed_for: str = "") -> None:
        """Go on only when the host has ``capability``; without it the case cannot check
        what it is about and is skipped with the reason. Whether lacking it breaks the SPEC
        is said once, by host/capabilities/declared, so that one cause fails one case."""
        if self.supports(capability):
            return
        go_plugin = self.options.target.go_plugin_based
        reason = self.capabilities.why_missing(capability, go_plugin)
        if needed_for:
            reason += f"; {needed_for} needs it"
        if capability.required and not go_plugin:
            reason += " (host/capabilities/declared reports what the host lacks)"
        raise CaseSkipped(reason)

    @property
    def always_auto_mtls(self) -> bool:
        """--auto-mtls always: every plugin is started with AutoMTLS."""
        return self.options.auto_mtls is AutoMTLS.ALWAYS

    def require_auto_mtls(self) -> None:
        """For a case about AutoMTLS: skipped under --auto-mtls never."""
        if self.options.auto_mtls is AutoMTLS.NEVER:
            raise CaseSkipped("--auto-mtls never: no plugin is started with AutoMTLS")
        self.require(Capability.AUTO_MTLS)

    async def with_scrubbed_decoys(self, *names: str) -> HostTarget:
        """A host of this case's own, whose adapter also inherits the decoys ``names`` of
        those that only a pluginconf host must scrub (SCRUBBED_DECOYS: PLUGIN_UNIX_SOCKET_DIR,
        PLUGIN_CLIENT_CERT, PLUGIN_MULTIPLEX_GRPC): a host that passes them through fails the
        case that checks them, and no other. It is stopped, its plugins unloaded and
        checked, with this one."""
        self.step(f"starting a host of the case's own, which inherits {', '.join(names)}")
        adapter = AdapterProcess(
            self.options.argv,
            self.options.start_timeout_s,
            self.options.env,
            {**INHERITED_DECOYS, **{name: SCRUBBED_DECOYS[name] for name in names}},
        )
        try:
            await adapter.start()
        except BaseException:
            await adapter.close()
            raise
        workdir = self.workdir / f"host{len(self._own_hosts) + 2}"
        workdir.mkdir()
        own = HostTarget(
            self.options, adapter, self.observer, workdir, self._serial, self.requirements
        )
        own._parent = self
        self._own_hosts.append(own)
        return own

    def policy_for(self, policy: dict[str, Any]) -> dict[str, Any]:
        """The HostPolicy fields to send: none of a capability the host lacks, and AutoMTLS as
        --auto-mtls says (always: every start; never: the case is skipped if it asks)."""
        if policy.get("auto_mtls") or self.always_auto_mtls:
            self.require_auto_mtls()
            policy["auto_mtls"] = True
        for capability in Capability:
            if not self.supports(capability):
                for key in capability.policy:
                    policy.pop(key, None)
        return policy

    # -- plugins ----------------------------------------------------------------------------

    def scenario_command(self, scenario_path: Path) -> list[str]:
        return [sys.executable, "-m", "pluginconf.fake", str(scenario_path)]

    async def load(
        self,
        scenario: Mapping[str, Any] | None = None,
        *,
        name: str = "p",
        configuration: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        enable: bool = True,
        wait_active: bool = True,
        **policy: Any,
    ) -> FakePlugin:
        """Load a fake plugin with ``scenario`` under a fresh id; enable it and wait until
        it is active unless told not to. ``policy`` holds HostPolicy fields in seconds."""
        policy = self.policy_for(policy)
        auto_mtls = bool(policy.get("auto_mtls"))
        plugin_id = f"{name}-{self._serial()}"
        folder = self.workdir / plugin_id
        folder.mkdir(parents=True)
        full = dict(scenario or {})
        if auto_mtls and isinstance(full.get("handshake"), dict) and "line" in full["handshake"]:
            # A plugin under AutoMTLS sends its certificate, whatever else its line says.
            full["handshake"] = {**full["handshake"], "with_certificate": True}
        full["record"] = {"observer": self.observer.target, "label": plugin_id}
        scenario_path = folder / "scenario.json"
        scenario_path.write_text(json.dumps(full, ensure_ascii=False), encoding="utf-8")
        command = self.scenario_command(scenario_path)
        (folder / "plugin.toml").write_text(_toml(plugin_id, command, env, configuration))
        manifest = control_pb2.PluginManifest(
            id=plugin_id,
            command=command,
            env=dict(env or {}),
            configuration=dict(configuration or {}),
            directory=str(folder),
        )
        policy.setdefault("start_timeout_s", min(self.options.start_timeout_s, 30.0))
        request = control_pb2.LoadPluginRequest(manifest=manifest, policy=host_policy(**policy))
        try:
            await self.control(f"loading plugin {plugin_id!r}").LoadPlugin(request, timeout=30)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                raise CaseSkipped(
                    f"the host cannot honour the policy this case needs: {exc.details()}"
                ) from None
            raise
        plugin = FakePlugin(self, plugin_id, full, auto_mtls)
        self.plugins.append(plugin)
        if enable:
            await plugin.enable()
            if wait_active:
                await plugin.wait_active(timeout_s=min(self.options.start_timeout_s, 30.0))
        return plugin

    async def fire(
        self, request: control_pb2.FireHookRequest, timeout_s: float = 60.0
    ) -> control_pb2.FireHookResponse:
        hook = request.WhichOneof("hook")
        return await self.control(f"firing {hook} through the host").FireHook(
            request, timeout=timeout_s
        )

    async def filter_post(
        self, post: hooks_pb2.Post, timeout_s: float = 60.0
    ) -> control_pb2.FilterOutcome:
        reply = await self.fire(control_pb2.FireHookRequest(message_will_be_posted=post), timeout_s)
        return reply.filter

    async def notify_post(
        self, post: hooks_pb2.Post, timeout_s: float = 60.0
    ) -> control_pb2.NotifyOutcome:
        reply = await self.fire(
            control_pb2.FireHookRequest(message_has_been_posted=post), timeout_s
        )
        return reply.notify

    # -- after the case ---------------------------------------------------------------------

    def plugin_pids(self) -> list[int]:
        """Every plugin process the case's fakes reported starting."""
        return [p for plugin in self.plugins for p in plugin.pids() if p > 0]

    def group_member_pids(self) -> list[int]:
        """The other processes the fakes started in their process groups (grandchildren)."""
        return [
            pid
            for plugin in self.plugins
            for e in plugin.events("grandchild")
            if (pid := int(e.get("grandchild_pid", 0))) > 0
        ]

    def spawned_pids(self) -> list[int]:
        """Every process the case's fakes reported: plugin processes and their grandchildren."""
        return self.plugin_pids() + self.group_member_pids()

    async def wait_gone(
        self, pids: Sequence[int], timeout_s: float = _GONE_WAIT_S, members: Sequence[int] = ()
    ) -> list[int]:
        """Wait (polling psutil: a process exit has no event here) until no pid runs; a
        zombie counts as running (nobody reaped it). ``members`` of plugins' process groups
        count as gone once they are zombies too: their parent, the plugin, is gone, and
        whoever adopted them reaps them when it will."""
        left = [*pids, *members]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            left = [p for p in left if pid_alive(p) and not (p in members and is_zombie(p))]
            if not left or loop.time() >= deadline:
                return left
            await asyncio.sleep(0.05)

    async def aclose(self) -> Cleanup:
        """Unload every plugin of the case (and stop the hosts of its own); what was left."""
        cleanup = Cleanup()
        for own in self._own_hosts:
            cleanup.merge(await own.aclose())
            if not own.adapter.alive():
                cleanup.add("the case's own host exited during the case\n" + own.adapter.evidence())
            await own.adapter.close()
        if self._http is not None:
            await self._http.aclose()
        for plugin in self.plugins:
            if not self.adapter.alive():
                break
            try:
                await self.control().UnloadPlugin(
                    control_pb2.PluginRef(plugin_id=plugin.plugin_id), timeout=30
                )
            except grpc.aio.AioRpcError as exc:
                cleanup.add(
                    f"unloading plugin {plugin.plugin_id!r} failed: {exc.code().name}: "
                    f"{exc.details()}"
                )
        await self._check_leftovers(cleanup)
        return cleanup

    async def _check_leftovers(self, cleanup: Cleanup) -> None:
        """Every process the fakes reported must be gone; each one left is named with the
        rule it breaks, and killed."""
        plugins = set(self.plugin_pids())
        left = await self.wait_gone(list(plugins), members=self.group_member_pids())
        running = [p for p in left if p in plugins and not is_zombie(p)]
        zombies = [p for p in left if p in plugins and is_zombie(p)]
        members = [p for p in left if p not in plugins]
        after = "after the case's plugins were unloaded"
        if running:
            cleanup.add(
                f"{after}, the plugin processes {running} still run; a host must stop every "
                "plugin process it started (SV-14). The suite killed them.",
                "SV-14",
            )
        if zombies:
            cleanup.add(
                f"{after}, the plugin processes {zombies} are zombies: the host did not reap "
                "them (SV-17)",
                "SV-17",
            )
        if members and not running:
            cleanup.add(
                f"{after}, processes {members} of the plugins' process groups still run, "
                "though their plugin processes are gone: a host must kill a plugin's process "
                "group (SV-16, SV-22). The suite killed them.",
                "SV-16",
                "SV-22",
            )
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _toml(
    plugin_id: str,
    command: Sequence[str],
    env: Mapping[str, str] | None,
    configuration: Mapping[str, str] | None,
) -> str:
    """The same manifest as plugin.toml (src/pluginconf/host/manifest.py's format)."""

    def table(values: Mapping[str, str] | None) -> str:
        pairs = (f"{_string(k)} = {_string(v)}" for k, v in (values or {}).items())
        return "{ " + ", ".join(pairs) + " }"

    lines = [
        f"id = {_string(plugin_id)}",
        f"executable = {_string(command[0])}",
        f"args = [{', '.join(_string(a) for a in command[1:])}]",
        f"env = {table(env)}",
        f"configuration = {table(configuration)}",
    ]
    return "\n".join(lines) + "\n"


def _string(text: str) -> str:
    # A JSON string without \u escapes of surrogates is a TOML basic string.
    return json.dumps(text, ensure_ascii=False)
