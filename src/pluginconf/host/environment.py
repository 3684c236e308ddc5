"""Many plugins under one host: activation, fan-out, filter chains, isolation (SPEC NT, FL, RR).

Each plugin has its own Supervisor. A plugin's failure, slowness or open circuit shows only in
its own outcome: fan-out runs every plugin concurrently, each bounded by its own deadline, and
a filter chain fails open past a plugin that errs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from pluginconf.host.client import HookError
from pluginconf.host.errors import HostError
from pluginconf.host.hostapi import InMemoryHostAPI
from pluginconf.host.launcher import LaunchSpec
from pluginconf.host.supervision.config import SupervisorConfig
from pluginconf.host.supervision.states import PluginState
from pluginconf.host.supervision.supervisor import Supervisor
from pluginconf.v1 import hooks_pb2

log = logging.getLogger("pluginconf.host.environment")


@dataclass(frozen=True)
class HookFailure:
    """Why a plugin gave no usable answer: a HookError's kind (RR-3), or "app_error" with the
    plugin's code (RR-2)."""

    kind: str
    message: str
    code: str = ""

    @classmethod
    def of(cls, exc: HookError) -> HookFailure:
        return cls(exc.kind, str(exc))

    def __str__(self) -> str:
        return f"{self.kind}: {self.code + ': ' if self.code else ''}{self.message}"


@dataclass
class FilterStep:
    plugin_id: str
    # "keep", "modify", "reject", or "error" (failed open).
    outcome: str
    detail: str = ""
    error: HookFailure | None = None


@dataclass
class FilterResult:
    post: hooks_pb2.Post
    rejected: bool = False
    rejected_by: str = ""
    reason: str = ""
    steps: list[FilterStep] = field(default_factory=list)


class AppErrorAnswer(HostError):
    """The plugin answered with an application error."""

    kind = "app_error"

    def __init__(self, plugin_id: str, hook: str, code: str, message: str) -> None:
        super().__init__(f"plugin {plugin_id!r}, hook {hook}: {code}: {message}")
        self.plugin_id, self.hook, self.code, self.message = plugin_id, hook, code, message


