"""Running cases: one bounded procedure each, its outcome, and the shared process's health.

A case passes when its procedure returns. It fails when the procedure proves a violation
(CaseFailed), when a call it makes fails unexpectedly, when it outlives its time bound, or
when the shared plugin process dies while it runs: then the failure carries the exit status
and the stderr tail, the process is replaced, and the run goes on. Anything else raised is a
defect of the suite (outcome ``error``), reported with its traceback.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from typing import Protocol

import grpc
import httpx

from pluginconf.host.errors import LaunchError
from pluginconf.runner.model import Case, CaseFailed, CaseResult, CaseSkipped, Outcome
from pluginconf.runner.options import PluginSuiteOptions
from pluginconf.runner.shared import SharedPool, TargetUnusable
from pluginconf.runner.target import PluginTarget


class SuiteSession:
    """Runs plugin cases one at a time against one target, sharing a process between them."""

    def __init__(self, options: PluginSuiteOptions) -> None:
        self.options = options
        self._pool = SharedPool(options)

    async def __aenter__(self) -> SuiteSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def run(self, case: Case) -> CaseResult:
        target = PluginTarget(self.options, self._pool)
        start = time.monotonic()
        try:
            outcome, message, timed_out = await execute(case, target)
        finally:
            await target.aclose()
        outcome, message = await self._check_shared(target, outcome, message, timed_out)
        return CaseResult(case.id, outcome, message, time.monotonic() - start)

    async def _check_shared(
        self, target: PluginTarget, outcome: Outcome, message: str, timed_out: bool
    ) -> tuple[Outcome, str]:
        shared = self._pool.current
        if not target.used_shared or shared is None:
            return outcome, message
        problem = None
        if timed_out or outcome is Outcome.FAILED:
            unhealthy = await shared.check_health(timeout_s=2.0)
            if unhealthy is not None:
                # A process that just died may not be reaped yet: give it a moment to say so.
                await shared.wait_exit(1.0)
                problem = f"after this case the plugin is unhealthy ({unhealthy})"
        if not shared.alive():
            problem = "the plugin process exited during this case"
        if problem is None:
            return outcome, message
        evidence = f"{problem}; a new process serves the next cases\n{shared.evidence()}"
        await self._pool.discard()
        if outcome is Outcome.ERROR:
            return outcome, f"{message}\n{evidence}"
        return Outcome.FAILED, f"{message}\n{evidence}" if message else evidence

    async def aclose(self) -> None:
        await self._pool.close()


class HasStep(Protocol):
    current_step: str


async def execute(case: Case, target: HasStep) -> tuple[Outcome, str, bool]:
    """Run ``case`` on ``target`` under its time bound: outcome, evidence, whether it timed out."""
    bound = asyncio.timeout(case.timeout_s)
    try:
        async with bound:
            await case.procedure(target)
    except CaseFailed as exc:
        return Outcome.FAILED, str(exc), False
    except CaseSkipped as exc:
        return Outcome.SKIPPED, str(exc), False
    except TimeoutError:
        if bound.expired():
            return (
                Outcome.FAILED,
                f"no result within the case's bound of {case.timeout_s:g}s; "
                f"it was {target.current_step}",
                True,
            )
        return Outcome.FAILED, f"timed out while {target.current_step}", True
    except TargetUnusable as exc:
        return Outcome.FAILED, str(exc), False
    except LaunchError as exc:
        return Outcome.FAILED, f"a plugin process could not be started:\n{exc}", False
    except grpc.aio.AioRpcError as exc:
        return (
            Outcome.FAILED,
            f"while {target.current_step}: the call failed with {exc.code().name}: {exc.details()}",
            False,
        )
    except httpx.HTTPError as exc:
        return (
            Outcome.FAILED,
            f"while {target.current_step}: the HTTP request failed: {type(exc).__name__}: {exc}",
            False,
        )
    except Exception:
        return Outcome.ERROR, "the suite itself failed:\n" + traceback.format_exc(), False
    return Outcome.PASSED, "", False
