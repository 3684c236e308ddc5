"""The plugin properties against the reference plugin, in process: each runs real examples
against a real plugin process, and none may fail."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from pluginconf.fuzz.campaign import CampaignSettings, run_property
from pluginconf.fuzz.plugin.context import PluginFuzzContext
from pluginconf.fuzz.plugin.properties import PROPERTIES, _unescaped
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
    assert not result.failed, f"{result.message}\n{result.example}"
    assert result.examples >= prop.examples(EXAMPLES), result


def test_a_warning_quoted_rune_by_rune_names_the_entry():
    """Go's %q escapes only the runes its Unicode tables call unprintable: go-plugin 1.0.1
    warned about '\U00018cd6"' as "\\U00018cd6\\"", which must count as naming it (HS-11)."""
    warning = 'server sent invalid plugin version "\\U00018cd6\\""'
    assert '\U00018cd6"' not in warning
    assert '\U00018cd6"' in _unescaped(warning)
    assert _unescaped("\\x41\\u00e9\\t\\\\") == "A\u00e9\t\\"
    assert _unescaped("\\UFFFFFFFF") == "\\UFFFFFFFF"  # beyond Unicode: left as written
