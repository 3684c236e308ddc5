"""Fault schedules: when, and how, to disturb a running plugin process from outside.

A schedule is a short list of faults, each after a delay, each aimed at one of the plugins a
host runs. The faults are signals to the plugin process, as an overloaded or broken machine
would deal them: SIGKILL (the process dies), SIGSTOP left alone (it hangs: only a health check
can tell), and SIGSTOP then SIGCONT once (it stalls) or several times (it stutters). They
shrink towards one immediate kill of the first plugin.

:class:`SignalInjector` sends them and remembers every process it left stopped, so that the
caller can resume them all at the end whatever happened: a stopped process never leaks.
"""

from __future__ import annotations

import contextlib
import enum
import signal
from dataclasses import dataclass

import psutil
from hypothesis import strategies as st


class FaultAction(enum.StrEnum):
    """What happens to the process; ordered from the simplest, where shrinking goes."""

    KILL = "kill"  # SIGKILL
    SLOW = "slow"  # SIGSTOP, SIGCONT after pause_ms
    FLAP = "flap"  # FLAP_PULSES short SIGSTOP/SIGCONT pulses over pause_ms
    HANG = "hang"  # SIGSTOP, never resumed by the schedule


# A stutter: this many stops, each with its resume, spread over the fault's pause.
FLAP_PULSES = 3


@dataclass(frozen=True)
class ScheduledFault:
    """One fault: ``delay_ms`` after the previous one (or the schedule's start), on the
    plugin at ``target`` (an index, taken modulo the number of plugins running)."""

    delay_ms: int
    action: FaultAction
    target: int
    pause_ms: int = 0  # slow and flap: how long the process is held, in all

    def describe(self) -> str:
        held = (
            f" for {self.pause_ms} ms"
            if self.action in (FaultAction.SLOW, FaultAction.FLAP)
            else ""
        )
        return f"+{self.delay_ms} ms: {self.action} plugin #{self.target}{held}"


@st.composite
def scheduled_faults(
    draw: st.DrawFn, max_delay_ms: int, max_pause_ms: int, targets: int
) -> ScheduledFault:
    action = draw(st.sampled_from(FaultAction))
    pause = 0
    if action in (FaultAction.SLOW, FaultAction.FLAP):
        pause = draw(st.integers(10, max_pause_ms))
    return ScheduledFault(
        draw(st.integers(0, max_delay_ms)), action, draw(st.integers(0, targets - 1)), pause
    )


def fault_schedules(
    max_faults: int = 3, max_delay_ms: int = 800, max_pause_ms: int = 700, targets: int = 3
) -> st.SearchStrategy[tuple[ScheduledFault, ...]]:
    """Schedules of 1 to ``max_faults`` faults, each ``0..max_delay_ms`` after the last."""
    return st.lists(
        scheduled_faults(max_delay_ms, max_pause_ms, targets), min_size=1, max_size=max_faults
    ).map(tuple)


class SignalInjector:
    """Sends fault signals to processes named by pid and start time, never to a process
    that merely reuses the pid (psutil checks the start time before each signal)."""

    def __init__(self) -> None:
        self._stopped: dict[int, psutil.Process] = {}

    @property
    def stopped(self) -> list[int]:
        """The processes stopped and not resumed (they may have been killed since)."""
        return sorted(self._stopped)

    @staticmethod
    def process(pid: int, started_wall: float) -> psutil.Process | None:
        """The process ``pid`` that started at about ``started_wall`` (time.time()), if it
        still exists; None when gone, or when the pid now belongs to a later process."""
        try:
            proc = psutil.Process(pid)
            # A process that began after the plugin reported starting is another one.
            if proc.create_time() > started_wall + 1.0:
                return None
        except psutil.Error:
            return None
        return proc

    def kill(self, proc: psutil.Process) -> bool:
        return self._send(proc, signal.SIGKILL)

    def stop(self, proc: psutil.Process) -> bool:
        if self._send(proc, signal.SIGSTOP):
            self._stopped[proc.pid] = proc
            return True
        return False

    def resume(self, proc: psutil.Process) -> None:
        self._send(proc, signal.SIGCONT)
        self._stopped.pop(proc.pid, None)

    def forget(self, pid: int) -> None:
        """``pid`` is gone: nothing to resume."""
        self._stopped.pop(pid, None)

    def release_all(self) -> list[int]:
        """Resume every process still stopped; their pids."""
        left = list(self._stopped.values())
        for proc in left:
            self.resume(proc)
        return [p.pid for p in left]

    @staticmethod
    def _send(proc: psutil.Process, sig: signal.Signals) -> bool:
        """Whether the signal was sent (False: the process is gone)."""
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)
            return True
        return False
