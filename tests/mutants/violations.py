"""The requirement-level check of the mutant matrices: a mutant breaks exactly the
requirements it declares (``violates``), and the cases citing them catch it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol


class _Result(Protocol):
    violated: tuple[str, ...]


class _Case(Protocol):
    id: str
    requirements: tuple[str, ...]


def named(result: _Result, case: _Case) -> tuple[str, ...]:
    """What a failure proves broken: what it names, or every requirement its case cites."""
    return result.violated or case.requirements


def problems(
    name: str,
    violates: Sequence[str],
    results: Mapping[str, _Result],
    cases: Sequence[_Case],
) -> list[str]:
    """Empty when every failure names one of ``violates`` and each of them is named."""
    if not violates:
        return [f"{name} declares no requirement it violates (violates=...)"]
    found = []
    seen: set[str] = set()
    for case in cases:
        ids = named(results[case.id], case)
        seen.update(ids)
        if not set(ids) & set(violates):
            found.append(
                f"{case.id} failed naming {', '.join(ids)}, none of the requirements "
                f"{name} violates ({', '.join(violates)})"
            )
    for rid in violates:
        if rid not in seen:
            found.append(f"no failure of {name} names {rid}, which it violates")
    return found
