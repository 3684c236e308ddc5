"""The plugin properties against the reference plugin, in process: each runs real examples
against a real plugin process, and none may fail."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from pluginconf.fuzz.campaign import CampaignSettings, run_property
from pluginconf.fuzz.plugin_context import PluginFuzzContext
from pluginconf.fuzz.plugin_properties import PROPERTIES
from pluginconf.runner.options import PluginSuiteOptions

# A modest count: enough for every strategy branch to be drawn, quick enough for CI.
EXAMPLES = 60


@pytest.fixture(scope="module")
def context() -> Iterator[PluginFuzzContext]:
    runner = asyncio.Runner()
    ctx = PluginFuzzContext(runner, PluginSuiteOptions(max_body=4 * 1024 * 1024 + 65536))
    try:
        yield ctx
    finally:
        runner.run(ctx.aclose())
        runner.close()


@pytest.fixture(autouse=True)
def no_leaks() -> None:
    """The module's plugin process lives across tests: leaks are checked at module end
    (the campaign's context closes it), not per test."""


@pytest.mark.parametrize("prop", PROPERTIES, ids=[p.id for p in PROPERTIES])
def test_the_reference_plugin_keeps_every_property(context, prop):
    result = run_property(prop, context, CampaignSettings(examples=EXAMPLES, seed=20261201))
    assert result.failure is None, f"{result.failure.message}\n{result.failure.example}"
    assert result.examples >= prop.examples(EXAMPLES), result
