"""Why a benchmark could not produce its figures."""

from __future__ import annotations


class BenchError(Exception):
    """A benchmark could not run to its end: a process that did not start, or a transfer that
    did not arrive intact. The message says which, and what was seen."""
