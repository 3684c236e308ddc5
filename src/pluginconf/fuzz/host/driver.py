"""The host state machine's driver: running steps, judging answers, and waiting for the host.

The machine (machine.py) holds one driver per run and hands it to the rules (rules/); the
calls through the host are the driver's ``calls`` (calls.py).
"""

from __future__ import annotations

import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import grpc
import psutil
from hypothesis import note

from pluginconf.control import control_pb2
from pluginconf.fuzz.host.bounds import DETECT_S, NON_BMP, START_BOUND_S, START_TIMEOUT_S
from pluginconf.fuzz.host.calls import HostCalls
from pluginconf.fuzz.host.context import CLOSE_BOUND_S, HostFuzzContext
from pluginconf.fuzz.host.processes import Proc, moved_on, processes
from pluginconf.fuzz.host.tracked import Answer, Before, Tracked
from pluginconf.fuzz.model import PropertyFailed, PropertyNotApplicable
from pluginconf.fuzz.strategies.faults import SignalInjector
from pluginconf.fuzz.strategies.host import Kind
from pluginconf.runner.host.fake_plugin import describe_status
from pluginconf.runner.host.target import HostTarget
from pluginconf.runner.model import CaseFailed, CaseSkipped

Status = control_pb2.PluginStatus
Transition = control_pb2.Transition
T = TypeVar("T")


# The states a plugin rests in: the machine waits for one of these after every step.
ON_STATES = ("active", "failed")
OFF_STATES = ("stopped", "loaded")


