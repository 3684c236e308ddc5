"""What plugin properties are given: the plugin under test, started as the plugin suite starts
it, and the checks every example ends with.

The plugin process is shared between examples, as the suite's shared plugin is between cases
(runner/plugin/shared.py): launched, handshaken, brokered and activated once. After each example the
plugin must still be running and answer SERVING for ``"plugin"``; when it is not, the example
fails with the process's evidence, and the next example gets a new process.
"""

from __future__ import annotations

import asyncio

from pluginconf.fuzz.context import FuzzContext
from pluginconf.fuzz.model import PropertyFailed
from pluginconf.runner.options import PluginSuiteOptions
from pluginconf.runner.plugin.shared import SharedPlugin, SharedPool, TargetUnusable

# How long a plugin has to answer the health check that ends each example: a deadlock guard.
HEALTH_TIMEOUT_S = 10.0


class PluginFuzzContext(FuzzContext):
    def __init__(self, runner: asyncio.Runner, options: PluginSuiteOptions) -> None:
        super().__init__(runner)
        self.options = options
        self.pool = SharedPool(options)

    @property
    def max_body(self) -> int:
        return self.options.max_body

    async def plugin(self) -> SharedPlugin:
        try:
            return await self.pool.get()
        except TargetUnusable as exc:
            raise PropertyFailed(str(exc)) from None

    async def check_healthy(self, after: str) -> None:
        """The plugin is running and SERVING; else fail, and start a new one next time."""
        current = self.pool.current
        if current is None:
            return
        problem = await current.check_health(HEALTH_TIMEOUT_S)
        if problem is None:
            return
        if current.alive():
            # A process that does not answer its health check is of no use to later examples.
            await current.launched.wait_exit(0.5)
        evidence = current.evidence()
        await self.pool.discard()
        raise PropertyFailed(
            f"the plugin is no longer healthy after {after}: {problem} (HL-2, HK-15)\n{evidence}"
        )

    async def aclose(self) -> None:
        await self.pool.close()
