"""How the console condenses what it prints: alike failures once, repeats counted, skip
reasons grouped, the slowest cases. Text only; console.py prints it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from pluginconf.runner.reports.report import CaseReport

# What the cases after the first of a group did, by console section.
SAME_WAY = {
    "FAILED": "failed the same way",
    "ERROR": "ended with the same error",
    "XPASSED": "passed the same way",
    "NOT MET": "missed it the same way",
}


def group_alike(
    reports: Sequence[CaseReport], body: Callable[[CaseReport], str]
) -> list[list[CaseReport]]:
    """``reports`` in groups of the same text, each in the order of its first case."""
    groups: dict[str, list[CaseReport]] = {}
    for report in reports:
        groups.setdefault(body(report), []).append(report)
    return list(groups.values())


def more_alike(key: str, rest: Sequence[CaseReport]) -> str:
    """The line after a group's first entry, naming the others."""
    cases = "case" if len(rest) == 1 else "cases"
    ids = ", ".join(r.id for r in rest)
    return f"and {len(rest)} more {cases} {SAME_WAY.get(key, 'the same way')}: {ids}"


def collapse_repeats(line: str) -> str:
    """A line of "; "-separated parts that repeat, each part once with its count:
    "call 1..20: boom; boom; boom" becomes "call 1..20: boom (3 times)"."""
    parts = line.split("; ")
    if len(parts) < 2:
        return line
    prefix = ""
    for later in parts[1:]:
        # The first part may carry a lead-in ("call 1..20: ") before the repeated text.
        if parts[0] != later and parts[0].endswith(": " + later):
            prefix, parts[0] = parts[0][: -len(later)], later
            break
    counts = Counter(parts)
    if max(counts.values()) == 1:
        return line
    shown = [p if n == 1 else f"{p} ({n} times)" for p, n in counts.items()]
    return prefix + "; ".join(shown)


def skip_groups(reports: Sequence[CaseReport]) -> list[tuple[str, list[str]]]:
    """The skip reasons of the skipped cases, each with its case ids, in case order."""
    reasons: dict[str, list[str]] = {}
    for report in reports:
        reason = report.message.strip().splitlines()[0] if report.message.strip() else ""
        reasons.setdefault(reason or "(no reason given)", []).append(report.id)
    return list(reasons.items())


def slowest(reports: Sequence[CaseReport], count: int) -> list[str]:
    """Lines for the ``count`` slowest cases (every case for 0), slowest first."""
    ordered = sorted(reports, key=lambda r: r.duration_s, reverse=True)
    if count:
        ordered = ordered[:count]
    return [f"{r.duration_s:8.2f}s  {r.outcome:8} {r.id}" for r in ordered]
