"""The loop a campaign runs on, and what every property's test is given.

Hypothesis calls tests synchronously; the targets are driven with grpc.aio. One
``asyncio.Runner`` lives for the whole campaign, so the target's processes, channels and
servers stay up between examples, and each example runs to completion on it under a bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from pluginconf.fuzz.model import PropertyFailed
from pluginconf.runner.interrupt import run_interruptibly

T = TypeVar("T")


class FuzzContext:
    """A campaign's loop, and its count of examples run."""

    def __init__(self, runner: asyncio.Runner) -> None:
        self.runner = runner
        self.examples = 0

    def example(self) -> None:
        """Count one example (each call of a property's test body, shrinking included)."""
        self.examples += 1

    def run(self, coro: Coroutine[Any, Any, T], bound_s: float, what: str) -> T:
        """Run ``coro`` on the campaign's loop; more than ``bound_s`` fails the example."""

        async def bounded() -> T:
            try:
                async with asyncio.timeout(bound_s):
                    return await coro
            except TimeoutError:
                raise PropertyFailed(f"{what} did not finish within {bound_s:g}s") from None

        return run_interruptibly(self.runner, bounded())
