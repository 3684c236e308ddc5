"""The host state machine's rules for plugins whose hooks hang: the circuit breaker (SV-11,
SV-12, SE-4), the deadline the plugin sees (HK-11), and notifications that one hung plugin
must not hold up (NT-2).
"""

from __future__ import annotations

import asyncio
import time

from hypothesis import note

from pluginconf.control import control_pb2
from pluginconf.fuzz.host.bounds import (
    CLOCK_SLACK_S,
    DETECTION_SLACK_S,
    FIREHOOK_GRACE_S,
    MAX_PLUGINS,
    NON_BMP,
    SLACK_S,
)
from pluginconf.fuzz.host.breaker import BreakerModel
from pluginconf.fuzz.host.calls import answered
from pluginconf.fuzz.host.driver import HostDriver
from pluginconf.fuzz.host.rules.fan_out import FanOut
from pluginconf.fuzz.host.tracked import Tracked
from pluginconf.fuzz.strategies.host import Kind
from pluginconf.runner.host.fake_plugin import describe_error
from pluginconf.runner.host.observer import Observed, received
from pluginconf.v1 import hooks_pb2

# How much earlier than its deadline a host's timer may fire a timeout.
DEADLINE_EARLY_S = 0.05


class _ModelVoid(Exception):
    """The plugin's process changed under the model: what it predicted no longer holds."""


