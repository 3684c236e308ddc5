"""The plugin processes the fakes reported, and waiting on them and on the host.

Processes are named by pid and start time (never a reused pid); their exits and socket
directories have no event, so they are polled; the host's states are watched on
WatchPlugin.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psutil

from pluginconf.control import control_pb2
from pluginconf.fuzz.strategies.faults import SignalInjector
from pluginconf.runner.host.fake_plugin import FakePlugin
from pluginconf.runner.host.observer import Observed

Status = control_pb2.PluginStatus


@dataclass(frozen=True)
class Proc:
    """A plugin process, as its fake reported starting, or a process it started in its
    group (``parent`` is then that plugin process)."""

    pid: int
    started_wall: float
    parent: int = 0
    socket_dir: str = ""  # PLUGIN_UNIX_SOCKET_DIR, as the host gave it (HS-4)

    def find(self) -> psutil.Process | None:
        return SignalInjector.process(self.pid, self.started_wall)

    def describe(self) -> str:
        proc = self.find()
        if proc is None:
            return f"{self.pid} (gone)"
        try:
            status = proc.status()
        except psutil.Error:
            return f"{self.pid} (gone)"
        if self.parent:
            return f"{self.pid} (started by {self.parent} in its process group; {status}; SV-16)"
        if status == psutil.STATUS_ZOMBIE:
            return f"{self.pid} (a zombie: exited, not reaped; SV-17)"
        return f"{self.pid} ({status}; SV-16)"


def processes(fake: FakePlugin) -> list[Proc]:
    return [Proc(e.pid, e.wall, socket_dir=_socket_dir(e)) for e in fake.events("started")]


def _socket_dir(started: Observed) -> str:
    env = started.get("env", {})
    return str(env.get("PLUGIN_UNIX_SOCKET_DIR", "")) if isinstance(env, dict) else ""


def grandchildren(fake: FakePlugin) -> list[Proc]:
    """The processes the plugin's processes started in their group (spawn_grandchild)."""
    return [
        Proc(int(e.get("grandchild_pid", 0)), e.wall, parent=e.pid)
        for e in fake.events("grandchild")
        if e.get("grandchild_pid")
    ]


def runs(proc: Proc) -> bool:
    """The process exists and is not a zombie."""
    found = proc.find()
    if found is None:
        return False
    try:
        return found.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


async def still_there(procs: Sequence[Proc], timeout_s: float) -> list[Proc]:
    """Wait (polling: an exit has no event here) until none of ``procs`` exists, zombies
    included; those still there after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = [p for p in procs if p.find() is not None]
        if not left or time.monotonic() >= deadline:
            return left
        await asyncio.sleep(0.05)


def _existing(paths: Sequence[str]) -> list[str]:
    return [p for p in paths if os.path.lexists(p)]  # a stat each: nothing to wait for


async def paths_left(paths: Sequence[str], timeout_s: float) -> list[str]:
    """Wait (polling: a removal has no event) until none of ``paths`` exists."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = _existing(paths)
        if not left or time.monotonic() >= deadline:
            return left
        await asyncio.sleep(0.05)


def moved_on(before: Status) -> Callable[[Status], bool]:
    return lambda s: len(s.transitions) > len(before.transitions)
