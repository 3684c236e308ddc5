"""Time bounds judged against the machine's speed (runner/timing.py).

The measurements are given numbers; the yardstick is the real process, measured then."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pluginconf.runner.timing import Attempt, TimeVerdict, Yardstick, judge_time


def _measuring(*values: float | None) -> tuple[Callable[[], Awaitable[float | None]], list[int]]:
    """A measure that returns ``values`` in turn, and the count of its calls."""
    calls = [0]

    async def measure() -> float | None:
        calls[0] += 1
        return values[calls[0] - 1]

    return measure, calls


async def test_a_measurement_within_the_bound_meets_it_without_a_yardstick():
    measure, calls = _measuring(0.05)
    verdict = await judge_time(0.1, measure, Yardstick.CALL, "the answer")
    assert verdict.met and calls == [1]
    assert verdict.attempts == (Attempt(0.05, None, 0.1),)
    assert (
        verdict.evidence() == "the answer: bound 100 ms, measured 1 time(s): 50 ms (bound 100 ms)"
    )


async def test_a_measurement_the_case_already_made_counts_as_the_first_attempt():
    measure, calls = _measuring()
    verdict = await judge_time(0.1, measure, Yardstick.CALL, "exit", seen=(0.02,))
    assert verdict.met and calls == [0]


async def test_a_measurement_just_over_the_bound_is_met_with_the_yardstick_allowed():
    # A bound of 0 and a microsecond measured: any real process takes longer than that.
    measure, calls = _measuring()
    verdict = await judge_time(0.0, measure, Yardstick.CALL, "the answer", seen=(1e-6,))
    [attempt] = verdict.attempts
    assert verdict.met and calls == [0]
    assert attempt.yardstick_s is not None and attempt.yardstick_s > 1e-6
    assert attempt.allowed_s == attempt.yardstick_s
    assert "that a minimal gRPC process took just then" in verdict.evidence()


async def test_a_bound_missed_every_time_is_missed_after_every_attempt():
    measure, calls = _measuring(None)
    verdict = await judge_time(0.001, measure, Yardstick.STOP, "exit", seen=(3600.0,), attempts=2)
    assert not verdict.met and calls == [1]
    first, second = verdict.attempts
    assert first.measured_s == 3600.0 and second.measured_s is None
    assert all(a.yardstick_s is not None and a.yardstick_s > 0 for a in verdict.attempts)
    evidence = verdict.evidence()
    assert evidence.startswith("exit: bound 1 ms, measured 2 time(s): 3600000 ms against ")
    assert "; did not happen against " in evidence


async def test_a_later_attempt_within_the_bound_ends_the_measuring():
    measure, calls = _measuring(0.01, 99.0)
    verdict = await judge_time(0.1, measure, Yardstick.SIGNAL, "exit", seen=(3600.0,))
    assert verdict.met and calls == [1]
    assert [a.met for a in verdict.attempts] == [False, True]


def test_a_verdict_is_met_when_any_attempt_is():
    missed, met = Attempt(None, None, 0.1), Attempt(0.2, 0.15, 0.25)
    assert not missed.met and met.met
    assert TimeVerdict(0.1, "x", (missed, met)).met
    assert not TimeVerdict(0.1, "x", (missed,)).met
    assert not TimeVerdict(0.1, "x").met
