"""What every benchmark section is given: the sizes, and a way to report progress."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pluginconf.bench.figures import Figure
from pluginconf.bench.sizes import BenchSizes


@dataclass(frozen=True)
class BenchContext:
    sizes: BenchSizes
    progress: Callable[[str], None]  # one line of detail, shown as it is measured


@dataclass(frozen=True)
class Section:
    """One benchmark: a name for ``--only``, what it measures, and how."""

    name: str
    title: str
    run: Callable[[BenchContext], Awaitable[list[Figure]]]
