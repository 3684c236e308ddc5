"""The bench console table and its JSON report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from rich.table import Table

from pluginconf.bench.figures import Figure, shown_in
from pluginconf.bench.sizes import BenchSizes


def show(value: float, unit: str) -> str:
    """``value`` in ``unit`` for people: 0.00134 s is "1.34 ms"."""
    scaled, suffix = shown_in(value, unit)
    return f"{_number(scaled)}{suffix}"


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def figure_table(figures: Sequence[Figure], enforced: bool) -> Table:
    table = Table(title=None if enforced else "--quick: few samples, targets not enforced")
    for heading in ("figure", "value", "baseline", "ratio", "target", "met"):
        table.add_column(heading, justify="right" if heading in ("value", "ratio") else "left")
    for f in figures:
        met = f.met
        table.add_row(
            f.name,
            show(f.value, f.unit),
            "-" if f.baseline is None else f"{show(f.baseline, f.unit)} ({f.baseline_name})",
            "-" if f.ratio is None else f"{f.ratio:.2f}",
            "-" if f.target is None else f.target.describe(),
            "-" if met is None else ("[green]yes[/green]" if met else "[red]no[/red]"),
        )
    return table


def missed_lines(figures: Sequence[Figure]) -> list[str]:
    out = []
    for f in figures:
        if f.met is False:
            ratio = "" if f.ratio is None else f" (ratio {f.ratio:.2f})"
            assert f.target is not None
            out.append(
                f"target not met: {f.name} = {show(f.value, f.unit)}{ratio}, "
                f"target {f.target.describe()}"
            )
    return out


def exit_status(figures: Sequence[Figure], sizes: BenchSizes) -> int:
    """1 when a target was missed and the run enforces targets (not ``--quick``), else 0."""
    missed = any(f.met is False for f in figures)
    return 1 if missed and sizes.enforce_targets else 0


def bench_json(
    figures: Sequence[Figure], sizes: BenchSizes, quick: bool, sections: Sequence[str], took: float
) -> dict[str, Any]:
    return {
        "figures": [f.to_json() for f in figures],
        "quick": quick,
        "targets_enforced": sizes.enforce_targets,
        "sections": list(sections),
        "sizes": asdict(sizes),
        "duration_s": round(took, 3),
    }
