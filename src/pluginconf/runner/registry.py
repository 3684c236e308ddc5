"""Finding the conformance cases and choosing which to run.

The cases live in the modules ``pluginconf.conformance.<suite>`` lists in ``MODULES`` (the
repository's conformance/ directory): every module-level :class:`Case` or :class:`CaseFamily`
is a case, in the order the modules and their definitions come.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pluginconf.runner.arguments import SUITES
from pluginconf.runner.model import Case, CaseDefinitionError, CaseFamily, Profile
from pluginconf.runner.spec import requirements


class SelectionError(ValueError):
    """A --run/--skip pattern or profile that selects nothing usable; a usage error."""


def load_cases(suite: str) -> list[Case]:
    """Every case of ``suite``, checked for unique ids and real requirements."""
    if suite not in SUITES:
        raise SelectionError(f"unknown suite {suite!r}; expected one of {', '.join(SUITES)}")
    package = importlib.import_module(f"pluginconf.conformance.{suite}")
    found: list[Case] = []
    for name in getattr(package, "MODULES", ()):
        module = importlib.import_module(f"{package.__name__}.{name}")
        for value in vars(module).values():
            if isinstance(value, Case):
                found.append(value)
            elif isinstance(value, CaseFamily):
                found.extend(value.cases)
    _validate(suite, found)
    return found


def _validate(suite: str, cases: Sequence[Case]) -> None:
    seen: set[str] = set()
    known = requirements()
    for case in cases:
        if case.id in seen:
            raise CaseDefinitionError(f"case id {case.id} is defined twice")
        seen.add(case.id)
        if case.suite != suite:
            raise CaseDefinitionError(f"case {case.id} is in the {suite} suite's modules")
        for rid in case.requirements:
            if rid not in known:
                raise CaseDefinitionError(f"case {case.id} cites {rid}, which SPEC.md lacks")
            if not known[rid].applies_to(suite):
                raise CaseDefinitionError(
                    f"case {case.id} cites {rid}, a {known[rid].binds} requirement, in the "
                    f"{suite} suite"
                )


@dataclass(frozen=True)
class Selection:
    profile: Profile
    run: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()

    def apply(self, cases: Iterable[Case]) -> list[Case]:
        """The cases of the profile that match --run (all when none) and no --skip.

        A pattern that matches no case at all is a usage error, so that a typo cannot
        silently run nothing.
        """
        cases = list(cases)
        ids = [c.id for c in cases]
        for pattern in (*self.run, *self.skip):
            if not fnmatch.filter(ids, pattern):
                raise SelectionError(
                    f"pattern {pattern!r} matches no case; `pluginconf list` shows the ids "
                    "(globs: * matches across '/', e.g. 'plugin/sdk/*')"
                )
        chosen = []
        for case in cases:
            if not self.profile.includes(case.profile):
                continue
            if self.run and not any(fnmatch.fnmatchcase(case.id, p) for p in self.run):
                continue
            if any(fnmatch.fnmatchcase(case.id, p) for p in self.skip):
                continue
            chosen.append(case)
        return chosen
