"""The host properties against the reference host, through its adapter: real fakes, real
processes; none may fail."""

from __future__ import annotations

import asyncio

import pytest

from pluginconf.fuzz.campaign import CampaignSettings, run_property
from pluginconf.fuzz.host_context import HostFuzzContext
from pluginconf.fuzz.host_machine import PROPERTIES
from pluginconf.runner.options import HostSuiteOptions


@pytest.mark.parametrize("prop", PROPERTIES, ids=[p.id for p in PROPERTIES])
def test_the_reference_host_keeps_every_property(prop):
    runner = asyncio.Runner()
    ctx = HostFuzzContext(runner, HostSuiteOptions())
    try:
        # Each example starts plugin processes: a few runs of each, at least one.
        result = run_property(prop, ctx, CampaignSettings(examples=200, seed=20261201))
    finally:
        runner.run(ctx.aclose())
        runner.close()
    assert result.failure is None, f"{result.failure.message}\n{result.failure.example}"
    assert result.examples >= 1