class HostDriver:
    """One run: a fresh HostTarget, the plugins loaded, and a failure kept for teardown."""

    def __init__(self, context: HostFuzzContext) -> None:
        self.context = context
        context.example()
        self.tracked: list[Tracked] = []
        self.injector = SignalInjector()
        self.failure: PropertyFailed | None = None
        self.loads = 0  # load rules run, loaded or not: their precondition
        # The first example starts the adapter, which has the suite's start timeout.
        bound = context.options.start_timeout_s + 30.0
        self.target: HostTarget = self.run(
            context.open_target(), bound, "opening the host under test"
        )
        self.calls = HostCalls(self.target, self.tracked)

    # -- plumbing -----------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T], bound_s: float, what: str) -> T:
        """Run ``coro`` on the campaign's loop; every way it fails becomes PropertyFailed."""
        try:
            return self.context.run(coro, bound_s, what)
        except CaseFailed as exc:
            raise PropertyFailed(str(exc)) from None
        except CaseSkipped as exc:
            raise PropertyNotApplicable(str(exc)) from None
        except grpc.aio.AioRpcError as exc:
            raise PropertyFailed(self._control_failed(what, exc)) from None

    @property
    def stopped(self) -> bool:
        """A check has failed. The remaining steps are still drawn, but do nothing, and the
        failure is raised at teardown: whichever step a replay finds a timing-dependent
        failure at, it draws the same steps, as Hypothesis requires."""
        return self.failure is not None

    def step(self, coro: Coroutine[Any, Any, T], bound_s: float, what: str) -> T | None:
        """Run a step's work; a failure is kept for teardown (None is returned)."""
        try:
            return self.run(coro, bound_s, what)
        except PropertyFailed as exc:
            self.failure = exc
            note(f"failed while {what}; the steps after this one do nothing")
            return None

    def _control_failed(self, what: str, exc: grpc.aio.AioRpcError) -> str:
        text = (
            f"while {what} ({self.target.current_step}), a HostControl call failed with "
            f"{exc.code().name}: {exc.details()}"
        )
        if not self.target.adapter.alive():
            text += "\nthe adapter exited:\n" + self.target.adapter.evidence()
        return text

    def fail(self, tracked: Tracked, text: str, status: Status | None = None) -> PropertyFailed:
        shown_status = describe_status(status) if status is not None else ""
        return PropertyFailed(f"{text}\n{shown_status}\n{tracked.fake.evidence()}".strip())

    async def _look(self, tracked: Tracked) -> Before:
        status = await tracked.fake.status()
        now = time.monotonic()
        return Before(status, now, status.state == "active" and now >= tracked.disturbed_until)

    async def before(self, tracked: Tracked) -> Before:
        """The plugin as a call finds it. After failed calls, a single trial call goes
        first: a circuit they opened lets one through when it half-opens (SV-12), and
        that one must not be part of a burst."""
        before = await self._look(tracked)
        if before.clean and tracked.trial_pending:
            await self.trial(tracked, before)
            before = await self._look(tracked)
        return before

    async def trial(self, tracked: Tracked, before: Before) -> None:
        """An active, undisturbed plugin answers a command exactly; one whose commands hang
        keeps a post in the filter chain instead."""
        if tracked.setup.kind == Kind.HANGING:
            answer = await self.calls.filter_trial(tracked)
            await self.judge(tracked, before, answer, f"a trial post to {tracked.id!r}", "FL-1")
            tracked.trial_pending = answer.problem is not None
            return
        answer = await self.calls.command(tracked, f"/trial {next(self.calls.serial)} {NON_BMP}")
        await self.judge(
            tracked, before, answer, f"a trial ExecuteCommand on {tracked.id!r}", "RR-1"
        )
        tracked.trial_pending = answer.problem is not None

    async def running(self, tracked: Tracked) -> tuple[Status, Proc, psutil.Process] | None:
        """The plugin's active process, to disturb; None (noted) when it has none."""
        status = await tracked.fake.status()
        procs = processes(tracked.fake)
        pid = status.pid or (procs[-1].pid if procs else 0)
        proc = next((p for p in procs if p.pid == pid), None)
        found = proc.find() if proc is not None else None
        if status.state != "active" or proc is None or found is None:
            note(f"{tracked.id!r} is {status.state} (process {pid or 'none'}): left alone")
            return None
        return status, proc, found

    async def judge(
        self, tracked: Tracked, before: Before, answer: Answer, what: str, rules: str
    ) -> None:
        """An answer that is not exact fails the example when the plugin was active and
        undisturbed and the host reports no change of state that explains it."""
        if answer.fatal is not None:
            raise self.fail(tracked, f"{what}: {answer.fatal}")
        if answer.problem is None:
            return
        tracked.disturb()
        tracked.trial_pending = True
        if not before.clean:
            if before.state == "active":
                note(f"{what}: {answer.problem} (the plugin was under a fault)")
            return
        moved = await tracked.fake.watch_until(moved_on(before.status), DETECT_S)
        if moved is not None:
            note(f"{what}: {answer.problem} (the plugin then left {before.state})")
            return
        raise self.fail(
            tracked,
            f"{what}: {answer.problem}. The plugin was active, nothing had been done to it, "
            f"and the host reported no change of its state within {DETECT_S:g}s after: the "
            f"answer must be exact ({rules})",
            await tracked.fake.status(),
        )

    async def expect_off(self, tracked: Tracked, before: Before, answer: Answer, what: str) -> None:
        """A plugin that is stopped or failed throughout: commands fail plugin_unavailable
        (RR-3), HTTP gets 503 with Retry-After (SE-3)."""
        after = await tracked.fake.status()
        if before.state not in ("stopped", "failed") or moved_on(before.status)(after):
            return
        problem = None
        if answer.response is not None:
            retry = answer.response.headers.get("retry-after", "")
            if answer.response.status_code != 503 or not retry.isdigit() or int(retry) < 1:
                problem = (
                    f"the host answered {answer.response.status_code} with Retry-After "
                    f"{retry!r}; for a plugin that is not active it answers 503 with a "
                    "Retry-After of at least 1 s (SE-3)"
                )
        elif answer.error_kind and answer.error_kind != "plugin_unavailable":
            problem = (
                f"the host returned the error kind {answer.error_kind!r}; for a plugin that is "
                "not active it is 'plugin_unavailable' (RR-3)"
            )
        if problem is not None:
            raise self.fail(tracked, f"{what}, with the plugin {before.state}: {problem}", after)

    # -- waiting for the host ------------------------------------------------------------------

    async def await_start(self, tracked: Tracked, what: str) -> None:
        """A flapping plugin may fail for good; the others must become active."""
        if tracked.setup.kind == Kind.FLAPPING:
            await self.settle(tracked)
            return
        status = await tracked.fake.watch_until(
            lambda s: s.state in ("active", "failed", "stopped"), START_BOUND_S
        )
        if status is None or status.state != "active":
            raise self.fail(
                tracked,
                f"the {tracked.setup.kind} plugin {tracked.id!r} was {what}, and did not become "
                f"active within {START_BOUND_S:g}s; it handshakes, reports SERVING and accepts "
                "its activation at once (SV-1, LC-1)",
                status or await tracked.fake.status(),
            )

    async def await_crash(
        self, tracked: Tracked, after: int, timeout_s: float, why: str
    ) -> Transition:
        def crashed(status: Status) -> bool:
            return any(t.new_state == "crashed" for t in status.transitions[after:])

        status = await tracked.fake.watch_until(crashed, timeout_s)
        if status is None:
            raise self.fail(
                tracked,
                f"{why}; no `crashed` came within {timeout_s:g}s",
                await tracked.fake.status(),
            )
        return next(t for t in status.transitions[after:] if t.new_state == "crashed")

    async def settle(self, tracked: Tracked) -> Status:
        """Wait until the plugin rests: active or failed when enabled, else stopped."""
        states = ON_STATES if tracked.enabled else OFF_STATES
        status = await tracked.fake.watch_until(lambda s: s.state in states, START_BOUND_S)
        if status is None:
            want = " or ".join(states)
            raise self.fail(
                tracked,
                f"the plugin did not come to rest ({want}) within {START_BOUND_S:g}s; with a "
                f"start timeout of {START_TIMEOUT_S:g}s and backoff of at most "
                f"{tracked.policy.backoff_max_s:g}s it must (SV-1, SV-8)",
                await tracked.fake.status(),
            )
        return status

    # -- the end ------------------------------------------------------------------------------

    def teardown(self) -> None:
        """Resume whatever is still stopped, then unload everything (leftovers fail)."""
        resumed = self.injector.release_all()
        if resumed:
            note(f"resumed stopped processes {resumed} before unloading")
        try:
            self.run(self.context.close_target(self.target), CLOSE_BOUND_S + 10, "unloading")
        except PropertyFailed as exc:
            if self.failure is None:
                raise
            note(f"unloading after the failure: {exc}")
        if self.failure is not None:
            raise PropertyFailed(str(self.failure)) from None
