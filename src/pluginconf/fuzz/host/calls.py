"""Calls through the host under test, as the state machine makes them, each judged exact or not.

The driver (driver.py) and the rules (rules/) call them; each returns an :class:`Answer`
(or raises :class:`PropertyFailed` for what no state of a plugin excuses).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import time
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

import grpc
import httpx

from pluginconf.control import control_pb2
from pluginconf.fuzz.host.bounds import FIREHOOK_GRACE_S, HTTP_BOUND_S, NON_BMP, SLACK_S
from pluginconf.fuzz.host.checks import HUNG_CALL_KINDS, ConfigChange, describe_step, post_key
from pluginconf.fuzz.host.tracked import Answer, Tracked
from pluginconf.fuzz.model import PropertyFailed
from pluginconf.fuzz.strategies.host import Body, Call, Kind, shown
from pluginconf.runner.host.fake_plugin import describe_error
from pluginconf.runner.host.target import HostTarget
from pluginconf.v1 import hooks_pb2

T = TypeVar("T")


async def answered(call: Coroutine[Any, Any, T]) -> T | None:
    """``call``'s answer, or None when it did not come within the call's gRPC deadline; any
    other gRPC error propagates."""
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
        return None


def check_deadline(took: float, deadline: float, rules: str) -> str | None:
    """What is wrong with a call that took ``took`` under a hook deadline; None: in time."""
    if took <= deadline + SLACK_S:
        return None
    return (
        f"it took {took:.2f}s; with a hook deadline of {deadline:g}s the host must answer "
        f"within it ({rules}; {SLACK_S:g}s allowed for the adapter)"
    )


class HostCalls:
    """The calls one run makes through ``target``, and what they sent (HK-14)."""

    def __init__(self, target: HostTarget, tracked: list[Tracked]) -> None:
        self.target = target
        self.tracked = tracked  # the driver's list of plugins: the chain's deadline
        self.posts: set[bytes] = set()  # every post sent, serialized (HK-14)
        self.serial = itertools.count(1)

    async def filter_trial(self, tracked: Tracked) -> Answer:
        """A post through the chain: the plugin's one step must keep it. A success closes
        its circuit and resets its failure count (SV-11, SV-12)."""
        post = hooks_pb2.Post(id=f"trial-{next(self.serial)}", message=f"trial {NON_BMP}")
        outcome = await self.chain(post)
        steps = [describe_step(s) for s in outcome.steps if s.plugin_id == tracked.id]
        if steps != ["keep"]:
            return Answer(f"its steps in the chain were {steps}; expected one 'keep' (FL-1)")
        return Answer(None)

    async def command(self, tracked: Tracked, text: str) -> Answer:
        """ExecuteCommand through the host; the fake answers ``text``, ephemeral (RR-1)."""
        deadline = tracked.policy.hook_timeout_s
        tracked.commands.add(text)
        start = time.monotonic()
        outcome = await answered(tracked.fake.command(text, timeout_s=deadline + FIREHOOK_GRACE_S))
        if outcome is None:
            return Answer(
                None, f"FireHook did not answer within {deadline + FIREHOOK_GRACE_S:g}s (HK-11)"
            )
        fatal = check_deadline(time.monotonic() - start, deadline, "HK-11")
        if tracked.setup.kind == Kind.HANGING:
            return self._hung_answer(tracked, outcome, fatal)
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

    def _hung_answer(
        self, tracked: Tracked, outcome: control_pb2.CommandOutcome, fatal: str | None
    ) -> Answer:
        """A command to a plugin that never answers it fails: at its deadline, through an
        open circuit, or because the process went away. Its circuit may now be open."""
        tracked.disturb()
        if outcome.WhichOneof("result") != "error":
            return Answer(
                f"the host returned an answer {shown(outcome.response.text)} for a command "
                "the plugin never answers",
                fatal,
            )
        kind = outcome.error.kind
        if kind not in HUNG_CALL_KINDS:
            return Answer(
                f"the host returned {describe_error(outcome.error)}; a command the plugin "
                f"never answers fails with one of {sorted(HUNG_CALL_KINDS)} (HK-11, SV-11, RR-3)",
                fatal,
                kind,
            )
        return Answer(None, fatal, kind)

    async def echo(self, tracked: Tracked, body: Body) -> Answer:
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

    async def call(self, tracked: Tracked, call: Call) -> Answer:
        await asyncio.sleep(call.delay_ms / 1000)  # the traffic's timing, not a wait
        if call.body is not None:
            return await self.echo(tracked, call.body)
        if call.configuration is not None:
            return await self.change(tracked, call.configuration)
        if call.post is not None:
            await self.chain(call.post.post())
            return Answer(None)
        return await self.command(tracked, call.command)

    async def change(
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
            check_deadline(done - sent, deadline, "LC-3, HK-11"),
        )

    def chain_bound(self) -> float:
        return len(self.tracked) * max(p.policy.hook_timeout_s for p in self.tracked)

    async def chain(self, post: hooks_pb2.Post) -> control_pb2.FilterOutcome:
        """The post through the filter chain. Every fake keeps it and a failing step passes
        it on (FL-2, FL-5, FL-6), so whatever befalls the plugins the post leaving the chain
        is the one sent; the chain is one call after another, each with its deadline."""
        self.posts.add(post_key(post))
        deadline = self.chain_bound()
        start = time.monotonic()
        outcome = await answered(
            self.target.filter_post(post, timeout_s=deadline + FIREHOOK_GRACE_S)
        )
        if outcome is None:
            raise PropertyFailed("MessageWillBePosted through the host did not end (HK-11)")
        late = check_deadline(time.monotonic() - start, deadline, "HK-11, FL-1")
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
