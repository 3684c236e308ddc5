"""What host properties are given: the host under test, driven through its adapter.

One adapter process and one Observer serve the whole campaign (runner/host/session.py). Each
example opens a HostTarget, loads its fake plugins under fresh ids, and closes it: every
plugin is unloaded and each process its fakes reported must be gone, or the example fails.
"""

from __future__ import annotations

import asyncio

from pluginconf.fuzz.context import FuzzContext
from pluginconf.fuzz.model import PropertyFailed
from pluginconf.runner.host.session import HostSuiteSession
from pluginconf.runner.host.target import HostTarget
from pluginconf.runner.options import HostSuiteOptions

# Unloading a host's plugins and waiting for their processes: unload is bounded at 30 s each.
CLOSE_BOUND_S = 120.0


class HostFuzzContext(FuzzContext):
    def __init__(self, runner: asyncio.Runner, options: HostSuiteOptions) -> None:
        super().__init__(runner)
        self.options = options
        self.session = HostSuiteSession(options)

    async def open_target(self) -> HostTarget:
        try:
            return await self.session.open_target()
        except Exception as exc:
            raise PropertyFailed(f"the host adapter could not be started: {exc}") from None

    async def close_target(self, target: HostTarget) -> None:
        """Unload everything the example loaded; leftovers or a dead adapter fail it."""
        problem = await self.session.close_target(target)
        if problem is not None:
            raise PropertyFailed(problem)

    async def aclose(self) -> None:
        await self.session.aclose()
