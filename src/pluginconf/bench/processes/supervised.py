"""A reference plugin under the reference host's supervisor, as `pluginconf serve` runs it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from pluginconf.bench.errors import BenchError
from pluginconf.bench.processes.lifecycle import START_TIMEOUT_S
from pluginconf.bench.processes.reference import REFERENCE_SPEC
from pluginconf.host.environment import Environment
from pluginconf.host.supervision.config import SupervisorConfig
from pluginconf.host.supervision.states import PluginState
from pluginconf.host.supervision.supervisor import Supervisor


@contextlib.asynccontextmanager
async def supervised(config: SupervisorConfig | None = None) -> AsyncIterator[Supervisor]:
    """An enabled and active supervisor (with the in-memory HostAPI behind its broker);
    disabled on exit, which stops and reaps the plugin by the stop sequence."""
    supervisor = Environment().add("ref", REFERENCE_SPEC, config=config)
    try:
        await supervisor.enable()
        state = await supervisor.wait_for(
            PluginState.ACTIVE, PluginState.FAILED, PluginState.STOPPED, timeout_s=START_TIMEOUT_S
        )
        if state is not PluginState.ACTIVE:
            raise BenchError(
                f"the reference plugin did not become active under the supervisor: it is "
                f"{state.value} ({supervisor.last_error})"
            )
        yield supervisor
    finally:
        await supervisor.disable()
