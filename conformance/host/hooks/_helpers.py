"""Helpers the dispatch cases share."""

from __future__ import annotations

from pluginconf.runner.host.fake_plugin import FakePlugin
from pluginconf.runner.host.observer import Observed, received
from pluginconf.v1 import hooks_pb2

from .._helpers import NON_BMP

# Text a host might be tempted to trim, normalise or re-encode: outside the BMP, a combining
# accent (e + U+0301, not é), a line separator, a NUL, CR LF, and surrounding spaces.
AWKWARD = f"  {NON_BMP} e\u0301 \u2028\x00\r\n  "


DEADLINE_ALLOWANCE_S = 0.5


def call_end_of(plugin: FakePlugin, call: Observed) -> Observed | None:
    return next(
        (
            e
            for e in plugin.events("call_end", call.pid)
            if e.get("call") == call.get("call") and e.get("hook") == call.get("hook")
        ),
        None,
    )


def configuration_of(event: Observed) -> dict[str, str]:
    return dict(received(event, hooks_pb2.OnConfigurationChangeRequest).configuration)
