"""What a campaign keeps of a failure, when Hypothesis wraps it: a replay of the failing
example that did not fail again (FlakyFailure) still leaves the evidence and the example."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import FlakyFailure

from pluginconf.fuzz.campaign import CampaignSettings, _failure, run_property
from pluginconf.fuzz.context import FuzzContext
from pluginconf.fuzz.model import FuzzProperty, FuzzTarget, HypothesisTest, PropertyFailed


def prop(build: Callable[[Any], HypothesisTest] | None = None) -> FuzzProperty:
    return FuzzProperty("test/flaky", FuzzTarget.HOST, "", ("SV-9",), build or (lambda _: None))


@pytest.fixture
def ctx() -> Iterator[FuzzContext]:
    runner = asyncio.Runner()
    try:
        yield FuzzContext(runner)
    finally:
        runner.close()


def test_a_flaky_failure_keeps_the_first_failures_evidence_and_notes() -> None:
    inner = PropertyFailed("the host gave up after the crash of transition 4 (SV-8, SV-9)")
    inner.add_note("state = HostLifecycle()")
    inner.add_note("@reproduce_failure('6.170.17', b'AXic')")
    wrapper = FlakyFailure("Hypothesis produces unreliable results", [inner])
    wrapper.add_note("state.teardown()")

    failure = _failure(prop(), wrapper, reported=["not used: the exception has notes"])

    assert failure.message.startswith("the host gave up after the crash of transition 4")
    assert "FlakyFailure: Hypothesis produces unreliable results" in failure.message
    assert failure.example == "state = HostLifecycle()\nstate.teardown()"
    assert failure.blob == "6.170.17:AXic"


def test_an_unwrapped_failure_is_kept_as_it_was() -> None:
    inner = PropertyFailed("evidence")
    inner.add_note("example")
    failure = _failure(prop(), inner, reported=[])
    assert (failure.message, failure.example, failure.blob) == ("evidence", "example", "")


def test_a_failure_that_does_not_fail_again_is_still_reported(ctx: FuzzContext) -> None:
    def build(context: FuzzContext) -> HypothesisTest:
        calls = itertools.count()

        @given(st.integers(0, 3))
        def once(n: int) -> None:
            context.example()
            if next(calls) == 0:
                raise PropertyFailed(f"evidence of the first call, with {n}")

        return once

    run = run_property(prop(build), ctx, CampaignSettings(examples=5, seed=1))

    assert run.failed
    assert run.message.startswith("evidence of the first call, with ")
    assert "FlakyFailure" in run.message
