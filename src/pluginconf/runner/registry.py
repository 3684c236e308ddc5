"""Finding the conformance cases and choosing which to run.

The cases live in the modules ``pluginconf.conformance.<suite>`` lists in ``MODULES`` (the
repository's conformance/ directory), a module of a subpackage by its dotted name
(``"hooks.payloads"``): every module-level :class:`Case` or :class:`CaseFamily` is a case, in
the order the modules and their definitions come. A module of the suite's package that the
list leaves out, other than a private one (``_helpers``), is a definition error, so that a
new module cannot be skipped silently.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import pkgutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType

from pluginconf.runner.cli.arguments import SUITES
from pluginconf.runner.model import Case, CaseDefinitionError, CaseFamily, Profile
from pluginconf.runner.spec import definition_problem


class SelectionError(ValueError):
    """A --run/--skip pattern or profile that selects nothing usable; a usage error."""


def load_cases(suite: str) -> list[Case]:
    """Every case of ``suite``, checked for unique ids and real requirements."""
    if suite not in SUITES:
        raise SelectionError(f"unknown suite {suite!r}; expected one of {', '.join(SUITES)}")
    package = importlib.import_module(f"pluginconf.conformance.{suite}")
    listed: tuple[str, ...] = getattr(package, "MODULES", ())
    _check_listed(package, listed)
    found: list[Case] = []
    for name in listed:
        module = importlib.import_module(f"{package.__name__}.{name}")
        for value in vars(module).values():
            if isinstance(value, Case):
                found.append(value)
            elif isinstance(value, CaseFamily):
                found.extend(value.cases)
    _validate(suite, found)
    return found


def _check_listed(package: ModuleType, listed: Sequence[str]) -> None:
    """Every public module under ``package`` (its subpackages included) is in ``listed``."""
    prefix = f"{package.__name__}."
    for module in pkgutil.walk_packages(package.__path__, prefix):
        name = module.name.removeprefix(prefix)
        if module.ispkg or any(part.startswith("_") for part in name.split(".")):
            continue
        if name not in listed:
            raise CaseDefinitionError(
                f"module {module.name} is not in {package.__name__}.MODULES, so its cases "
                "would never run; list it there, in reading order"
            )


def _validate(suite: str, cases: Sequence[Case]) -> None:
    for case in cases:
        if case.suite != suite:
            raise CaseDefinitionError(f"case {case.id} is in the {suite} suite's modules")
    problem = definition_problem("case", ((c.id, c.requirements) for c in cases), suite)
    if problem is not None:
        raise CaseDefinitionError(problem)


def no_match_message(pattern: str, ids: Sequence[str]) -> str:
    """Why ``pattern`` selects nothing, with examples from the suite being run."""
    if not ids:
        return f"pattern {pattern!r} matches no case"
    suite = ids[0].split("/", 1)[0]
    example = "/".join(ids[0].split("/")[:2]) + "/*"
    message = f"pattern {pattern!r} matches no case of the {suite} suite"
    other = pattern.split("/", 1)[0]
    close = difflib.get_close_matches(pattern, ids, n=3, cutoff=0.7)
    if other != suite and other in SUITES:
        message += f" ({other}/... ids are the {other} suite's)"
    elif close:
        message += f"; did you mean {', '.join(repr(c) for c in close)}?"
    return (
        f"{message}\n  `pluginconf list {suite}` shows its ids (globs: * matches across '/', "
        f"e.g. {example!r})"
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
                raise SelectionError(no_match_message(pattern, ids))
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
