"""Interrupts: SIGTERM ends a run as Ctrl-C does, and a coroutine never loses a Ctrl-C.

asyncio.Runner cancels its task on SIGINT and raises KeyboardInterrupt only if the task then
ends cancelled. Work that absorbs the cancellation (a clean-up that waits, a case that ends
just then) returns normally, and the interrupt is gone: the run goes on to its end. Here the
signal is recorded, the work is cancelled, and KeyboardInterrupt follows whatever it returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Coroutine, Iterator
from types import FrameType
from typing import Any, TypeVar

import psutil

T = TypeVar("T")


def run_interruptibly(runner: asyncio.Runner, work: Coroutine[Any, Any, T]) -> T:
    """``runner.run(work)``; a SIGINT on the way cancels ``work`` and raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        return runner.run(work)  # signals reach the main thread only
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return runner.run(work)  # somebody else handles SIGINT: leave it to them
    interrupted: list[bool] = []  # set by the handler, which runs on the loop

    async def guarded() -> T | None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_sigint() -> None:
            interrupted.append(True)
            task.cancel()

        loop.add_signal_handler(signal.SIGINT, on_sigint)
        try:
            return await work
        except asyncio.CancelledError:
            if interrupted:
                return None
            raise
        finally:
            # Puts back the default handler, which raises KeyboardInterrupt.
            loop.remove_signal_handler(signal.SIGINT)

    try:
        result = runner.run(guarded())
    except asyncio.CancelledError:
        # A cancel that came after the work returned leaves the task cancelled all the same.
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    if interrupted:
        raise KeyboardInterrupt
    return result  # type: ignore[return-value]  # None only when interrupted


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[list[str]]:
    """While the run lasts, SIGTERM interrupts it as a terminal's Ctrl-C does; the list
    names the signal. The workers (xdist) get SIGINT too, so that each ends its case through
    its own clean-up (asyncio.Runner cancels the case on SIGINT) instead of being killed with
    its plugin processes and directories left behind; then this process gets it."""
    received: list[str] = []

    def on_term(signum: int, frame: FrameType | None) -> None:
        received.append("SIGTERM")
        for child in psutil.Process().children():
            with contextlib.suppress(psutil.Error):
                child.send_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)
