"""Running cases: one bounded procedure each, its outcome, and the shared process's health.

A case passes when its procedure returns and no check() it made failed. It fails when the
procedure proves a violation (CaseFailed, or checks that failed: all are reported, each with
the requirements it breaks), when a call it makes fails unexpectedly, when it outlives its
time bound, or when the shared plugin process dies while it runs: then the failure carries
the exit status and the stderr tail, the process is replaced, and the run goes on. Anything
else raised is a defect of the suite (outcome ``error``), reported with its traceback.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from dataclasses import dataclass
from typing import Protocol

import grpc
import httpx

from pluginconf.host.errors import LaunchError
from pluginconf.runner.model import (
    Case,
    CaseFailed,
    CaseSkipped,
    Outcome,
    Violation,
    recording_checks,
)
from pluginconf.runner.options import PluginSuiteOptions
from pluginconf.runner.plugin.shared import SharedPool, TargetUnusable
from pluginconf.runner.plugin.target import PluginTarget
from pluginconf.runner.reports.result import Result


class SuiteSession:
    """Runs plugin cases one at a time against one target, sharing a process between them."""

    def __init__(self, options: PluginSuiteOptions) -> None:
        self.options = options
        self._pool = SharedPool(options)

    async def __aenter__(self) -> SuiteSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def run(self, case: Case) -> Result:
        target = PluginTarget(self.options, self._pool)
        start = time.monotonic()
        try:
            executed = await execute(case, target)
        finally:
            await target.aclose()
        outcome, message = await self._check_shared(
            target, executed.outcome, executed.message, executed.timed_out
        )
        violated = executed.violated if outcome is executed.outcome else ()
        return Result(case.id, outcome, message, time.monotonic() - start, violated)

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


@dataclass(frozen=True)
class Executed:
    """How one run of a procedure ended."""

    outcome: Outcome
    message: str = ""
    timed_out: bool = False
    # For a failure: the requirements it proves broken (empty: all that the case cites).
    violated: tuple[str, ...] = ()
    # The target could not be used for the case (TargetUnusable): the requirements it names
    # may be others than the case's (a plugin sharing its address breaks TR-14 in any case).
    unusable: bool = False


def _attributed(case: Case, violations: list[Violation]) -> tuple[str, ...]:
    """The requirements ``violations`` break, in the case's order (then any a TargetUnusable
    named that the case does not cite); every one the case cites when a violation names
    none."""
    named: set[str] = set()
    for violation in violations:
        if not violation.requirements:
            return case.requirements
        named.update(violation.requirements)
    own = tuple(r for r in case.requirements if r in named)
    return own + tuple(sorted(named - set(case.requirements)))


def _render(violations: list[Violation]) -> str:
    if len(violations) == 1:
        return violations[0].evidence
    parts = []
    for number, violation in enumerate(violations, 1):
        tag = f" [{', '.join(violation.requirements)}]" if violation.requirements else ""
        parts.append(f"({number}){tag} {violation.evidence}")
    return "\n".join(parts)


async def execute(case: Case, target: HasStep) -> Executed:
    """Run ``case`` on ``target`` under its time bound, with every check() it makes recorded."""
    with recording_checks() as recorded:
        executed = await _run_procedure(case, target)
        violations = list(recorded)
    if executed.outcome is Outcome.FAILED:
        violations.append(Violation(executed.message, executed.violated))
    elif not violations or executed.outcome is Outcome.ERROR:
        return executed
    # A check() failure stands even when the case later skipped or passed.
    cited = violations[:-1] if executed.unusable else violations
    foreign = {r for v in cited for r in v.requirements} - set(case.requirements)
    if foreign:
        return Executed(
            Outcome.ERROR,
            f"the suite itself failed: case {case.id} attributes a failure to "
            f"{', '.join(sorted(foreign))}, which it does not cite\n" + _render(violations),
        )
    return Executed(
        Outcome.FAILED, _render(violations), executed.timed_out, _attributed(case, violations)
    )


async def _run_procedure(case: Case, target: HasStep) -> Executed:
    bound = asyncio.timeout(case.timeout_s)
    try:
        async with bound:
            await case.procedure(target)
    except CaseFailed as exc:
        return Executed(Outcome.FAILED, str(exc), violated=exc.requirements)
    except CaseSkipped as exc:
        return Executed(Outcome.SKIPPED, str(exc))
    except TimeoutError:
        if bound.expired():
            return Executed(
                Outcome.FAILED,
                f"no result within the case's bound of {case.timeout_s:g}s; "
                f"it was {target.current_step}",
                timed_out=True,
            )
        return Executed(Outcome.FAILED, f"timed out while {target.current_step}", timed_out=True)
    except TargetUnusable as exc:
        return Executed(Outcome.FAILED, str(exc), violated=exc.requirements, unusable=True)
    except LaunchError as exc:
        return Executed(Outcome.FAILED, f"a plugin process could not be started:\n{exc}")
    except grpc.aio.AioRpcError as exc:
        return Executed(
            Outcome.FAILED,
            f"while {target.current_step}: the call failed with {exc.code().name}: {exc.details()}",
        )
    except httpx.HTTPError as exc:
        return Executed(
            Outcome.FAILED,
            f"while {target.current_step}: the HTTP request failed: {type(exc).__name__}: {exc}",
        )
    except Exception:
        return Executed(Outcome.ERROR, "the suite itself failed:\n" + traceback.format_exc())
    return Executed(Outcome.PASSED)
