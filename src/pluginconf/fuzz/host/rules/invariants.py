"""What the host state machine checks after every step: states agree with processes, the
transitions, restarts and deliveries with the SPEC, and quiet plugins stay up.
"""

from __future__ import annotations

import time

from hypothesis import note

from pluginconf.control import control_pb2
from pluginconf.fuzz.host.bounds import EXIT_DETECTION_S, GONE_S, INVARIANT_BOUND_S, SLACK_S
from pluginconf.fuzz.host.checks import (
    lifecycle_problems,
    overlapping_changes,
    post_key,
    restart_problems,
    start_problems,
    transition_problems,
)
from pluginconf.fuzz.host.driver import HostDriver
from pluginconf.fuzz.host.processes import (
    Proc,
    grandchildren,
    moved_on,
    paths_left,
    processes,
    runs,
    still_there,
)
from pluginconf.fuzz.host.tracked import Before, Tracked
from pluginconf.fuzz.strategies.host import Kind, shown
from pluginconf.runner.host.observer import Observed, received
from pluginconf.v1 import hooks_pb2

Status = control_pb2.PluginStatus


class _Moved(Exception):
    """The plugin changed state while it was being checked: look again."""


class Invariants:
    """What holds after every step."""

    def __init__(self, driver: HostDriver) -> None:
        self.driver = driver
        self.calls = driver.calls

    # -- what holds after every step ----------------------------------------------------------

    def host_agrees(self) -> None:
        if self.driver.stopped:
            return
        self.driver.step(
            self._check_all(), INVARIANT_BOUND_S, "checking every plugin after the step"
        )

    async def _check_all(self) -> None:
        for tracked in self.driver.tracked:
            self._check_delivered(tracked)
            self._check_changes_apart(tracked)
            status = await self._check_plugin(tracked)
            self._check_quiet(tracked, status)
            await self._probe(tracked, status)

    def _check_delivered(self, tracked: Tracked) -> None:
        """HK-14: whatever befalls a plugin, each command, post and configuration it
        receives is one the machine sent, byte for byte (a late one included)."""
        calls = tracked.fake.calls()
        for call in calls[tracked.delivered :]:
            problem = self._undelivered(tracked, call)
            if problem is not None:
                raise self.driver.fail(
                    tracked,
                    f"process {call.pid} received {call.get('hook')} with {problem}, which the "
                    "machine never sent; a host delivers every string exactly (HK-14)",
                )
        tracked.delivered = len(calls)

    def _check_changes_apart(self, tracked: Tracked) -> None:
        """LC-3: a process gets one configuration change at a time. An undisturbed fake
        answers well within the deadline, so a second change that reaches it meanwhile was
        sent while the host still waited for the first."""
        for first, second in overlapping_changes(tracked.fake.events()):
            if not tracked.disturbed_at(second.monotonic):
                raise self.driver.fail(
                    tracked,
                    f"process {second.pid} received OnConfigurationChange (call "
                    f"{second.get('call')}) while call {first.get('call')} was still in "
                    "progress; a plugin's configuration changes are never concurrent (LC-3)",
                )

    def _undelivered(self, tracked: Tracked, call: Observed) -> str | None:
        """What the call carries, when the machine did not send it; else None."""
        hook = call.get("hook")
        if hook == "ExecuteCommand":
            command = received(call, hooks_pb2.ExecuteCommandRequest).command
            sent = sorted(tracked.commands, key=len)
            return (
                None if command in tracked.commands else f"{shown(command)} (sent: {shown(sent)})"
            )
        if hook in ("MessageWillBePosted", "MessageHasBeenPosted"):
            request_type = getattr(hooks_pb2, f"{hook}Request")
            post = received(call, request_type).post
            return None if post_key(post) in self.calls.posts else f"the post {shown(post, 300)}"
        if hook == "OnConfigurationChange":
            got = dict(received(call, hooks_pb2.OnConfigurationChangeRequest).configuration)
            known = [dict(c.configuration) for c in tracked.configurations]
            return None if got in known else f"the configuration {shown(got)}"
        return None

    async def _check_plugin(self, tracked: Tracked) -> Status:
        """The state agrees with the processes, and the transitions with the SPEC."""
        for _ in range(3):
            status = await self.driver.settle(tracked)
            procs, spawned = processes(tracked.fake), grandchildren(tracked.fake)
            latest = await tracked.fake.status()
            if moved_on(status)(latest):
                continue
            try:
                problem = await self._process_problem(tracked, status, procs, spawned)
            except _Moved:
                continue
            if problem is not None:
                raise self.driver.fail(tracked, problem, await tracked.fake.status())
            break
        else:
            note(f"{tracked.id!r} kept changing state: its processes were not checked this step")
        latest = await tracked.fake.status()
        problems = transition_problems(latest)
        problems += restart_problems(latest.transitions, tracked.policy, tracked.enables)
        problems += start_problems(latest.transitions, tracked.fake.events("started"))
        if latest.state == "active" and not moved_on(status)(latest):
            procs = processes(tracked.fake)
            pid = latest.pid or (procs[-1].pid if procs else 0)
            problems += lifecycle_problems(tracked.fake.calls(pid=pid), tracked.configurations, pid)
        if problems:
            raise self.driver.fail(tracked, "\n".join(problems), latest)
        return latest

    async def _process_problem(
        self, tracked: Tracked, status: Status, procs: list[Proc], spawned: list[Proc]
    ) -> str | None:
        """One live process for an active plugin, the one the host names; none else, and
        nothing left of the others' process groups."""
        current: Proc | None = None
        if status.state == "active":
            pid = status.pid or (procs[-1].pid if procs else 0)
            current = next((p for p in procs if p.pid == pid), None)
            if current is None:
                return (
                    f"the host reports {tracked.id!r} active in process {pid}, but the "
                    f"plugin's processes were {[p.pid for p in procs]}"
                )
            if not runs(current):
                if await tracked.fake.watch_until(moved_on(status), EXIT_DETECTION_S + SLACK_S):
                    raise _Moved
                return (
                    f"the host reports {tracked.id!r} active in process {current.pid}, which is "
                    f"{current.describe()}; the host must notice the exit and enter `crashed` "
                    f"within {EXIT_DETECTION_S:g}s (SV-3)"
                )
        others = [p for p in procs if p is not current]
        others += [g for g in spawned if current is None or g.parent != current.pid]
        left = await still_there(others, GONE_S)
        running = f"process {current.pid}" if current is not None else "no process"
        if not left:
            dirs = await paths_left([p.socket_dir for p in others if p.socket_dir], GONE_S)
            if not dirs:
                return None
            return (
                f"the host reports {tracked.id!r} {status.state}, running {running}; the "
                f"socket directories it made for processes that have exited are still there "
                f"{GONE_S:g}s later: {dirs} (SV-18)"
            )
        return (
            f"the host reports {tracked.id!r} {status.state}, running {running}; {GONE_S:g}s "
            f"later these other processes of the plugin are still there: "
            f"{', '.join(p.describe() for p in left)}; every other process must be gone and "
            "reaped (SV-14, SV-16, SV-17)"
        )

    def _check_quiet(self, tracked: Tracked, status: Status) -> None:
        """SV-20: a plugin the machine left alone does not crash or stop: another plugin's
        faults must not reach it. A failed health check is tolerated (the machine is loaded
        and the health timeout short), and noted."""
        new = list(status.transitions[tracked.seen :])
        tracked.seen = len(status.transitions)
        if tracked.setup.kind == Kind.FLAPPING:
            return
        late = [t for t in new if t.wall_time > tracked.faulted_until]
        health = [t for t in late if t.error_kind == "health_check_failed"]
        if health:
            note(f"{tracked.id!r} failed a health check by itself: {health[0].reason}")
        bad = [
            t
            for t in late
            if (t.new_state == "crashed" and t.error_kind != "health_check_failed")
            or t.new_state == "stopped"
        ]
        if bad:
            moves = ", ".join(f"{t.old_state} -> {t.new_state} [{t.error_kind}]" for t in bad)
            raise self.driver.fail(
                tracked,
                f"nothing was done to {tracked.id!r} ({tracked.setup.kind}), yet the host "
                f"reported {moves}; a crash, hang or restart of another plugin must not change "
                "its state (SV-20)",
                status,
            )

    async def _probe(self, tracked: Tracked, status: Status) -> None:
        """After every step, an active, undisturbed plugin answers a command exactly."""
        if status.state == "active" and time.monotonic() >= tracked.disturbed_until:
            await self.driver.trial(tracked, Before(status, time.monotonic(), True))
