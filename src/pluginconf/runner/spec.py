"""docs/SPEC.md's requirements, as shipped with the runner (tools/genrequirements.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Requirement:
    id: str
    binds: str  # "plugin", "host" or "both"
    level: str  # "MUST", "SHOULD" or "MAY"
    text: str

    def applies_to(self, suite: str) -> bool:
        return self.binds in (suite, "both")


@cache
def requirements() -> dict[str, Requirement]:
    raw = resources.files("pluginconf.runner").joinpath("requirements.json").read_text("utf-8")
    return {entry["id"]: Requirement(**entry) for entry in json.loads(raw)}
