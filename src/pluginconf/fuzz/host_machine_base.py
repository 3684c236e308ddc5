"""The host state machine's plumbing: running steps, judging answers, and calls through the host.

The rules (host_rules, host_fault_rules) and the invariants (host_invariants) are mixins of
this base; host_machine assembles them.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import time
from collections.abc import Coroutine, Mapping
from typing import Any, ClassVar, TypeVar

import grpc
import httpx
import psutil
from hypothesis import note
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
)

from pluginconf.control import control_pb2
from pluginconf.fuzz.faults import SignalInjector
from pluginconf.fuzz.host_bounds import (
    DETECT_S,
    FIREHOOK_GRACE_S,
    HTTP_BOUND_S,
    NON_BMP,
    SLACK_S,
    START_BOUND_S,
    START_TIMEOUT_S,
)
from pluginconf.fuzz.host_checks import ConfigChange, describe_error, describe_step, post_key
from pluginconf.fuzz.host_context import CLOSE_BOUND_S, HostFuzzContext
from pluginconf.fuzz.host_processes import Proc, moved_on, processes
from pluginconf.fuzz.host_strategies import (
    Body,
    Call,
    Kind,
    shown,
)
from pluginconf.fuzz.host_tracked import Answer, Before, Tracked
from pluginconf.fuzz.model import (
    PropertyFailed,
    PropertyNotApplicable,
)
from pluginconf.runner.host_target import HostTarget, describe_status
from pluginconf.runner.model import CaseFailed, CaseSkipped
from pluginconf.v1 import hooks_pb2

Status = control_pb2.PluginStatus
Transition = control_pb2.Transition
T = TypeVar("T")


# The states a plugin rests in: the machine waits for one of these after every step.
ON_STATES = ("active", "failed")
OFF_STATES = ("stopped", "loaded")
# The plugins loaded; None stands for a plugin whose load was skipped after a failure (see
# `HostMachineBase.stopped`).
plugins: Bundle[Tracked | None] = Bundle("plugins")


async def answered(call: Coroutine[Any, Any, T]) -> T | None:
    """``call``'s answer, or None when it did not come within the call's gRPC deadline; any
    other gRPC error propagates."""
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
        return None


class HostMachineBase(RuleBasedStateMachine):
    """One run: a fresh HostTarget, plugins loaded and disturbed, checked after each step.

    ``context`` is set by a subclass made per campaign (``state_machine_property``)."""

    context: ClassVar[HostFuzzContext]

    def __init__(self) -> None:
        super().__init__()
        self.context.example()
        self.tracked: list[Tracked] = []
        self.injector = SignalInjector()
        self.failure: PropertyFailed | None = None
        self.loads = 0  # load rules run, loaded or not: their precondition
        self.posts: set[bytes] = set()  # every post sent, serialized (HK-14)
        self.serial = itertools.count(1)
        # The first example starts the adapter, which has the suite's start timeout.
        bound = self.context.options.start_timeout_s + 30.0
        self.target: HostTarget = self.run(
            self.context.open_target(), bound, "opening the host under test"
        )

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

    def _fail(self, tracked: Tracked, text: str, status: Status | None = None) -> PropertyFailed:
        shown_status = describe_status(status) if status is not None else ""
        return PropertyFailed(f"{text}\n{shown_status}\n{tracked.fake.evidence()}".strip())

    async def _look(self, tracked: Tracked) -> Before:
        status = await tracked.fake.status()
        now = time.monotonic()
        return Before(status, now, status.state == "active" and now >= tracked.disturbed_until)

    async def _before(self, tracked: Tracked) -> Before:
        """The plugin as a call finds it. After failed calls, a single trial call goes
        first: a circuit they opened lets one through when it half-opens (SV-12), and
        that one must not be part of a burst."""
        before = await self._look(tracked)
        if before.clean and tracked.trial_pending:
            await self._trial(tracked, before)
            before = await self._look(tracked)
        return before

    async def _trial(self, tracked: Tracked, before: Before) -> None:
        """An active, undisturbed plugin answers a command exactly."""
        answer = await self._command(tracked, f"/trial {next(self.serial)} {NON_BMP}")
        await self._judge(
            tracked, before, answer, f"a trial ExecuteCommand on {tracked.id!r}", "RR-1"
        )
        tracked.trial_pending = answer.problem is not None

    async def _running(self, tracked: Tracked) -> tuple[Status, Proc, psutil.Process] | None:
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

    async def _judge(
        self, tracked: Tracked, before: Before, answer: Answer, what: str, rules: str
    ) -> None:
        """An answer that is not exact fails the example when the plugin was active and
        undisturbed and the host reports no change of state that explains it."""
        if answer.fatal is not None:
            raise self._fail(tracked, f"{what}: {answer.fatal}")
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
        raise self._fail(
            tracked,
            f"{what}: {answer.problem}. The plugin was active, nothing had been done to it, "
            f"and the host reported no change of its state within {DETECT_S:g}s after: the "
            f"answer must be exact ({rules})",
            await tracked.fake.status(),
        )

    def _check_deadline(self, what: str, took: float, deadline: float, rules: str) -> str | None:
        if took <= deadline + SLACK_S:
            return None
        return (
            f"it took {took:.2f}s; with a hook deadline of {deadline:g}s the host must answer "
            f"within it ({rules}; {SLACK_S:g}s allowed for the adapter)"
        )

    # -- calls through the host ---------------------------------------------------------------

    async def _command(self, tracked: Tracked, text: str) -> Answer:
        """ExecuteCommand through the host; the fake answers ``text``, ephemeral (RR-1)."""
        deadline = tracked.policy.hook_timeout_s
        tracked.commands.add(text)
        start = time.monotonic()
        outcome = await answered(tracked.fake.command(text, timeout_s=deadline + FIREHOOK_GRACE_S))
        if outcome is None:
            return Answer(
                None, f"FireHook did not answer within {deadline + FIREHOOK_GRACE_S:g}s (HK-11)"
            )
        fatal = self._check_deadline("ExecuteCommand", time.monotonic() - start, deadline, "HK-11")
        if outcome.WhichOneof("result") != "response":
            error = outcome.error
            return Answer(f"the host returned the error {describe_error(error)}", fatal, error.kind)
        reply = outcome.response
        if reply.text != text or reply.response_type != "ephemeral":
            return Answer(
                f"the host returned text {shown(reply.text)}, {reply.response_type!r}; the "
                f"fake answers the command it receives, {shown(text)}, 'ephemeral' (RR-1)",
                fatal,
            )
        return Answer(None, fatal)

    async def _echo(self, tracked: Tracked, body: Body) -> Answer:
        """POST /echo through the host's front; it must end, and be exact when healthy."""
        data = body.data()
        http = self.target.http(timeout_s=HTTP_BOUND_S)
        try:
            async with asyncio.timeout(HTTP_BOUND_S):
                response = await http.post(tracked.fake.url("/echo"), content=data)
        except TimeoutError:
            return Answer(
                None,
                f"the exchange did not end within {HTTP_BOUND_S:g}s; whatever befalls the "
                "plugin, the host must end it (SV-5, SE-5, SE-6)",
            )
        except httpx.HTTPError as exc:
            return Answer(f"the exchange broke off: {type(exc).__name__}: {exc}")
        if response.status_code != 200:
            return Answer(
                f"status {response.status_code}: {shown(response.text)}", response=response
            )
        if response.content != data:
            got = hashlib.sha256(response.content).hexdigest()[:16]
            sent = hashlib.sha256(data).hexdigest()[:16]
            return Answer(
                f"{len(response.content)} bytes came back (sha256 {got}...), not the "
                f"{len(data)} sent (sha256 {sent}...) (SE-10, SH-9)",
                response=response,
            )
        return Answer(None, response=response)

    async def _expect_off(
        self, tracked: Tracked, before: Before, answer: Answer, what: str
    ) -> None:
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
            raise self._fail(tracked, f"{what}, with the plugin {before.state}: {problem}", after)

    async def _call(self, tracked: Tracked, call: Call) -> Answer:
        await asyncio.sleep(call.delay_ms / 1000)  # the traffic's timing, not a wait
        if call.body is not None:
            return await self._echo(tracked, call.body)
        if call.configuration is not None:
            return await self._change(tracked, call.configuration)
        if call.post is not None:
            await self._chain(call.post.post())
            return Answer(None)
        return await self._command(tracked, call.command)

    async def _change(
        self, tracked: Tracked, configuration: Mapping[str, str], at_once: int = 1
    ) -> Answer:
        """A configuration change through the host. It may wait for the others sent at once
        and an activation in progress (LC-3: never concurrent), each with its deadline."""
        deadline = (at_once + 1) * tracked.policy.hook_timeout_s
        sent = time.monotonic()
        # Known before it is sent, for a call that arrives meanwhile; completed once answered.
        index = len(tracked.configurations)
        tracked.configurations.append(ConfigChange(sent, math.inf, dict(configuration), False))
        outcome = await answered(
            tracked.fake.configure(configuration, timeout_s=deadline + FIREHOOK_GRACE_S)
        )
        if outcome is None:
            return Answer(None, "the configuration change did not end (LC-3, HK-11)")
        done = time.monotonic()
        accepted = not outcome.HasField("error")
        tracked.configurations[index] = ConfigChange(sent, done, dict(configuration), accepted)
        return Answer(
            None if accepted else f"the host returned {describe_error(outcome.error)}",
            self._check_deadline("OnConfigurationChange", done - sent, deadline, "LC-3, HK-11"),
        )

    def _chain_bound(self) -> float:
        return len(self.tracked) * max(p.policy.hook_timeout_s for p in self.tracked)

    async def _chain(self, post: hooks_pb2.Post) -> control_pb2.FilterOutcome:
        """The post through the filter chain. Every fake keeps it and a failing step passes
        it on (FL-2, FL-5, FL-6), so whatever befalls the plugins the post leaving the chain
        is the one sent; the chain is one call after another, each with its deadline."""
        self.posts.add(post_key(post))
        deadline = self._chain_bound()
        start = time.monotonic()
        outcome = await answered(
            self.target.filter_post(post, timeout_s=deadline + FIREHOOK_GRACE_S)
        )
        if outcome is None:
            raise PropertyFailed("MessageWillBePosted through the host did not end (HK-11)")
        late = self._check_deadline("the chain", time.monotonic() - start, deadline, "HK-11, FL-1")
        if late is not None:
            raise PropertyFailed(f"MessageWillBePosted through the chain: {late}")
        if outcome.rejected or outcome.post != post:
            steps = [f"{s.plugin_id}: {describe_step(s)}" for s in outcome.steps]
            raise PropertyFailed(
                f"the filter chain {'rejected' if outcome.rejected else 'changed'} the post "
                f"(by {outcome.rejected_by!r}: {outcome.rejection_reason!r}); every fake keeps "
                "it and a failing step passes it on unchanged (FL-2, FL-5, FL-6)\n"
                f"sent: {shown(post, 400)}\nleft the chain: {shown(outcome.post, 400)}\n"
                f"steps: {steps}"
            )
        return outcome

    # -- waiting for the host ------------------------------------------------------------------

    async def _await_start(self, tracked: Tracked, what: str) -> None:
        """A flapping plugin may fail for good; the others must become active."""
        if tracked.setup.kind == Kind.FLAPPING:
            await self._settle(tracked)
            return
        status = await tracked.fake.watch_until(
            lambda s: s.state in ("active", "failed", "stopped"), START_BOUND_S
        )
        if status is None or status.state != "active":
            raise self._fail(
                tracked,
                f"the {tracked.setup.kind} plugin {tracked.id!r} was {what}, and did not become "
                f"active within {START_BOUND_S:g}s; it handshakes, reports SERVING and accepts "
                "its activation at once (SV-1, LC-1)",
                status or await tracked.fake.status(),
            )

    async def _await_crash(
        self, tracked: Tracked, after: int, timeout_s: float, why: str
    ) -> Transition:
        def crashed(status: Status) -> bool:
            return any(t.new_state == "crashed" for t in status.transitions[after:])

        status = await tracked.fake.watch_until(crashed, timeout_s)
        if status is None:
            raise self._fail(
                tracked,
                f"{why}; no `crashed` came within {timeout_s:g}s",
                await tracked.fake.status(),
            )
        return next(t for t in status.transitions[after:] if t.new_state == "crashed")

    async def _settle(self, tracked: Tracked) -> Status:
        """Wait until the plugin rests: active or failed when enabled, else stopped."""
        states = ON_STATES if tracked.enabled else OFF_STATES
        status = await tracked.fake.watch_until(lambda s: s.state in states, START_BOUND_S)
        if status is None:
            want = " or ".join(states)
            raise self._fail(
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
