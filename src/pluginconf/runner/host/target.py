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
from typing import Unpack, cast

import grpc
import httpx

from pluginconf.control import control_pb2, control_pb2_grpc
from pluginconf.fake.scenario.load import load as load_scenario
from pluginconf.fake.scenario.model import ScenarioError
from pluginconf.fake.scenario.spec import ScenarioSpec
from pluginconf.runner.host.adapter_process import INHERITED_DECOYS, SCRUBBED_DECOYS, AdapterProcess
from pluginconf.runner.host.capabilities import Capability, HostCapabilities
from pluginconf.runner.host.fake_plugin import GONE_WAIT_S, FakePlugin, is_zombie, pid_alive
from pluginconf.runner.host.manifest import PolicyFields, host_policy, manifest_toml
from pluginconf.runner.host.observer import ObserverServer
from pluginconf.runner.model import CaseSkipped
from pluginconf.runner.options import HostSuiteOptions
from pluginconf.runner.targets import AutoMTLS
from pluginconf.v1 import hooks_pb2


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
        # A host of the case's own that the case ends itself (SV-19: a signal to the host).
        self.expect_exit = False

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
        inherits = f", which inherits {', '.join(names)}" if names else ""
        self.step(f"starting a host of the case's own{inherits}")
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

    def policy_for(self, policy: PolicyFields) -> PolicyFields:
        """The HostPolicy fields to send: none of a capability the host lacks, and AutoMTLS as
        --auto-mtls says (always: every start; never: the case is skipped if it asks)."""
        if policy.get("auto_mtls") or self.always_auto_mtls:
            self.require_auto_mtls()
            policy["auto_mtls"] = True
        lacking = {key for c in Capability if not self.supports(c) for key in c.policy}
        return cast(PolicyFields, {k: v for k, v in policy.items() if k not in lacking})

    # -- plugins ----------------------------------------------------------------------------

    def scenario_command(self, scenario_path: Path) -> list[str]:
        return [sys.executable, "-m", "pluginconf.fake", str(scenario_path)]

    async def load(
        self,
        scenario: ScenarioSpec | None = None,
        *,
        name: str = "p",
        configuration: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        enable: bool = True,
        wait_active: bool = True,
        **policy: Unpack[PolicyFields],
    ) -> FakePlugin:
        """Load a fake plugin with ``scenario`` (the scenario file, typed: mypy checks a case's
        keys and values, the fake's loader the rest) under a fresh id; enable it and wait until
        it is active unless told not to. ``policy`` holds HostPolicy fields in seconds."""
        policy = self.policy_for(policy)
        auto_mtls = bool(policy.get("auto_mtls"))
        plugin_id = f"{name}-{self._serial()}"
        folder = self.workdir / plugin_id
        folder.mkdir(parents=True)
        full: ScenarioSpec = scenario.copy() if scenario else {}
        handshake = full.get("handshake")
        if auto_mtls and isinstance(handshake, dict) and "line" in handshake:
            # A plugin under AutoMTLS sends its certificate, whatever else its line says.
            full["handshake"] = {**handshake, "with_certificate": True}
        full["record"] = {"observer": self.observer.target, "label": plugin_id}
        scenario_path = folder / "scenario.json"
        scenario_path.write_text(json.dumps(full, ensure_ascii=False), encoding="utf-8")
        try:
            # Checked here, as the fake will read it: a case's mistake is told at its load,
            # not as a plugin that would not start.
            load_scenario(str(scenario_path))
        except ScenarioError as exc:
            raise ValueError(f"the case's scenario for {plugin_id!r} is unusable: {exc}") from None
        command = self.scenario_command(scenario_path)
        (folder / "plugin.toml").write_text(manifest_toml(plugin_id, command, env, configuration))
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
        self, pids: Sequence[int], timeout_s: float = GONE_WAIT_S, members: Sequence[int] = ()
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
            if not own.adapter.alive() and not own.expect_exit:
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
