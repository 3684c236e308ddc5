"""What the generators of checked-in files share: write the file, or with --check only say
that it is stale and which command rewrites it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_or_check(description: str, output: Path, render: Callable[[], str], script: str) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    text = render()
    if parser.parse_args().check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            print(
                f"{output.relative_to(ROOT)} is stale: run python tools/{script}", file=sys.stderr
            )
            return 1
        return 0
    output.write_text(text, encoding="utf-8")
    return 0
