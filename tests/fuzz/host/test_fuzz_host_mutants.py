"""The host state machine against the eight broken hosts it missed at first (issue 6): each is
caught within a bounded number of runs of the machine at a fixed seed, with evidence naming
the requirement it breaks. And the circuit breaker's model, on timelines written by hand.

A run of the machine takes seconds, so the searches that need more than a few runs are marked
``campaign`` (``pytest -m campaign tests/test_fuzz_host_mutants.py``); the model's checks run
by default."""

from __future__ import annotations

import sys

import pytest
from test_fuzz_host_machine import MUTANT, campaign

from pluginconf.control import control_pb2
from pluginconf.fuzz.host.breaker import BreakerModel
from pluginconf.fuzz.host.checks import hung_notification_problem
from pluginconf.fuzz.host.machine import state_machine_property
from pluginconf.runner.options import HostSuiteOptions

# (mutant, seed, runs of the machine, what the evidence must say)
CAUGHT = [
    ("exit-unwatched", 2, 6, ("SV-4 (SHOULD)", "bound 1000 ms", "measured 3 time(s)")),
    ("retries-until-deadline", 1, 8, ("instead of waiting for their deadline (SV-5)",)),
    ("hook-deadline-not-sent", 1, 8, ("it was still running", "(HK-11)")),
    ("fan-out-sequential", 2, 12, ("(NT-2",)),
    ("no-circuit-breaker", 1, 8, ("without sending them (SV-11)",)),
    ("half-open-lets-all-through", 1, 8, ("exactly one trial", "(SV-12)")),
    ("502-becomes-500", 1, 6, ("the host answered 500", "(SE-5)")),
    ("truncated-as-complete", 3, 6, ("as if complete", "(SE-6)")),
]


@pytest.mark.campaign
@pytest.mark.timeout(900)
@pytest.mark.parametrize(("mutant", "seed", "runs", "says"), CAUGHT, ids=[c[0] for c in CAUGHT])
def test_the_state_machine_catches(
    mutant: str, seed: int, runs: int, says: tuple[str, ...]
) -> None:
    broken = HostSuiteOptions(command=(sys.executable, str(MUTANT), mutant))
    run = campaign(state_machine_property(), broken, examples=runs, seed=seed)
    assert run.failed, f"{mutant}: the broken host passed {run.examples} runs"
    for text in says:
        assert text in run.message, run.message


# The cheapest of them, in the default run: caught in a few runs.
@pytest.mark.runs_long(20)
@pytest.mark.timeout(300)
@pytest.mark.parametrize("mutant", ["502-becomes-500", "truncated-as-complete"])
def test_the_state_machine_catches_quickly(mutant: str) -> None:
    _, seed, runs, says = next(c for c in CAUGHT if c[0] == mutant)
    broken = HostSuiteOptions(command=(sys.executable, str(MUTANT), mutant))
    run = campaign(state_machine_property(), broken, examples=runs, seed=seed)
    assert run.failed, f"{mutant}: the broken host passed {run.examples} runs"
    for text in says:
        assert text in run.message, run.message


# -- the breaker's model ---------------------------------------------------------------------


def test_the_circuit_opens_at_the_threshold_and_a_success_resets_the_count() -> None:
    model = BreakerModel(threshold=3, cooldown_s=1.0)
    model.failure(1.0, 1.1)
    model.failure(2.0, 2.1)
    model.success()
    model.failure(3.0, 3.1)
    model.failure(4.0, 4.1)
    assert model.opened is None
    model.failure(5.0, 5.2)
    assert model.opened == (5.0, 5.2)
    assert model.surely_open(5.9)
    assert not model.surely_open(6.0)  # it may have half-opened at 6.0
    assert not model.surely_half_open(6.1)  # or only at 6.2
    assert model.surely_half_open(6.25)


def test_a_failed_trial_opens_the_circuit_again() -> None:
    model = BreakerModel(threshold=1, cooldown_s=0.5)
    model.failure(1.0, 1.0)
    model.failure(2.0, 2.1)  # the trial, after the cooldown
    assert model.opened == (2.0, 2.1)
    assert model.surely_open(2.4)


def test_retry_after_is_the_seconds_until_half_open_rounded_up() -> None:
    model = BreakerModel(threshold=1, cooldown_s=30.0)
    model.failure(0.0, 0.5)
    assert list(model.retry_after(10.0, 10.1)) == [20, 21]
    assert list(model.retry_after(29.9, 30.2)) == [1]
    short = BreakerModel(threshold=1, cooldown_s=0.5)
    short.failure(0.0, 0.0)
    assert list(short.retry_after(0.1, 0.2)) == [1]


def test_a_timeout_counts_no_sooner_than_its_deadline() -> None:
    # A call sent at 0 with a 1.5 s deadline, answered at 1.6: opened in [1.45, 1.6].
    model = BreakerModel(threshold=1, cooldown_s=1.0)
    model.failure(1.45, 1.6)
    assert model.surely_open(2.4)


def test_a_hung_notification_fails_as_a_hung_call() -> None:
    def result(kind: str | None) -> control_pb2.NotifyResult:
        error = control_pb2.HostError(kind=kind) if kind else None
        return control_pb2.NotifyResult(plugin_id="p", error=error)

    assert hung_notification_problem([result("timeout")]) is None
    assert hung_notification_problem([result("circuit_open")]) is None
    problem = hung_notification_problem([result(None)])
    assert problem is not None and "['ok']" in problem and "NT-1" in problem
    assert hung_notification_problem([result("timeout"), result("timeout")]) is not None
    assert hung_notification_problem([result("internal")]) is not None
