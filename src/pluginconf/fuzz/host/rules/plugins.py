"""The host state machine's rules for plugins: load, disable, enable, configure, and the hooks
and HTTP requests sent through the host.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from hypothesis import note
from hypothesis.stateful import (
    MultipleResults,
    multiple,
)

from pluginconf.fuzz.host.bounds import (
    DEACTIVATE_S,
    DETECT_S,
    DISABLE_BOUND_S,
    FIREHOOK_GRACE_S,
    GONE_S,
    HTTP_BOUND_S,
    MAX_PLUGINS,
    RULE_BOUND_S,
    STOP_GRACE_S,
)
from pluginconf.fuzz.host.calls import answered, check_deadline
from pluginconf.fuzz.host.checks import (
    ConfigChange,
    describe_step,
    hung_notification_problem,
    post_key,
)
from pluginconf.fuzz.host.driver import HostDriver
from pluginconf.fuzz.host.processes import processes, still_there
from pluginconf.fuzz.host.rules.fan_out import FanOut
from pluginconf.fuzz.host.tracked import Answer, Before, Tracked
from pluginconf.fuzz.model import PropertyFailed
from pluginconf.fuzz.strategies.host import (
    Body,
    Kind,
    PluginSetup,
    PostDraw,
    shown,
)
from pluginconf.runner.host.fake_plugin import describe_error
from pluginconf.runner.host.observer import received
from pluginconf.v1 import hooks_pb2


class PluginRules:
    """Loading, disabling, enabling and configuring plugins; hooks and HTTP through the host."""

    def __init__(self, driver: HostDriver) -> None:
        self.driver = driver
        self.calls = driver.calls
        self.fan_out = FanOut(driver)

    # -- rules: plugins -----------------------------------------------------------------------

    def first_plugin(self, setup: PluginSetup) -> Tracked | None:
        self.driver.loads += 1
        return self.driver.step(self._load(setup), RULE_BOUND_S, "loading the first plugin")

    def second_plugin(self, setup: PluginSetup | None) -> MultipleResults[Tracked | None]:
        """Often a second plugin from the start: isolation, fan-out and the filter chain
        need two (NT-2, SV-20). None draws none, and adds nothing to the bundle."""
        if setup is None:
            return multiple()
        self.driver.loads += 1
        if self.driver.stopped:
            return multiple(None)
        return multiple(
            self.driver.step(self._load(setup), RULE_BOUND_S, "loading the second plugin")
        )

    def load_plugin(self, setup: PluginSetup) -> Tracked | None:
        # Counted and added to the bundle even when stopped (None): the draws stay the same.
        self.driver.loads += 1
        if self.driver.stopped:
            return None
        return self.driver.step(self._load(setup), RULE_BOUND_S, "loading a plugin")

    async def _load(self, setup: PluginSetup) -> Tracked:
        enabled_at = time.time()
        fake = await self.driver.target.load(
            setup.scenario,
            name=setup.kind.short,
            configuration=setup.configuration,
            wait_active=False,
            **setup.policy.fields(),
        )
        initial = ConfigChange(0.0, 0.0, dict(setup.configuration), True)
        tracked = Tracked(fake, setup, [enabled_at], [initial])
        self.driver.tracked.append(tracked)
        note(f"loaded {tracked.id!r}")
        await self.driver.await_start(tracked, "loaded and enabled")
        return tracked

    def disable(self, plugin: Tracked) -> None:
        if self.driver.stopped:
            return
        self.driver.step(
            self._disable(plugin), DISABLE_BOUND_S + GONE_S + 10, f"disabling {plugin.id!r}"
        )

    async def _disable(self, tracked: Tracked) -> None:
        if not tracked.enabled:
            note(f"{tracked.id!r} is already disabled")
            return
        tracked.enabled = False
        tracked.acted_on()
        status = await answered(tracked.fake.disable(timeout_s=DISABLE_BOUND_S))
        if status is None:
            raise self.driver.fail(
                tracked,
                f"DisablePlugin did not answer within {DISABLE_BOUND_S:g}s; the stop sequence "
                f"takes at most OnDeactivate's {DEACTIVATE_S:g}s and 3 x {STOP_GRACE_S:g}s (SV-14)",
            )
        tracked.acted_on()  # the stop's transitions are the machine's doing, however long it took
        if status.state != "stopped":
            raise self.driver.fail(
                tracked,
                f"DisablePlugin answered with the plugin {status.state!r}; it answers once the "
                "plugin is stopped (SV-14)",
                status,
            )
        left = await still_there(processes(tracked.fake), GONE_S)
        if left:
            raise self.driver.fail(
                tracked,
                f"DisablePlugin answered `stopped`, and {GONE_S:g}s later these processes of "
                f"the plugin are still there: {', '.join(p.describe() for p in left)}; the stop "
                "sequence ends with no process (SV-14, SV-16, SV-17)",
                status,
            )

    def enable(self, plugin: Tracked) -> None:
        if self.driver.stopped:
            return
        self.driver.step(self._enable(plugin), RULE_BOUND_S, f"enabling {plugin.id!r}")

    async def _enable(self, tracked: Tracked) -> None:
        status = await tracked.fake.status()
        if tracked.enabled and status.state != "failed":
            note(f"{tracked.id!r} is enabled and {status.state}: not enabled again")
            return
        tracked.enabled = True
        tracked.enables.append(time.time())
        await tracked.fake.enable()
        await self.driver.await_start(tracked, "enabled again")

    def configure(self, plugin: Tracked, changes: list[Mapping[str, str]]) -> None:
        if self.driver.stopped:
            return
        bound = 2 * len(changes) * plugin.policy.hook_timeout_s + FIREHOOK_GRACE_S + DETECT_S + 10
        self.driver.step(self._configure(plugin, changes), bound, f"configuring {plugin.id!r}")

    async def _configure(self, tracked: Tracked, changes: list[Mapping[str, str]]) -> None:
        """LC-3: each new configuration reaches the active plugin exactly; two sent at once
        reach it one after the other (checked after the step)."""
        before = await self.driver.before(tracked)
        answers = await asyncio.gather(
            *(self.calls.change(tracked, c, len(changes)) for c in changes)
        )
        got = [
            dict(received(c, hooks_pb2.OnConfigurationChangeRequest).configuration)
            for c in tracked.fake.calls("OnConfigurationChange")
            if c.monotonic >= before.at
        ]
        for configuration, answer in zip(changes, answers, strict=True):
            if (
                answer.problem is None
                and before.state == "active"
                and dict(configuration) not in got
            ):
                answer = Answer(
                    f"the fake received no OnConfigurationChange with {shown(configuration)} "
                    f"(it received {shown(got)}) (LC-3, HK-14)"
                )
            what = f"OnConfigurationChange({shown(configuration)}) on {tracked.id!r}"
            await self.driver.judge(tracked, before, answer, what, "LC-3, HK-14")

    # -- rules: hooks and HTTP ----------------------------------------------------------------

    def execute_command(self, plugin: Tracked, command: str) -> None:
        if self.driver.stopped:
            return
        bound = plugin.policy.hook_timeout_s + FIREHOOK_GRACE_S + DETECT_S + 10
        self.driver.step(self._execute(plugin, command), bound, f"ExecuteCommand on {plugin.id!r}")

    async def _execute(self, tracked: Tracked, command: str) -> None:
        before = await self.driver.before(tracked)
        answer = await self.calls.command(tracked, command)
        what = f"ExecuteCommand {shown(command)} on {tracked.id!r}"
        await self.driver.judge(tracked, before, answer, what, "RR-1, HK-14")
        await self.driver.expect_off(tracked, before, answer, what)

    def http_echo(self, plugin: Tracked, burst: list[Body]) -> None:
        if self.driver.stopped:
            return
        bound = HTTP_BOUND_S + DETECT_S * len(burst) + 10
        self.driver.step(self._echo_burst(plugin, burst), bound, f"POST /echo to {plugin.id!r}")

    async def _echo_burst(self, tracked: Tracked, burst: list[Body]) -> None:
        """One request, or 2 to 4 at once: each must end, and be exact when healthy."""
        if not self.driver.target.http_base_url:
            note("the host has no HTTP front")
            return
        before = await self.driver.before(tracked)
        answers = await asyncio.gather(*(self.calls.echo(tracked, body) for body in burst))
        together = f" (one of {len(burst)} at once)" if len(burst) > 1 else ""
        for body, answer in zip(burst, answers, strict=True):
            what = f"POST /echo of {body.describe()} to {tracked.id!r}{together}"
            await self.driver.judge(tracked, before, answer, what, "SE-10, SH-9, SV-20")
            await self.driver.expect_off(tracked, before, answer, what)

    def filter_post(self, post: PostDraw) -> None:
        if self.driver.stopped:
            return
        bound = self.calls.chain_bound() + FIREHOOK_GRACE_S + DETECT_S * MAX_PLUGINS + 10
        self.driver.step(self._filter(post.post()), bound, "MessageWillBePosted")

    async def _filter(self, post: hooks_pb2.Post) -> None:
        """FL-1: each active plugin keeps the post as sent, and says so."""
        befores = [(p, await self.driver.before(p)) for p in self.driver.tracked]
        outcome = await self.calls.chain(post)
        for tracked, before in befores:
            if before.state != "active":
                continue
            steps = [s for s in outcome.steps if s.plugin_id == tracked.id]
            problem = None
            if len(steps) != 1 or steps[0].outcome != "keep":
                got = [describe_step(s) for s in steps]
                problem = f"its steps in the chain were {got}; expected one 'keep' (FL-1)"
            else:
                problem = self._post_received(tracked, "MessageWillBePosted", post, before)
            what = f"MessageWillBePosted to {tracked.id!r}"
            await self.driver.judge(tracked, before, Answer(problem), what, "FL-1, HK-14")

    def notify_post(self, post: PostDraw) -> None:
        if self.driver.stopped:
            return
        bound = self.calls.chain_bound() + FIREHOOK_GRACE_S + DETECT_S * MAX_PLUGINS + 10
        bound += 2 * (self.calls.chain_bound() + FIREHOOK_GRACE_S)  # NT-2 measured again
        self.driver.step(self._notify(post.post()), bound, "MessageHasBeenPosted")

    async def _notify(self, post: hooks_pb2.Post) -> None:
        """NT-1, NT-3: every active plugin is notified with the post exactly, and the host
        waits for the slowest no longer than the hook deadline."""
        befores = [(p, await self.driver.before(p)) for p in self.driver.tracked]
        hung, others = await self.fan_out.parties()
        self.calls.posts.add(post_key(post))
        deadline = max(p.policy.hook_timeout_s for p in self.driver.tracked)
        start = time.monotonic()
        outcome = await answered(
            self.driver.target.notify_post(post, timeout_s=deadline + FIREHOOK_GRACE_S)
        )
        if outcome is None:
            raise PropertyFailed("MessageHasBeenPosted through the host did not end (NT-3)")
        late = check_deadline(time.monotonic() - start, deadline, "NT-3")
        if late is not None:
            raise PropertyFailed(f"MessageHasBeenPosted to {len(befores)} plugins: {late}")
        for tracked, before in befores:
            if before.state != "active":
                continue
            results = [r for r in outcome.results if r.plugin_id == tracked.id]
            problem: str | None
            if tracked.setup.kind == Kind.HANGING:
                problem = hung_notification_problem(results)
                tracked.disturb()  # a failure: its circuit may be open now
            elif len(results) != 1 or results[0].HasField("error"):
                got = [describe_error(r.error) if r.HasField("error") else "ok" for r in results]
                problem = f"its results were {got}; expected one, without error (NT-1)"
            else:
                problem = self._post_received(tracked, "MessageHasBeenPosted", post, before)
            what = f"MessageHasBeenPosted to {tracked.id!r}"
            await self.driver.judge(tracked, before, Answer(problem), what, "NT-1, HK-14")
        await self.fan_out.judge(self.fan_out.delay(post, start, others), hung, others)

    def _post_received(
        self, tracked: Tracked, hook: str, post: hooks_pb2.Post, before: Before
    ) -> str | None:
        request_type = (
            hooks_pb2.MessageWillBePostedRequest
            if hook == "MessageWillBePosted"
            else hooks_pb2.MessageHasBeenPostedRequest
        )
        got = [
            received(c, request_type).post
            for c in tracked.fake.calls(hook)
            if c.monotonic >= before.at
        ]
        if post in got:
            return None
        return f"the fake received {len(got)} {hook} call(s), none with the post as sent (HK-14)"
