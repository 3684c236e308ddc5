"""The restart policy (SV-8, SV-9) on a clock the test moves: backoff bounds, giving up, reset."""

from __future__ import annotations

import asyncio
import random

from pluginconf.host.supervision.clock import Clock
from pluginconf.host.supervision.config import SupervisorConfig
from pluginconf.host.supervision.policy import RestartPolicy


class SteppedClock:
    """A clock that moves only when told to, or when slept on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds

    async def wait(self, event: asyncio.Event, timeout_s: float) -> bool:
        if not event.is_set():
            self.now += timeout_s
        return event.is_set()


def _policy(clock: SteppedClock, **config: float) -> RestartPolicy:
    conf = SupervisorConfig(**config)  # type: ignore[arg-type]
    return RestartPolicy(conf, clock, random.Random(17))


def test_stepped_clock_is_a_clock() -> None:
    clock: Clock = SteppedClock()
    assert clock.monotonic() == 1000.0


def test_backoff_stays_within_its_bound_for_each_failure() -> None:
    clock = SteppedClock()
    policy = _policy(clock, backoff_base_s=0.2, backoff_max_s=3.0, restart_limit=100)
    for n in range(1, 9):
        policy.record_failure(active_for_s=0.0)
        bound = min(3.0, 0.2 * 2 ** (n - 1))
        delays = [policy.backoff_delay() for _ in range(300)]
        assert all(0.0 <= d <= bound for d in delays), (n, bound, max(delays))
        # Random across the whole range, not a fixed wait (SV-8's jitter).
        assert max(delays) > 0.8 * bound and min(delays) < 0.2 * bound
        clock.now += 0.1


def test_gives_up_at_the_restart_limit_within_the_window() -> None:
    clock = SteppedClock()
    policy = _policy(clock, restart_limit=3, restart_window_s=10.0)
    for _ in range(2):
        policy.record_failure(active_for_s=0.0)
        assert not policy.gives_up()
        clock.now += 4.0
    policy.record_failure(active_for_s=0.0)
    assert policy.gives_up()
    assert policy.give_up_reason("boom") == "restart_limit: 3 failures within 10s; last: boom"


def test_failures_older_than_the_window_do_not_count() -> None:
    clock = SteppedClock()
    policy = _policy(clock, restart_limit=3, restart_window_s=10.0)
    for _ in range(10):
        policy.record_failure(active_for_s=0.0)
        assert not policy.gives_up()
        clock.now += 6.0  # two failures at most within any 10 s
    assert len(policy.failure_times) == 2  # pruned when a failure is recorded


def test_backoff_starts_afresh_after_a_stable_run() -> None:
    clock = SteppedClock()
    policy = _policy(
        clock, backoff_base_s=1.0, backoff_max_s=100.0, stable_after_s=60.0, restart_limit=100
    )
    for _ in range(4):
        policy.record_failure(active_for_s=5.0)
    assert policy.consecutive == 4
    assert max(policy.backoff_delay() for _ in range(100)) > 4.0
    policy.record_failure(active_for_s=59.9)
    assert policy.consecutive == 5
    policy.record_failure(active_for_s=60.0)
    assert policy.consecutive == 1
    assert all(policy.backoff_delay() <= 1.0 for _ in range(100))


def test_enabling_again_clears_the_history() -> None:
    clock = SteppedClock()
    policy = _policy(clock, restart_limit=2)
    policy.record_failure(active_for_s=0.0)
    policy.record_failure(active_for_s=0.0)
    assert policy.gives_up()
    policy.clear()
    assert not policy.gives_up()
    assert policy.consecutive == 0


async def test_waiting_on_the_clock_takes_no_time() -> None:
    clock = SteppedClock()
    stop = asyncio.Event()
    assert not await clock.wait(stop, 30.0)
    assert clock.now == 1030.0
    stop.set()
    assert await clock.wait(stop, 30.0)
    assert clock.now == 1030.0
