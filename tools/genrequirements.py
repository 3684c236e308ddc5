"""Regenerate the runner's copy of docs/SPEC.md's requirements, or check that it is current.

    python tools/genrequirements.py           # write src/pluginconf/runner/requirements.json
    python tools/genrequirements.py --check   # exit 1 if the copy is stale

The runner ships the requirements (id, binds, level, text, origin, since, rationale) so that
`pluginconf list` and the reports can quote them without the repository's docs/ at hand.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from _generated import write_or_check

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "docs" / "SPEC.md"
OUTPUT = ROOT / "src" / "pluginconf" / "runner" / "requirements.json"

# - **HS-1** (host, MUST, go-plugin) text
# - **TR-1** (plugin, MUST, go-plugin 1.5.0) text            a go-plugin rule since 1.5.0
# - **CT-8** (plugin, MUST, pluginconf) text *Why:* rationale   a stricter rule of ours
_LINE = re.compile(
    r"^- \*\*([A-Z]+-\d+)\*\* \((plugin|host|both), (MUST|SHOULD|MAY), "
    r"(go-plugin|mattermost|pluginconf\.v1|pluginconf)(?: (\d+\.\d+\.\d+))?\) (.+)$"
)
# A requirement-like line that _LINE does not take: a typo that would drop a requirement.
_LOOSE = re.compile(r"^- \*\*[A-Z]+-\d+\*\*")
_WHY = " *Why:* "


def render() -> str:
    requirements = []
    for number, line in enumerate(SPEC.read_text(encoding="utf-8").splitlines(), 1):
        match = _LINE.match(line)
        if match is None:
            if _LOOSE.match(line):
                raise SystemExit(
                    f"{SPEC}:{number}: a requirement line not of the form "
                    "'- **ID** (binds, LEVEL, ORIGIN[ VERSION]) text'"
                )
            continue
        rid, binds, level, origin, since, text = match.groups()
        text, _, rationale = text.partition(_WHY)
        if origin == "pluginconf" and not rationale:
            raise SystemExit(f"{SPEC}:{number}: {rid} is pluginconf's own rule: give its *Why:*")
        if since and origin != "go-plugin":
            raise SystemExit(f"{SPEC}:{number}: {rid}: only go-plugin origins carry a version")
        requirements.append(
            {
                "id": rid,
                "binds": binds,
                "level": level,
                "text": text.strip(),
                "origin": origin,
                "since": since or "",
                "rationale": rationale.strip(),
            }
        )
    ids = [r["id"] for r in requirements]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SystemExit(f"{SPEC}: requirement ids used twice: {', '.join(duplicates)}")
    return json.dumps(requirements, indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    return write_or_check(__doc__.splitlines()[0], OUTPUT, render, "genrequirements.py")


if __name__ == "__main__":
    sys.exit(main())
