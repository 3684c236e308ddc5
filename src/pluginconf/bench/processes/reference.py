"""The reference plugin, launched and connected as a host does (``pluginconf reference-plugin``)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator

from pluginconf.bench.processes.endpoint import Endpoint
from pluginconf.bench.processes.lifecycle import START_TIMEOUT_S
from pluginconf.host.launcher import LaunchSpec, launch
from pluginconf.v1 import hooks_pb2_grpc

REFERENCE_PLUGIN = (sys.executable, "-m", "pluginconf", "reference-plugin")
REFERENCE_SPEC = LaunchSpec(argv=REFERENCE_PLUGIN, plugin_id="ref", start_timeout_s=START_TIMEOUT_S)


@contextlib.asynccontextmanager
async def reference_plugin() -> AsyncIterator[Endpoint]:
    """The reference plugin, launched and connected as a host does; stopped by the stop
    sequence (GRPCController.Shutdown, then signals) on exit."""
    plugin = await launch(REFERENCE_SPEC)
    try:
        assert plugin.channel is not None
        yield Endpoint(hooks_pb2_grpc.HooksStub(plugin.channel), plugin.pid)
    finally:
        await plugin.stop()
