"""run_interruptibly: a SIGINT during the work always ends in KeyboardInterrupt."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from pluginconf.runner.interrupt import run_interruptibly


async def _absorbs_cancel(started: asyncio.Event | None = None) -> str:
    """Work that, cancelled, finishes its clean-up and returns normally."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        return "cleaned up"
    return "not interrupted"


async def _returns_as_cancelled() -> str:
    """Work that is interrupted after its last await: the task ends cancelled."""
    os.kill(os.getpid(), signal.SIGINT)
    await asyncio.sleep(0.2)  # the handler runs; the cancel lands on the next await
    return "done"


@pytest.fixture(autouse=True)
def _default_sigint():
    """SIGINT as a process starts with it (as under `pluginconf plugin`): an async fixture
    of an earlier test in this worker may have left its loop's own handler installed."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("work", [_absorbs_cancel, _returns_as_cancelled])
def test_a_sigint_is_never_lost(work):
    with asyncio.Runner() as runner, pytest.raises(KeyboardInterrupt):
        run_interruptibly(runner, work())
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_without_a_sigint_the_result_comes_back():
    async def work() -> int:
        await asyncio.sleep(0)
        return 7

    with asyncio.Runner() as runner:
        assert run_interruptibly(runner, work()) == 7
        # The loop is usable again afterwards (the suite runs every case on one loop).
        assert run_interruptibly(runner, work()) == 7
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_cancel_that_is_not_an_interrupt_stays_a_cancel():
    async def work() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(1)

    with asyncio.Runner() as runner, pytest.raises(asyncio.CancelledError):
        run_interruptibly(runner, work())