class Environment:
    def __init__(self, config: SupervisorConfig | None = None) -> None:
        self.config = config or SupervisorConfig()
        # Insertion order is the filter-chain order.
        self.plugins: dict[str, Supervisor] = {}

    def add(
        self,
        plugin_id: str,
        spec: LaunchSpec,
        configuration: dict[str, str] | None = None,
        config: SupervisorConfig | None = None,
    ) -> Supervisor:
        if plugin_id in self.plugins:
            raise ValueError(f"a plugin with id {plugin_id!r} is already loaded")
        supervisor = Supervisor(
            plugin_id,
            spec,
            config or self.config,
            configuration,
            InMemoryHostAPI(configuration=dict(configuration or {})),
        )
        self.plugins[plugin_id] = supervisor
        return supervisor

    def get(self, plugin_id: str) -> Supervisor:
        try:
            return self.plugins[plugin_id]
        except KeyError:
            raise KeyError(
                f"no plugin with id {plugin_id!r}; loaded: {sorted(self.plugins)}"
            ) from None

    def _serving(self, hook: str) -> list[Supervisor]:
        return [
            s
            for s in self.plugins.values()
            if s.state is PluginState.ACTIVE
            and s.client is not None
            and hook in s.client.implemented
        ]

    async def enable_all(self, wait_s: float = 60.0) -> None:
        """Enable every plugin and wait until each is active, failed or stopped."""
        for supervisor in self.plugins.values():
            await supervisor.enable()
        settled = (PluginState.ACTIVE, PluginState.FAILED, PluginState.STOPPED)
        await asyncio.gather(
            *(s.wait_for(*settled, timeout_s=wait_s) for s in self.plugins.values())
        )

    async def stop_all(self) -> None:
        """Stop every plugin by the stop sequence, all concurrently (SV-19)."""
        await asyncio.gather(*(s.disable() for s in list(self.plugins.values())))

    async def remove(self, plugin_id: str) -> None:
        """Stop the plugin if it runs, then forget it: its id may be added again."""
        supervisor = self.get(plugin_id)
        await supervisor.disable()
        if self.plugins.get(plugin_id) is supervisor:
            del self.plugins[plugin_id]

    async def notify(self, post: hooks_pb2.Post) -> dict[str, HookFailure | None]:
        """MessageHasBeenPosted to every active plugin listing it, concurrently (NT-1, NT-2);
        each plugin called maps to None or why it failed (logged, never retried: NT-4)."""
        targets = self._serving("MessageHasBeenPosted")
        request = hooks_pb2.MessageHasBeenPostedRequest(post=post)

        async def one(supervisor: Supervisor) -> HookFailure | None:
            try:
                await supervisor.call("MessageHasBeenPosted", request)
            except HookError as exc:
                log.warning("%s", str(exc))  # not the exception: it pins the call
                return HookFailure.of(exc)
            return None

        outcomes = await asyncio.gather(*(one(s) for s in targets))
        return {s.plugin_id: outcome for s, outcome in zip(targets, outcomes, strict=True)}

    async def message_has_been_posted(self, post: hooks_pb2.Post) -> dict[str, str]:
        """Notify every plugin concurrently; return each plugin's outcome ("ok" or the error)."""
        outcomes = await self.notify(post)
        return {pid: "ok" if failure is None else str(failure) for pid, failure in outcomes.items()}

    async def message_will_be_posted(self, post: hooks_pb2.Post) -> FilterResult:
        """Chain the post through plugins in order; errors and timeouts fail open."""
        result = FilterResult(post=post)
        for supervisor in self._serving("MessageWillBePosted"):
            if await self._filter_step(supervisor, result):
                break
        return result

    async def _filter_step(self, supervisor: Supervisor, result: FilterResult) -> bool:
        """One plugin's step of the chain, recorded in ``result``; whether the chain ends."""
        request = hooks_pb2.MessageWillBePostedRequest(post=result.post)
        try:
            reply = await supervisor.call("MessageWillBePosted", request)
        except HookError as exc:
            result.steps.append(_failed_step(supervisor.plugin_id, HookFailure.of(exc)))
            return False
        if reply.HasField("error"):  # FL-5
            failure = HookFailure("app_error", reply.error.message, reply.error.code)
            result.steps.append(_failed_step(supervisor.plugin_id, failure))
        elif _unusable_filter_answer(reply):  # FL-3, FL-6
            failure = HookFailure(
                "plugin_error",
                f"plugin {supervisor.plugin_id!r}, hook MessageWillBePosted: "
                f"{_unusable_filter_answer(reply)}; the post passes on unchanged",
            )
            result.steps.append(_failed_step(supervisor.plugin_id, failure))
        elif reply.action == hooks_pb2.FILTER_ACTION_REJECT:
            result.steps.append(FilterStep(supervisor.plugin_id, "reject", reply.rejection_reason))
            result.rejected = True
            result.rejected_by = supervisor.plugin_id
            result.reason = reply.rejection_reason
            return True
        elif reply.action == hooks_pb2.FILTER_ACTION_MODIFY:
            result.post = reply.post
            result.steps.append(FilterStep(supervisor.plugin_id, "modify"))
        else:
            result.steps.append(FilterStep(supervisor.plugin_id, "keep"))
        return False

    async def execute_command(
        self, plugin_id: str, request: hooks_pb2.ExecuteCommandRequest
    ) -> hooks_pb2.ExecuteCommandResponse:
        """The plugin's answer, or a typed error: HookError or AppErrorAnswer."""
        reply: hooks_pb2.ExecuteCommandResponse = await self.get(plugin_id).call(
            "ExecuteCommand", request
        )
        if reply.HasField("error"):
            raise AppErrorAnswer(plugin_id, "ExecuteCommand", reply.error.code, reply.error.message)
        return reply

    def states(self) -> dict[str, str]:
        return {pid: (s.state.value if s.state else "loaded") for pid, s in self.plugins.items()}

    def ids(self) -> Iterable[str]:
        return self.plugins.keys()


def _failed_step(plugin_id: str, failure: HookFailure) -> FilterStep:
    log.warning("filter step failed open: %s", failure)
    return FilterStep(plugin_id, "error", str(failure), failure)


def _unusable_filter_answer(reply: hooks_pb2.MessageWillBePostedResponse) -> str:
    """What makes an answer without AppError unusable, or "" when it is usable."""
    known = (
        hooks_pb2.FILTER_ACTION_KEEP,
        hooks_pb2.FILTER_ACTION_MODIFY,
        hooks_pb2.FILTER_ACTION_REJECT,
    )
    if reply.action not in known:
        return f"unknown filter action {reply.action}"
    if reply.action == hooks_pb2.FILTER_ACTION_MODIFY and not reply.HasField("post"):
        return "FILTER_ACTION_MODIFY without a post"
    return ""
