"""How long a bench process may take to start and stop, and reaping what it started."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import psutil

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


def kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGKILL ``process``'s process group (it was started in its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def reap(process: asyncio.subprocess.Process, timeout_s: float) -> None:
    """Wait for ``process``; SIGKILL its process group if it has not exited in time."""
    try:
        await asyncio.wait_for(process.wait(), timeout_s)
    except TimeoutError:
        kill_group(process)
        await process.wait()


def descendants(pid: int) -> list[int]:
    """The pids of ``pid``'s children, grandchildren and so on; none if it is gone."""
    with contextlib.suppress(psutil.Error):
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    return []


def kill_leftovers(pids: list[int]) -> None:
    """SIGKILL those of ``pids`` still running (processes this run started), and wait."""
    alive = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            process.kill()
            alive.append(process)
    psutil.wait_procs(alive, timeout=5)
