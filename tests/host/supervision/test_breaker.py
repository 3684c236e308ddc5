"""The circuit breaker's states, driven by a fake clock (SPEC SV-11, SV-12)."""

from __future__ import annotations

from pluginconf.host.supervision.breaker import CircuitBreaker, CircuitState


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_three_consecutive_failures_only():
    clock = Clock()
    b = CircuitBreaker(threshold=3, cooldown_s=30, clock=clock)
    for _ in range(2):
        assert b.allow()
        b.record_failure()
    assert b.allow()
    b.record_success()  # resets the count
    for _ in range(2):
        assert b.allow()
        b.record_failure()
    assert b.state is CircuitState.CLOSED
    assert b.allow()
    b.record_failure()
    assert b.state is CircuitState.OPEN
    assert not b.allow()
    assert 29.9 < b.retry_after_s() <= 30


def test_half_open_lets_exactly_one_trial_through():
    clock = Clock()
    b = CircuitBreaker(threshold=1, cooldown_s=30, clock=clock)
    b.allow()
    b.record_failure()
    clock.now += 29.9
    assert not b.allow()
    clock.now += 0.2
    assert b.allow()  # the trial
    assert b.state is CircuitState.HALF_OPEN
    assert not b.allow()  # others still fail fast
    b.record_success()
    assert b.state is CircuitState.CLOSED
    assert b.allow()


def test_failed_trial_opens_for_a_new_cooldown():
    clock = Clock()
    b = CircuitBreaker(threshold=3, cooldown_s=10, clock=clock)
    for _ in range(3):
        b.allow()
        b.record_failure()
    clock.now += 10
    assert b.allow()
    b.record_failure()
    assert b.state is CircuitState.OPEN
    assert not b.allow()
    clock.now += 10
    assert b.allow()


def test_released_trial_does_not_decide():
    clock = Clock()
    b = CircuitBreaker(threshold=1, cooldown_s=1, clock=clock)
    b.allow()
    b.record_failure()
    clock.now += 1
    assert b.allow()
    b.release()  # cancelled by our own caller
    assert b.state is CircuitState.HALF_OPEN
    assert b.allow()
