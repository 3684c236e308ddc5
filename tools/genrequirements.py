"""Regenerate the runner's copy of docs/SPEC.md's requirements, or check that it is current.

    python tools/genrequirements.py           # write src/pluginconf/runner/requirements.json
    python tools/genrequirements.py --check   # exit 1 if the copy is stale

The runner ships the requirements (id, binds, level, text) so that `pluginconf list` and the
reports can quote them without the repository's docs/ at hand.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "docs" / "SPEC.md"
OUTPUT = ROOT / "src" / "pluginconf" / "runner" / "requirements.json"

# - **HS-1** (host, MUST) text
_LINE = re.compile(r"^- \*\*([A-Z]+-\d+)\*\* \((plugin|host|both), (MUST|SHOULD|MAY)\) (.+)$")


def render() -> str:
    requirements = []
    for line in SPEC.read_text(encoding="utf-8").splitlines():
        match = _LINE.match(line)
        if match:
            rid, binds, level, text = match.groups()
            requirements.append({"id": rid, "binds": binds, "level": level, "text": text})
    ids = [r["id"] for r in requirements]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SystemExit(f"{SPEC}: requirement ids used twice: {', '.join(duplicates)}")
    return json.dumps(requirements, indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is stale: run python tools/genrequirements.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
