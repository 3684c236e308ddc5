"""A fake plugin a host case loaded: what it observed, and the host's view of it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import psutil

from pluginconf.control import control_pb2
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.fake_start import describe_start
from pluginconf.runner.host.observer import Observed, describe_events
from pluginconf.runner.model import fail
from pluginconf.v1 import hooks_pb2

if TYPE_CHECKING:
    from pluginconf.fake.scenario.spec import ScenarioSpec
    from pluginconf.runner.host.target import HostTarget


# How long the suite waits for a plugin process to be gone after its host stopped it.
GONE_WAIT_S = 10.0


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


def describe_error(error: control_pb2.HostError) -> str:
    """A HostError the host answered (the message, not an exception), in one line."""
    text = f"{error.kind}: {error.message}"
    return f"{text} (code {error.code})" if error.code else text


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
        self, target: HostTarget, plugin_id: str, scenario: ScenarioSpec, auto_mtls: bool
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
            self.target.step(f"running the case's own calls and checks on {self.plugin_id!r}")
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
