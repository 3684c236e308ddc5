"""The host state machine's fault rules: kill, hang and stall a plugin process, alone or by
a fault schedule under traffic (strategies/faults.py), and check that the host notices (SV-3, SV-7).
"""

from __future__ import annotations

import asyncio
import time

import psutil
from hypothesis import note

from pluginconf.fuzz.host.bounds import (
    DETECT_S,
    DETECTION_SLACK_S,
    EXIT_DETECTION_S,
    EXIT_TARGET_S,
    GONE_S,
    HTTP_BOUND_S,
    NON_BMP,
    SLACK_S,
    START_BOUND_S,
    WINDOW_MARGIN_S,
)
from pluginconf.fuzz.host.checks import RUNNING_CRASH_KINDS
from pluginconf.fuzz.host.driver import HostDriver
from pluginconf.fuzz.host.processes import Proc, still_there
from pluginconf.fuzz.host.rules.exits import exit_noticed_again
from pluginconf.fuzz.host.tracked import Answer, Tracked
from pluginconf.fuzz.strategies.faults import (
    FLAP_PULSES,
    FaultAction,
    ScheduledFault,
)
from pluginconf.fuzz.strategies.host import Call
from pluginconf.runner.timing import Yardstick, judge_time
from pluginconf.v1 import hooks_pb2

# A kill, and up to two re-measurements of SV-4 on fakes of their own (a start and a kill).
KILL_BOUND_S = EXIT_DETECTION_S + SLACK_S + 10 + 2 * (START_BOUND_S + EXIT_DETECTION_S + SLACK_S)


