"""``pluginconf bench``'s options; light to import, so that ``pluginconf --help`` stays fast."""

from __future__ import annotations

import argparse

# The sections' names, in the order they run (kept equal to sections/registry.py by a test).
SECTION_NAMES = ("hooks", "streams", "memory", "crash", "shutdown", "suites", "fuzz")


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes and few samples, in under a minute: shows that every benchmark "
        "works; targets are reported, not enforced",
    )
    parser.add_argument("--json", metavar="FILE", help="write the figures to FILE as JSON")
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTION_NAMES,
        metavar="SECTION",
        help=f"run only this benchmark (repeatable): {', '.join(SECTION_NAMES)}",
    )
