"""The JSON report of `pluginconf fuzz` (docs/fuzzing.md), made from the shares' results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pluginconf.runner.reports.result import Result


def fuzz_report(
    *,
    target: str,
    command: Sequence[str],
    seed: int,
    workers: int,
    results: Sequence[Result],
    failures: Sequence[Result],
    duration_s: float,
    shard: str | None = None,
) -> dict[str, Any]:
    """The report of a campaign: every share's result, and its ``failures`` again with the
    command that replays each (``reproduce``, which the shares' own entries leave empty)."""
    examples = sum(r.examples for r in results)
    report = {
        "target": target,
        "command": list(command),
        "examples": examples,
        "examples_per_s": round(examples / duration_s, 2) if duration_s else 0.0,
        "seed": seed,
        "workers": workers,
        "duration_s": round(duration_s, 3),
        "properties": [_share(r) for r in results],
        "failures": [{**_failure(r), "seed": r.seed} for r in failures],
    }
    if shard is not None:
        report["shard"] = shard
    return report


def _share(result: Result) -> dict[str, Any]:
    return {
        "property": result.id,
        "seed": result.seed,
        "examples": result.examples,
        "duration_s": round(result.duration_s, 3),
        "failure": _failure(result) if result.failed else None,
        "notes": list(result.notes),
    }


def _failure(result: Result) -> dict[str, Any]:
    return {
        "property": result.id,
        "message": result.message,
        "example": result.example,
        "blob": result.blob,
        "reproduce": result.reproduce,
    }