class FaultRules:
    """Killing, hanging and stalling plugin processes, alone or by a schedule under traffic."""

    def __init__(self, driver: HostDriver) -> None:
        self.driver = driver
        self.calls = driver.calls

    # -- rules: faults --------------------------------------------------------------------------

    def kill(self, plugin: Tracked) -> None:
        if self.driver.stopped:
            return
        self.driver.step(self._kill(plugin), KILL_BOUND_S, f"killing {plugin.id!r}")

    async def _kill(self, tracked: Tracked) -> None:
        """SV-3: a process killed is noticed, by watching it, within 10 s."""
        running = await self.driver.running(tracked)
        if running is None:
            return
        status, proc, found = running
        tracked.disturb()
        killed_at = time.time()
        self.driver.injector.kill(found)
        note(f"killed process {proc.pid} of {tracked.id!r}")
        why = (
            f"process {proc.pid} of {tracked.id!r} was killed (SIGKILL); the host must notice "
            f"its exit and enter `crashed` within {EXIT_DETECTION_S:g}s (SV-3)"
        )
        crash = await self.driver.await_crash(
            tracked, len(status.transitions), EXIT_DETECTION_S + SLACK_S, why
        )
        if crash.error_kind not in RUNNING_CRASH_KINDS:
            raise self.driver.fail(
                tracked,
                f"{why}; it reported the crash as {crash.error_kind!r}, expected one of "
                f"{sorted(RUNNING_CRASH_KINDS)} (SV-2)",
                await tracked.fake.status(),
            )
        if crash.wall_time - killed_at > EXIT_DETECTION_S:
            raise self.driver.fail(
                tracked, f"{why}; it did so {crash.wall_time - killed_at:.2f}s after", None
            )
        await self._exit_noticed_soon(tracked, proc, crash.wall_time - killed_at)

    async def _exit_noticed_soon(self, tracked: Tracked, proc: Proc, took: float) -> None:
        """SV-4 (SHOULD): the exit noticed within 1 s, judged against the same-run yardstick
        of a signal, and measured again on fresh fakes before it fails."""
        if took <= EXIT_TARGET_S:
            return
        verdict = await judge_time(
            EXIT_TARGET_S,
            lambda: exit_noticed_again(self.driver.target),
            Yardstick.SIGNAL,
            f"the host's `crashed` after process {proc.pid} of {tracked.id!r} was killed",
            seen=[took],
        )
        if not verdict.met:
            raise self.driver.fail(
                tracked,
                f"{verdict.evidence()}; SV-4 (SHOULD) recommends noticing an unexpected exit "
                "within 1 s, by watching the process rather than waiting for a health check",
                await tracked.fake.status(),
            )

    def kill_past_window(self, plugin: Tracked) -> None:
        if self.driver.stopped:
            return
        wait = plugin.policy.restart_window_s + WINDOW_MARGIN_S
        bound = wait + KILL_BOUND_S
        self.driver.step(
            self._kill_past_window(plugin), bound, f"killing {plugin.id!r} past its window"
        )

    async def _kill_past_window(self, tracked: Tracked) -> None:
        """SV-8, SV-9: only failures within the restart window count towards the limit. Once
        the window has passed since the plugin's last crash, a kill is a first failure again,
        and the host must restart the plugin (checked after the step)."""
        status = await tracked.fake.status()
        crashes = [t.wall_time for t in status.transitions if t.new_state == "crashed"]
        if crashes:
            wait = crashes[-1] + tracked.policy.restart_window_s + WINDOW_MARGIN_S - time.time()
            if wait > 0:
                note(f"waited {wait:.2f}s for the restart window of {tracked.id!r} to pass")
                await asyncio.sleep(wait)  # the window passing is what is tested
        await self._kill(tracked)

    def hang(self, plugin: Tracked) -> None:
        if self.driver.stopped:
            return
        bound = plugin.policy.hang_detection_s + DETECTION_SLACK_S + GONE_S + 10
        self.driver.step(self._hang(plugin), bound, f"hanging {plugin.id!r}")

    async def _hang(self, tracked: Tracked) -> None:
        """SV-7: a process that stops answering (SIGSTOP) fails its health check, and the
        host kills it and enters `crashed` (health_check_failed)."""
        running = await self.driver.running(tracked)
        if running is None:
            return
        status, proc, found = running
        tracked.disturb()
        stopped_at = time.time()
        self.driver.injector.stop(found)
        note(f"stopped process {proc.pid} of {tracked.id!r} (SIGSTOP)")
        # Meanwhile, calls reach the hung process: they must end, the chain failing open.
        post = hooks_pb2.Post(id=f"hang-{proc.pid}", message=f"to a hung plugin {NON_BMP}")
        outcomes = await asyncio.gather(
            self._expect_hang_noticed(tracked, proc, len(status.transitions), stopped_at, True),
            self.calls.command(tracked, f"/hung {proc.pid} {NON_BMP}"),
            self.calls.chain(post),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            if isinstance(outcome, Answer) and outcome.fatal is not None:
                raise self.driver.fail(
                    tracked, f"ExecuteCommand to a hung process: {outcome.fatal}"
                )

    async def _expect_hang_noticed(
        self, tracked: Tracked, proc: Proc, after: int, stopped_at: float, alone: bool
    ) -> None:
        policy = tracked.policy
        bound = policy.hang_detection_s + DETECTION_SLACK_S
        why = (
            f"process {proc.pid} of {tracked.id!r} stopped answering (SIGSTOP); with a health "
            f"check every {policy.health_interval_s:g}s and a {policy.health_timeout_s:g}s "
            "timeout the host must find it failing, kill it and enter `crashed` (SV-7)"
        )
        crash = await self.driver.await_crash(tracked, after, bound, why)
        # Alone, nothing but the health check can end it; in a schedule, a kill may have.
        if alone and crash.error_kind != "health_check_failed":
            raise self.driver.fail(
                tracked,
                f"{why}; it reported the crash as {crash.error_kind!r}, expected "
                "'health_check_failed' (SV-7)",
                await tracked.fake.status(),
            )
        if crash.wall_time - stopped_at > bound:
            raise self.driver.fail(
                tracked, f"{why}; it did so {crash.wall_time - stopped_at:.2f}s after"
            )
        left = await still_there([proc], GONE_S)
        if left:
            raise self.driver.fail(
                tracked,
                f"{why}; it entered `crashed`, and {GONE_S:g}s later the process is still "
                f"there: {left[0].describe()}; a failing process is killed with SIGKILL (SV-7)",
                await tracked.fake.status(),
            )
        self.driver.injector.forget(proc.pid)

    def stall(self, plugin: Tracked, pause_ms: int) -> None:
        if self.driver.stopped:
            return
        self.driver.step(
            self._stall(plugin, pause_ms), pause_ms / 1000 + 20, f"stalling {plugin.id!r}"
        )

    async def _stall(self, tracked: Tracked, pause_ms: int) -> None:
        """A process held for a while (SIGSTOP, then SIGCONT): the host may restart it or not,
        and the checks after the step hold either way."""
        running = await self.driver.running(tracked)
        if running is None:
            return
        _, proc, found = running
        tracked.disturb(pause_ms / 1000)
        self.driver.injector.stop(found)
        try:
            await asyncio.sleep(pause_ms / 1000)  # the stall itself
        finally:
            self.driver.injector.resume(found)
        note(f"stalled process {proc.pid} of {tracked.id!r} for {pause_ms} ms")

    def fault_schedule(self, schedule: tuple[ScheduledFault, ...], burst: list[Call]) -> None:
        if self.driver.stopped:
            return
        length = sum(f.delay_ms + f.pause_ms for f in schedule) / 1000
        bound = length + 1 + HTTP_BOUND_S + DETECT_S * len(burst) + EXIT_DETECTION_S + GONE_S + 20
        self.driver.step(
            self._fault_schedule(schedule, burst), bound, "a fault schedule under traffic"
        )

    async def _fault_schedule(
        self, schedule: tuple[ScheduledFault, ...], burst: list[Call]
    ) -> None:
        """Faults dealt on their schedule while a burst of calls runs: every call ends
        within its bound, those to plugins the schedule spares are exact (SV-20), and each
        process left hanging is found out (SV-7)."""
        plugins = list(self.driver.tracked)
        length = sum(f.delay_ms + f.pause_ms for f in schedule) / 1000
        for index in {f.target % len(plugins) for f in schedule}:
            plugins[index].disturb(length)
        befores = {p.id: await self.driver.before(p) for p in plugins}
        hung: list[tuple[Tracked, Proc, int, float]] = []
        dealing = asyncio.ensure_future(self._deal(schedule, plugins, hung))
        try:
            # Every call runs to its end, a failing one too: none is left behind running.
            outcomes = await asyncio.gather(
                *(self.calls.call(plugins[c.target % len(plugins)], c) for c in burst),
                return_exceptions=True,
            )
        finally:
            await dealing
        for call, outcome in zip(burst, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                raise outcome
            tracked = plugins[call.target % len(plugins)]
            what = f"{call.describe()} to {tracked.id!r} during the schedule"
            await self.driver.judge(
                tracked, befores[tracked.id], outcome, what, "SV-20, RR-1, SE-10"
            )
        for tracked, proc, after, stopped_at in hung:
            await self._expect_hang_noticed(tracked, proc, after, stopped_at, False)

    async def _deal(
        self,
        schedule: tuple[ScheduledFault, ...],
        plugins: list[Tracked],
        hung: list[tuple[Tracked, Proc, int, float]],
    ) -> None:
        for fault in schedule:
            await asyncio.sleep(fault.delay_ms / 1000)  # the schedule's timing, not a wait
            tracked = plugins[fault.target % len(plugins)]
            running = await self.driver.running(tracked)
            if running is None:
                continue
            status, proc, found = running
            if proc.pid in self.driver.injector.stopped and fault.action is not FaultAction.KILL:
                continue  # already hanging: stopping it again, or resuming it, changes nothing
            note(f"{fault.describe()}: process {proc.pid} of {tracked.id!r}")
            if fault.action is FaultAction.KILL:
                self.driver.injector.kill(found)
            elif fault.action is FaultAction.HANG:
                if self.driver.injector.stop(found):
                    hung.append((tracked, proc, len(status.transitions), time.time()))
            else:
                pulses = 1 if fault.action is FaultAction.SLOW else FLAP_PULSES
                await self._pulse(found, fault.pause_ms / 1000, pulses)

    async def _pulse(self, found: psutil.Process, pause_s: float, pulses: int) -> None:
        """Hold the process ``pulses`` times, ``pause_s`` in all, resuming it in between."""
        for n in range(pulses):
            self.driver.injector.stop(found)
            try:
                await asyncio.sleep(pause_s / pulses)  # the stall itself
            finally:
                self.driver.injector.resume(found)
            if n + 1 < pulses:
                await asyncio.sleep(pause_s / pulses)  # running, between two stalls
