"""SDK debug mode: a warning on stderr when something blocks the event loop.

A hook that calls ``time.sleep`` or blocking I/O stalls every call of the plugin, health
checks included; the host then sees time-outs with no cause. A watchdog thread, fed by a
heartbeat the loop schedules, notices a stall while it lasts and names what the loop is
running (the hook and the line), read from the loop thread's stack.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from types import FrameType

from pluginconf.plugin.base import Plugin

log = logging.getLogger("pluginconf.plugin.debug")

ENV_DEBUG = "PLUGINCONF_SDK_DEBUG"
BLOCKED_AFTER_S = 0.1


def debug_from_env(environ: Mapping[str, str]) -> bool:
    return environ.get(ENV_DEBUG, "").strip().lower() not in ("", "0", "false", "no", "off")


def _where(frame: FrameType | None) -> str:
    """The hook method on the stack, if any, and the innermost line of the plugin's code."""
    hooks = set(Plugin.HOOK_METHODS.values())
    hook = ""
    stack = traceback.extract_stack(frame) if frame is not None else []
    for entry in stack:
        if entry.name in hooks and not hook:
            hook = entry.name
    innermost = ""
    for entry in reversed(stack):
        if "/asyncio/" not in entry.filename and "/pluginconf/plugin/" not in entry.filename:
            innermost = f"{entry.filename}:{entry.lineno} in {entry.name}"
            break
    parts = [f"in hook method {hook}" if hook else "outside any hook"]
    if innermost:
        parts.append(f"at {innermost}")
    return ", ".join(parts)


class LoopWatchdog:
    """Warns once per stall longer than ``limit_s``, then once more when the loop recovers."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit_s: float = BLOCKED_AFTER_S):
        self._loop = loop
        self._limit = limit_s
        self._beat = time.monotonic()
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="sdk-loop-watchdog", daemon=True)
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._heartbeat()
        self._thread.start()
        log.warning(
            "SDK debug mode: warning when the event loop is blocked for more than %.0f ms",
            self._limit * 1000,
        )

    def _heartbeat(self) -> None:
        self._beat = time.monotonic()
        self._handle = self._loop.call_later(self._limit / 4, self._heartbeat)

    def _watch(self) -> None:
        stalled_since: float | None = None
        while not self._stop.wait(self._limit / 4):
            beat = self._beat
            late = time.monotonic() - beat
            if stalled_since is None and late > self._limit:
                stalled_since = beat
                frame = sys._current_frames().get(self._loop_thread)
                log.warning(
                    "the event loop has been blocked for %.0f ms, %s: a hook must not block "
                    "(time.sleep, blocking I/O, heavy computation); await asyncio.sleep, or "
                    "move the work to asyncio.to_thread",
                    late * 1000,
                    _where(frame),
                )
            elif stalled_since is not None and beat != stalled_since:
                log.warning("the event loop ran again after %.0f ms", (beat - stalled_since) * 1000)
                stalled_since = None

    def stop(self) -> None:
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()
        self._thread.join(timeout=1.0)
