"""While the run waits for its target to start: a line that counts down --start-timeout.

A plugin that never prints its handshake would otherwise leave the console silent for the
whole start timeout. After a short grace (a healthy start says nothing), a live line on a
terminal, or a plain line every few seconds elsewhere (CI logs), says what the run waits for,
how long is left, and which option gives it longer.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO

from rich.console import Console

# A start quicker than this prints nothing.
GRACE_S = 2.0
# Off a terminal: one line this often.
PLAIN_EVERY_S = 5.0


def _line(what: str, timeout_s: float, elapsed: float) -> str:
    left = timeout_s - elapsed
    if left > 0:
        return (
            f"waiting for {what}: {left:.0f}s left of --start-timeout {timeout_s:g} "
            f"({elapsed:.0f}s so far)"
        )
    return f"waiting for {what}: --start-timeout {timeout_s:g} has passed; finding out why"


@contextlib.contextmanager
def start_countdown(what: str, timeout_s: float, stream: IO[str] | None = None) -> Iterator[None]:
    """While the block runs, count down ``timeout_s`` on ``stream`` (default stderr)."""
    console = Console(file=stream or sys.stderr, highlight=False, soft_wrap=True)
    done = threading.Event()
    started = time.monotonic()

    def watch() -> None:
        if done.wait(GRACE_S):
            return
        if console.is_terminal:
            with console.status(_line(what, timeout_s, time.monotonic() - started)) as status:
                while not done.wait(0.5):
                    status.update(_line(what, timeout_s, time.monotonic() - started))
            return
        while True:
            console.print(_line(what, timeout_s, time.monotonic() - started))
            if done.wait(PLAIN_EVERY_S):
                return

    thread = threading.Thread(target=watch, name="start-countdown", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=5)
