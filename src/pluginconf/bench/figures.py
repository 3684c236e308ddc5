"""Figures, their same-run baselines, and the targets they are held to.

A figure's JSON form is the contract of ``pluginconf bench --json`` (DESIGN.md):
``{name, unit, value, baseline_name, baseline, ratio, target, met}``. Times are in seconds,
throughput in MiB/s, memory in MiB.
"""

from __future__ import annotations

import enum
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def shown_in(value: float, unit: str) -> tuple[float, str]:
    """``value`` and its unit as people read them: seconds under 1 s as ms, and the unit with
    its space ("64 MiB", but "50/s")."""
    if unit == "s" and abs(value) < 1:
        return value * 1000, " ms"
    return value, f" {unit}" if unit and not unit.startswith("/") else unit


class TargetKind(enum.Enum):
    RATIO_AT_MOST = "ratio_at_most"  # value / baseline <= bound
    RATIO_AT_LEAST = "ratio_at_least"  # value / baseline >= bound
    AT_MOST = "at_most"  # value <= bound
    AT_LEAST = "at_least"  # value >= bound
    BASELINE_PLUS = "baseline_plus"  # value <= baseline + bound


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    bound: float
    unit: str = ""

    def describe(self) -> str:
        bound, unit = shown_in(self.bound, self.unit)
        match self.kind:
            case TargetKind.RATIO_AT_MOST:
                return f"<= {self.bound:g}x baseline"
            case TargetKind.RATIO_AT_LEAST:
                return f">= {self.bound:g}x baseline"
            case TargetKind.AT_MOST:
                return f"<= {bound:g}{unit}"
            case TargetKind.AT_LEAST:
                return f">= {bound:g}{unit}"
            case TargetKind.BASELINE_PLUS:
                return f"<= baseline + {bound:g}{unit}"

    def met(self, value: float, baseline: float | None) -> bool:
        """Whether ``value`` meets the target; a ratio target without a baseline is not met."""
        match self.kind:
            case TargetKind.AT_MOST:
                return value <= self.bound
            case TargetKind.AT_LEAST:
                return value >= self.bound
        if baseline is None or baseline <= 0:
            return False
        match self.kind:
            case TargetKind.RATIO_AT_MOST:
                return value / baseline <= self.bound
            case TargetKind.RATIO_AT_LEAST:
                return value / baseline >= self.bound
            case _:
                return value <= baseline + self.bound


def ratio_at_most(bound: float) -> Target:
    return Target(TargetKind.RATIO_AT_MOST, bound)


def ratio_at_least(bound: float) -> Target:
    return Target(TargetKind.RATIO_AT_LEAST, bound)


def at_most(bound: float, unit: str) -> Target:
    return Target(TargetKind.AT_MOST, bound, unit)


def at_least(bound: float, unit: str) -> Target:
    return Target(TargetKind.AT_LEAST, bound, unit)


def baseline_plus(bound: float, unit: str) -> Target:
    return Target(TargetKind.BASELINE_PLUS, bound, unit)


@dataclass(frozen=True)
class Figure:
    """One measured figure; ``baseline`` is raw grpcio (or the plugin alone) in the same run."""

    name: str
    unit: str
    value: float
    baseline_name: str | None = None
    baseline: float | None = None
    target: Target | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline <= 0:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value, self.baseline)

    def to_json(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "name": self.name,
            "unit": self.unit,
            "value": _significant(self.value),
            "baseline_name": self.baseline_name,
            "baseline": None if self.baseline is None else _significant(self.baseline),
            "ratio": None if ratio is None else round(ratio, 3),
            "target": None if self.target is None else self.target.describe(),
            "met": self.met,
        }


def _significant(value: float, digits: int = 5) -> float:
    """``value`` to ``digits`` significant digits: seconds and MiB/s alike stay readable."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def p50(values: Sequence[float]) -> float:
    return statistics.median(values)


def p99(values: Sequence[float]) -> float:
    """The nearest-rank 99th percentile."""
    ordered = sorted(values)
    return ordered[math.ceil(0.99 * len(ordered)) - 1]
