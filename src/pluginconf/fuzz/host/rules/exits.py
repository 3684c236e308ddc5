"""The host state machine's rules for a process that exits under a call: calls in progress
fail at once (SV-5), and an HTTP exchange ends with 502 before its response began (SE-5), or
is cut after (SE-6). With the re-measurements of SV-4 and SV-5 on fakes of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
import psutil
from hypothesis import note

from pluginconf.fuzz.host.bounds import (
    EXIT_DETECTION_S,
    FIREHOOK_GRACE_S,
    HTTP_BOUND_S,
    IN_FLIGHT_S,
    NON_BMP,
    REMEASURE_DEADLINE_S,
    REMEASURE_HEALTH_INTERVAL_S,
    SLACK_S,
)
from pluginconf.fuzz.host.calls import answered
from pluginconf.fuzz.host.driver import HostDriver
from pluginconf.fuzz.host.tracked import Tracked
from pluginconf.fuzz.strategies.host import shown
from pluginconf.runner.host.fake_plugin import describe_error
from pluginconf.runner.host.observer import received
from pluginconf.runner.host.target import HostTarget
from pluginconf.runner.timing import Yardstick, judge_time
from pluginconf.v1 import hooks_pb2

# Deadlock guards, not SPEC bounds: a call reaching the fake, a response starting.
REACH_GUARD_S = 10.0
# How long a re-measurement waits for its event: far past the 1 s bounds it measures.
REMEASURE_GUARD_S = 5.0


async def exit_noticed_again(target: HostTarget) -> float | None:
    """SV-4 measured again: a fresh fake that checks health only every minute is killed;
    seconds until the host's `crashed` (None: not within SV-3's 10 s and slack)."""
    fake = await target.load(
        {}, name="sv4", restart_limit=1, health_interval_s=REMEASURE_HEALTH_INTERVAL_S
    )
    before = len((await fake.status()).transitions)
    killed_at = time.time()
    fake.kill()
    status = await fake.watch_until(
        lambda s: any(t.new_state == "crashed" for t in s.transitions[before:]),
        REMEASURE_GUARD_S,
    )
    if status is None:
        return None
    crash = next(t for t in status.transitions[before:] if t.new_state == "crashed")
    return crash.wall_time - killed_at


async def in_flight_again(target: HostTarget) -> float | None:
    """SV-5 measured again: a command held by a fresh fake (deadline 30 s) whose process is
    then killed; seconds until the command fails (None: it did not within 5 s)."""
    fake = await target.load(
        {"hang": {"hook": "ExecuteCommand"}},
        name="sv5",
        restart_limit=1,
        hook_timeout_s=REMEASURE_DEADLINE_S,
    )
    task = asyncio.ensure_future(fake.command("/held", timeout_s=REMEASURE_DEADLINE_S + 10))
    try:
        held = await fake.wait_event("hanging", timeout_s=REACH_GUARD_S)
        killed = time.monotonic()
        fake.kill(held.pid)
        done, _ = await asyncio.wait({task}, timeout=REMEASURE_GUARD_S)
        return time.monotonic() - killed if done else None
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


class ExitRules:
    """Killing a plugin's process while a hook call or an HTTP exchange is in progress."""

    def __init__(self, driver: HostDriver) -> None:
        self.driver = driver
        self.calls = driver.calls

    def kill_in_call(self, plugin: Tracked, command: str) -> None:
        if self.driver.stopped:
            return
        bound = plugin.policy.hook_timeout_s + FIREHOOK_GRACE_S + REACH_GUARD_S + 3 * 60 + 30
        self.driver.step(
            self._kill_in_call(plugin, command), bound, f"killing {plugin.id!r} in a call"
        )

    async def _kill_in_call(self, tracked: Tracked, command: str) -> None:
        """SV-5: the process that holds a command is killed; the command fails within 1 s
        with plugin_unavailable, not at its deadline, and not retried elsewhere."""
        running = await self.driver.running(tracked)
        if running is None:
            return
        status, proc, found = running
        tracked.disturb()
        tracked.commands.add(command)
        grace = tracked.policy.hook_timeout_s + FIREHOOK_GRACE_S
        task = asyncio.ensure_future(answered(tracked.fake.command(command, timeout_s=grace)))
        reach = asyncio.ensure_future(
            tracked.fake.target.observer.wait_for(
                lambda e: (
                    e.label == tracked.id
                    and e.event == "call"
                    and e.pid == proc.pid
                    and e.get("hook") == "ExecuteCommand"
                    and received(e, hooks_pb2.ExecuteCommandRequest).command == command
                ),
                REACH_GUARD_S,
            )
        )
        try:
            # An open circuit fails the command unsent: then there is no call to wait for.
            await asyncio.wait({task, reach}, return_when=asyncio.FIRST_COMPLETED)
            call = await reach if reach.done() or not task.done() else None
            killed = time.monotonic()
            self.driver.injector.kill(found)
            outcome = await task
        finally:
            task.cancel()
            reach.cancel()
        took = time.monotonic() - killed
        await self._crash_seen(tracked, proc.pid, len(status.transitions))
        if call is None or outcome is None:
            note(f"the command did not reach process {proc.pid}, or did not end: not judged")
            return
        ended = [
            e
            for e in tracked.fake.events("call_end", proc.pid)
            if e.get("call") == call.get("call")
        ]
        if ended:
            note(f"process {proc.pid} answered the command before it was killed")
            return
        note(f"killed process {proc.pid} of {tracked.id!r} while it held a command")
        what = f"ExecuteCommand {shown(command)} held by process {proc.pid} when it was killed"
        if outcome.WhichOneof("result") != "error" or outcome.error.kind != "plugin_unavailable":
            got = (
                describe_error(outcome.error)
                if outcome.WhichOneof("result") == "error"
                else f"an answer {shown(outcome.response.text)}"
            )
            raise self.driver.fail(
                tracked,
                f"{what}: the host returned {got} {took:.2f}s after the kill; a call in "
                "progress to a process that exits fails with plugin_unavailable (SV-5)",
                await tracked.fake.status(),
            )
        verdict = await judge_time(
            IN_FLIGHT_S,
            lambda: in_flight_again(self.driver.target),
            Yardstick.SIGNAL,
            f"the failure of {what}",
            seen=[took],
        )
        if not verdict.met:
            raise self.driver.fail(
                tracked,
                f"{verdict.evidence()}; calls in progress to a process that exits fail "
                "within 1 s instead of waiting for their deadline (SV-5)",
            )

    def cut_http(self, plugin: Tracked, started: bool) -> None:
        if self.driver.stopped:
            return
        self.driver.step(
            self._cut_http(plugin, started),
            HTTP_BOUND_S + REACH_GUARD_S + EXIT_DETECTION_S + 30,
            "cutting HTTP",
        )

    async def _cut_http(self, tracked: Tracked, started: bool) -> None:
        """The process is killed during an exchange: before the response began (POST /sink,
        its body not yet all sent) the host answers 502 (SE-5); after (GET /hold, its first
        bytes in) it aborts the response, never ending it as if complete (SE-6)."""
        if not self.driver.target.http_base_url:
            note("the host has no HTTP front")
            return
        running = await self.driver.running(tracked)
        if running is None:
            return
        status, proc, found = running
        tracked.disturb()
        http = self.driver.target.http(timeout_s=HTTP_BOUND_S)
        async with asyncio.timeout(HTTP_BOUND_S):
            cut = self._cut_after_start if started else self._cut_before_start
            killed = await cut(tracked, http, proc.pid, found)
        if killed:
            await self._crash_seen(tracked, proc.pid, len(status.transitions))

    async def _crash_seen(self, tracked: Tracked, pid: int, after: int) -> None:
        """The kill is noticed before the next step, which must not take the dead process
        for the active one (SV-3)."""
        why = f"process {pid} of {tracked.id!r} was killed (SIGKILL) (SV-3)"
        await self.driver.await_crash(tracked, after, EXIT_DETECTION_S + SLACK_S, why)

    async def _served(self, tracked: Tracked, pid: int, path: str) -> bool:
        event = await tracked.fake.target.observer.wait_for(
            lambda e: (
                e.label == tracked.id
                and e.pid == pid
                and e.event == "call"
                and e.get("hook") == "ServeHTTP"
                and path in str(e.get("request", {}).get("url", e.get("path", "")))
            ),
            REACH_GUARD_S,
        )
        return event is not None

    async def _cut_after_start(
        self, tracked: Tracked, http: httpx.AsyncClient, pid: int, found: psutil.Process
    ) -> bool:
        async with http.stream("GET", tracked.fake.url("/hold")) as response:
            if response.status_code != 200:
                note(f"GET /hold answered {response.status_code}: not judged")
                return False
            chunks = response.aiter_raw()
            first = await anext(chunks, b"")
            self.driver.injector.kill(found)
            note(f"killed process {pid} of {tracked.id!r} after its response began")
            try:
                rest = b"".join([c async for c in chunks])
            except httpx.HTTPError as exc:
                note(f"the response was aborted: {type(exc).__name__}")
                return True
        raise self.driver.fail(
            tracked,
            f"GET /hold: the plugin's process was killed after the response began "
            f"({shown(first)} in), and the host ended the response as if complete "
            f"({len(first) + len(rest)} bytes); a response cut by the plugin's exit is aborted, "
            "without the final chunk or before its announced length (SE-6)",
        )

    async def _cut_before_start(
        self, tracked: Tracked, http: httpx.AsyncClient, pid: int, found: psutil.Process
    ) -> bool:
        release = asyncio.Event()

        async def body() -> AsyncIterator[bytes]:
            yield f"first piece {NON_BMP}".encode()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), REACH_GUARD_S)

        request = asyncio.ensure_future(http.post(tracked.fake.url("/sink"), content=body()))
        try:
            reached = await tracked.fake.target.observer.wait_for(
                lambda e: (
                    e.label == tracked.id and e.pid == pid and e.event == "http_body_progress"
                ),
                REACH_GUARD_S,
            )
            if reached is None:
                note("the body did not reach the plugin: not judged")
                return False
            self.driver.injector.kill(found)
            release.set()  # the body ends: the host may answer
            note(f"killed process {pid} of {tracked.id!r} before its response began")
            try:
                response = await asyncio.shield(request)
            except httpx.HTTPError as exc:
                problem = f"the exchange broke off ({type(exc).__name__}: {exc})"
            else:
                if response.status_code == 502:
                    return True
                problem = f"the host answered {response.status_code}: {shown(response.text)}"
            raise self.driver.fail(
                tracked,
                f"POST /sink: the plugin's process was killed before its response began; "
                f"{problem}; a call that fails before the response's init is answered 502 "
                "(SE-5)",
            )
        finally:
            release.set()
            request.cancel()
            with contextlib.suppress(BaseException):
                await request