class BreakerRules:
    """Tripping a hanging plugin's circuit and probing it; notifications past a hung plugin."""

    def __init__(self, driver: HostDriver) -> None:
        self.driver = driver
        self.calls = driver.calls
        self.fan_out = FanOut(driver)

    def _hanging(self) -> list[Tracked]:
        return [t for t in self.driver.tracked if t.setup.kind == Kind.HANGING]

    def trip_breaker(self, which: int, reset_after: int | None, trials: int) -> None:
        if self.driver.stopped:
            return
        hanging = self._hanging()
        plugin = hanging[which % len(hanging)]
        p = plugin.policy
        rounds = p.breaker_threshold + 3
        bound = rounds * (p.hook_timeout_s + FIREHOOK_GRACE_S) + 2 * p.breaker_cooldown_s + 30
        self.driver.step(
            self._trip_breaker(plugin, reset_after, trials),
            bound,
            f"tripping the circuit of {plugin.id!r}",
        )

    async def _trip_breaker(self, tracked: Tracked, reset_after: int | None, trials: int) -> None:
        """SV-11: failures up to the threshold reach the plugin, and each ends there at its
        deadline (HK-11); a success between them resets the count; then calls fail with
        circuit_open unsent, and HTTP gets 503 with the seconds until it half-opens (SE-4).
        SV-12: after the cooldown, of ``trials`` calls at once exactly one goes through."""
        if tracked.setup.kind != Kind.HANGING:
            note(f"{tracked.id!r} answers its hooks: no circuit to trip")
            return
        status = await tracked.fake.status()
        if status.state != "active":
            note(f"{tracked.id!r} is {status.state}: no circuit to trip")
            return
        pid = status.pid
        try:
            model = await self._closed(tracked, pid)
            n = 0
            while model.opened is None:
                if reset_after == n:
                    await self._success(tracked, model, pid, "between the failures")
                await self._failing(tracked, model, pid, f"/fail {n} {NON_BMP}")
                n += 1
            await self._blocked(tracked, model, pid)
            await self._http_blocked(tracked, model)
            wait = model.half_opens_by() + CLOCK_SLACK_S - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)  # the cooldown passing is what is tested
            await self._half_open(tracked, model, pid, trials)
        except _ModelVoid as exc:
            note(f"{tracked.id!r}: {exc}; the breaker is not judged further")
        finally:
            tracked.disturb()

    async def _closed(self, tracked: Tracked, pid: int) -> BreakerModel:
        """Wait out the effects of earlier failures, then close the circuit with a success."""
        wait = tracked.disturbed_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)  # an earlier circuit's cooldown passing
        p = tracked.policy
        model = BreakerModel(p.breaker_threshold, p.breaker_cooldown_s)
        await self._success(tracked, model, pid, "after the cooldown of earlier failures")
        return model

    async def _same_process(self, tracked: Tracked, pid: int) -> None:
        status = await tracked.fake.status()
        if status.state != "active" or status.pid != pid:
            raise _ModelVoid(f"process {pid} is no longer the active one ({status.state})")

    async def _success(self, tracked: Tracked, model: BreakerModel, pid: int, when: str) -> None:
        sent = time.monotonic()
        answer = await self.calls.filter_trial(tracked)
        await self._same_process(tracked, pid)
        if answer.problem is not None:
            if model.surely_open(sent):
                return  # refused through the open circuit: judged by _blocked
            raise self.driver.fail(
                tracked,
                f"a post through the filter chain {when}, the circuit not open after "
                f"{model.failures} failure(s) (threshold {model.threshold}): "
                f"{answer.problem}; it must reach the plugin (SV-11, SV-12)",
            )
        model.success()

    def _command_calls(self, tracked: Tracked, pid: int, text: str) -> list[Observed]:
        return [
            c
            for c in tracked.fake.calls("ExecuteCommand", pid)
            if received(c, hooks_pb2.ExecuteCommandRequest).command == text
        ]

    async def _fire(
        self, tracked: Tracked, text: str
    ) -> tuple[control_pb2.CommandOutcome, float, float]:
        grace = tracked.policy.hook_timeout_s + FIREHOOK_GRACE_S
        sent = time.monotonic()
        outcome = await answered(tracked.fake.command(text, timeout_s=grace))
        if outcome is None:
            raise self.driver.fail(
                tracked, f"ExecuteCommand {text!r} did not end within {grace:g}s (HK-11)"
            )
        return outcome, sent, time.monotonic()

    async def _failing(self, tracked: Tracked, model: BreakerModel, pid: int, text: str) -> None:
        """A call before the circuit opens: it reaches the plugin and times out (HK-11),
        the plugin sees it end at its deadline, and it counts (SV-11)."""
        tracked.commands.add(text)
        outcome, sent, done = await self._fire(tracked, text)
        await self._same_process(tracked, pid)
        got = describe_error(outcome.error) if outcome.HasField("error") else "an answer"
        if outcome.WhichOneof("result") != "error" or outcome.error.kind != "timeout":
            raise self.driver.fail(
                tracked,
                f"ExecuteCommand {text!r}, failure {model.failures + 1} of a circuit with "
                f"threshold {model.threshold}: the host returned {got}; the plugin never "
                "answers, so it must time out at the hook deadline, the circuit still "
                "closed (SV-11, HK-11)",
            )
        reached = self._command_calls(tracked, pid, text)
        if not reached:
            raise self.driver.fail(
                tracked, f"the host timed out ExecuteCommand {text!r} without sending it (SV-11)"
            )
        await self._ended_at_deadline(tracked, reached[0], text)
        model.failure(self._timed_out_by(tracked, sent), done)

    @staticmethod
    def _timed_out_by(tracked: Tracked, sent: float) -> float:
        """The earliest a call sent then can have timed out: its deadline starts when the
        host sends it, after the machine did (less a timer's granularity)."""
        return sent + tracked.policy.hook_timeout_s - DEADLINE_EARLY_S

    async def _ended_at_deadline(self, tracked: Tracked, call: Observed, text: str) -> None:
        """HK-11: the call carries the hook deadline, so the plugin sees it end (cancelled)
        once the deadline passes, not only the host's caller."""
        guard = tracked.policy.hook_timeout_s + DETECTION_SLACK_S + SLACK_S
        end = await tracked.fake.target.observer.wait_for(
            lambda e: (
                e.label == tracked.id
                and e.event == "call_end"
                and e.pid == call.pid
                and e.get("call") == call.get("call")
            ),
            max(0.0, call.monotonic + guard - time.monotonic()),
        )
        if end is None or end.get("outcome") != "cancelled":
            seen = "it was still running" if end is None else f"it ended {end.get('outcome')!r}"
            raise self.driver.fail(
                tracked,
                f"ExecuteCommand {text!r} timed out at the host, and {guard:g}s after it "
                f"reached the plugin {seen}; the host gives every hook call a gRPC deadline "
                f"of the hook deadline ({tracked.policy.hook_timeout_s:g}s), so the plugin "
                "sees it cancelled then (HK-11)",
            )

    async def _blocked(self, tracked: Tracked, model: BreakerModel, pid: int) -> None:
        """SV-11: while the circuit is open a call fails with circuit_open, unsent."""
        text = f"/blocked {next(self.calls.serial)} {NON_BMP}"
        tracked.commands.add(text)
        outcome, sent, _ = await self._fire(tracked, text)
        if not model.surely_open(sent):
            note(f"{text!r} was sent at the end of the cooldown: not judged")
            return
        kind = outcome.error.kind if outcome.WhichOneof("result") == "error" else "an answer"
        reached = self._command_calls(tracked, pid, text)
        if kind != "circuit_open" or reached:
            raise self.driver.fail(
                tracked,
                f"ExecuteCommand {text!r} after {model.failures} consecutive failures "
                f"(threshold {model.threshold}), within the {model.cooldown_s:g}s cooldown: "
                f"it ended with {kind!r} and {'reached' if reached else 'did not reach'} the "
                "plugin; an open circuit fails calls at once with circuit_open without "
                "sending them (SV-11)",
                await tracked.fake.status(),
            )

    async def _http_blocked(self, tracked: Tracked, model: BreakerModel) -> None:
        """SE-4: while the circuit is open HTTP gets 503 and Retry-After, the seconds until
        it half-opens rounded up; nothing reaches the plugin."""
        if not self.driver.target.http_base_url:
            return
        served = len(tracked.fake.calls("ServeHTTP"))
        http = self.driver.target.http(timeout_s=10.0)
        sent = time.monotonic()
        response = await http.get(tracked.fake.url("/echo"))
        done = time.monotonic()
        if not model.surely_open(done):
            note(f"GET /echo answered {response.status_code} at the end of the cooldown")
            return
        retry = response.headers.get("retry-after", "")
        allowed = model.retry_after(sent, done)
        reached = len(tracked.fake.calls("ServeHTTP")) > served
        if (
            response.status_code != 503
            or not retry.isdigit()
            or int(retry) not in allowed
            or reached
        ):
            raise self.driver.fail(
                tracked,
                f"GET /echo while the circuit of {tracked.id!r} was open: status "
                f"{response.status_code}, Retry-After {retry!r}, "
                f"{'reached' if reached else 'did not reach'} the plugin; expected 503 with "
                f"Retry-After in {list(allowed)} (the seconds until it half-opens, rounded "
                "up), unsent (SE-4, SV-11)",
            )

    async def _half_open(self, tracked: Tracked, model: BreakerModel, pid: int, n: int) -> None:
        """SV-12: after the cooldown exactly one of ``n`` calls at once is the trial; it
        fails, so the circuit opens again."""
        texts = [f"/trial-call {i} {next(self.calls.serial)} {NON_BMP}" for i in range(n)]
        tracked.commands.update(texts)
        sent = time.monotonic()
        outcomes = await asyncio.gather(*(self._fire(tracked, t) for t in texts))
        await self._same_process(tracked, pid)
        if not model.surely_half_open(sent):
            note("the calls came before the cooldown had surely passed: not judged")
            return
        kinds = [
            o.error.kind if o.WhichOneof("result") == "error" else "answer" for o, _, _ in outcomes
        ]
        reached = [t for t in texts if self._command_calls(tracked, pid, t)]
        if len(reached) != 1 or sorted(kinds) != ["circuit_open"] * (n - 1) + ["timeout"]:
            raise self.driver.fail(
                tracked,
                f"{n} commands at once {sent - model.half_opens_by():+.2f}s after the "
                f"{model.cooldown_s:g}s cooldown surely ended: {len(reached)} reached the "
                f"plugin, outcomes {kinds}; a half-open circuit lets exactly one trial "
                f"through (it times out) and fails the others with circuit_open (SV-12)",
                await tracked.fake.status(),
            )
        trial = next(o for o in outcomes if o[0].error.kind == "timeout")
        model.failure(self._timed_out_by(tracked, trial[1]), trial[2])
        await self._blocked(tracked, model, pid)

    # -- NT-2 ----------------------------------------------------------------------------------

    def notify_past_hung(self, seed: int) -> None:
        if self.driver.stopped:
            return
        bound = 4 * (2.0 + FIREHOOK_GRACE_S) * MAX_PLUGINS + 30
        self.driver.step(
            self._notify_past_hung(seed), bound, "MessageHasBeenPosted past a hung plugin"
        )

    async def _notify_past_hung(self, seed: int) -> None:
        """NT-2 with the hung plugins' circuits closed first, so that their calls are sent
        and hang (``seed`` only tells runs apart)."""
        hung, others = await self.fan_out.parties()
        for tracked in hung:
            try:
                await self._closed(tracked, (await tracked.fake.status()).pid)
            except _ModelVoid as exc:
                note(f"{tracked.id!r}: {exc}")
        hung, others = await self.fan_out.parties()
        if not hung or not others:
            note("no active hung plugin, or no other active plugin")
            return
        await self.fan_out.judge(await self.fan_out.notify_once(hung, others), hung, others)
