"""Running host cases: one adapter process and one Observer per worker, a HostTarget per case.

After each case the plugins it loaded are unloaded, and every plugin process its fakes
reported must be gone; one that is not fails the case (and is killed), breaking the rule it
shows broken whatever the case cites: a plugin process still running SV-14, a zombie SV-17,
only other members of its process group SV-16 and SV-22. When the adapter dies during a case,
the case fails with the adapter's stderr and a new adapter serves the next.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import time
from pathlib import Path

from pluginconf.runner.engine import execute
from pluginconf.runner.host.adapter_process import AdapterProcess
from pluginconf.runner.host.observer import ObserverServer
from pluginconf.runner.host.target import Cleanup, HostTarget
from pluginconf.runner.model import Case, Outcome
from pluginconf.runner.options import HostSuiteOptions
from pluginconf.runner.reports.result import Result


class HostSuiteSession:
    def __init__(self, options: HostSuiteOptions) -> None:
        self.options = options
        self.workdir = Path(tempfile.mkdtemp(prefix="pluginconf-hs-"))
        self.observer = ObserverServer(str(self.workdir / "observer.sock"))
        self._observer_started = False
        self._adapter: AdapterProcess | None = None
        self._serial = itertools.count(1)
        self._cases = itertools.count(1)

    async def __aenter__(self) -> HostSuiteSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def adapter(self) -> AdapterProcess:
        """The running adapter, started (again) when there is none."""
        if not self._observer_started:
            await self.observer.start()
            self._observer_started = True
        if self._adapter is not None and not self._adapter.alive():
            await self._adapter.close()
            self._adapter = None
        if self._adapter is None:
            adapter = AdapterProcess(
                self.options.argv, self.options.start_timeout_s, self.options.env
            )
            try:
                await adapter.start()
            except BaseException:
                await adapter.close()
                raise
            self._adapter = adapter
        return self._adapter

    async def open_target(self, requirements: tuple[str, ...] = ()) -> HostTarget:
        """A HostTarget over the running adapter, with a fresh working directory, for a case
        citing ``requirements``.

        Ids are unique per session, so earlier targets' events are only history: they are
        dropped."""
        self.observer.events.clear()
        casedir = self.workdir / f"case{next(self._cases)}"
        casedir.mkdir()
        try:
            adapter = await self.adapter()
        except BaseException:
            shutil.rmtree(casedir, ignore_errors=True)
            raise
        return HostTarget(
            self.options,
            adapter,
            self.observer,
            casedir,
            lambda: next(self._serial),
            requirements,
        )

    async def close_target(self, target: HostTarget) -> str | None:
        """Unload the target's plugins and check that their processes are gone, and that
        the adapter lived; the problems, or None."""
        return (await self._close(target)).message

    async def _close(self, target: HostTarget) -> Cleanup:
        try:
            cleanup = await target.aclose()
        finally:
            shutil.rmtree(target.workdir, ignore_errors=True)
        if not target.adapter.alive():
            died = Cleanup()
            died.add(
                "the adapter exited during this case; a new one serves the next cases\n"
                + target.adapter.evidence()
            )
            died.merge(cleanup)
            cleanup = died
        return cleanup

    async def run(self, case: Case) -> Result:
        start = time.monotonic()
        try:
            target = await self.open_target(case.requirements)
        except Exception as exc:
            return Result(case.id, Outcome.FAILED, str(exc), time.monotonic() - start)
        try:
            executed = await execute(case, target)
        finally:
            cleanup = await self._close(target)
        outcome, message, violated = executed.outcome, executed.message, executed.violated
        problem = cleanup.message
        if problem is not None and outcome in (Outcome.PASSED, Outcome.SKIPPED, Outcome.FAILED):
            message = f"{message}\n{problem}" if message else problem
            violated = _combined(case, outcome, violated, cleanup)
            outcome = Outcome.FAILED
        elif problem is not None:
            message = f"{message}\n{problem}"
        return Result(case.id, outcome, message, time.monotonic() - start, violated)

    async def aclose(self) -> None:
        if self._adapter is not None:
            await self._adapter.close()
            self._adapter = None
        if self._observer_started:
            await self.observer.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _combined(
    case: Case, outcome: Outcome, violated: tuple[str, ...], cleanup: Cleanup
) -> tuple[str, ...]:
    """What a case with leftovers breaks: what the case itself proved broken (all it cites,
    when its failure named none), and what the leftovers show broken, which the case need not
    cite (a plugin process left running breaks the stop sequence whatever the case checked).
    Empty when a problem names no requirement: every requirement the case cites."""
    if cleanup.unattributed:
        return ()
    own: tuple[str, ...] = ()
    if outcome is Outcome.FAILED:
        own = violated or case.requirements
    return own + tuple(r for r in cleanup.violated if r not in own)
