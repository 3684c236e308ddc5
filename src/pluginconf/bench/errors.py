"""Why a benchmark could not produce its figures, quoting what the process it ran printed."""

from __future__ import annotations


class BenchError(Exception):
    """A benchmark could not run to its end: a process that did not start, or a transfer that
    did not arrive intact. The message says which, and what was seen."""


def last_lines(text: str, lines: int) -> str:
    """The last ``lines`` lines of a process's output, to quote in a BenchError."""
    return "\n".join(text.splitlines()[-lines:])
