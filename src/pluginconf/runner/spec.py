"""docs/SPEC.md's requirements, as shipped with the runner (tools/genrequirements.py).

Each requirement names its origin:

- ``go-plugin``: what go-plugin's own client and server do, with the go-plugin version that
  brought it where that matters;
- ``mattermost``: the semantics of the Mattermost plugin host, which the hooks follow;
- ``pluginconf.v1``: the definition of pluginconf's hooks protocol (framing, errors, the
  HostAPI), binding on whoever speaks it;
- ``pluginconf``: a rule of this project stricter than go-plugin or Mattermost, with its
  rationale.

Targets (targets.py) decide which origins fail a run: a go-plugin application's target
leaves out ``pluginconf``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources


class Origin(enum.StrEnum):
    """Where a requirement comes from; the order is the order reports list them in."""

    GO_PLUGIN = "go-plugin"
    MATTERMOST = "mattermost"
    HOOKS_PROTOCOL = "pluginconf.v1"
    PLUGINCONF = "pluginconf"


@dataclass(frozen=True)
class Requirement:
    id: str
    binds: str  # "plugin", "host" or "both"
    level: str  # "MUST", "SHOULD" or "MAY"
    text: str
    origin: Origin = Origin.PLUGINCONF
    # For go-plugin rules that not every go-plugin release follows: the first that does.
    since: str = ""
    # Why the rule is kept (always given for pluginconf's own rules).
    rationale: str = ""

    def applies_to(self, suite: str) -> bool:
        return self.binds in (suite, "both")

    @property
    def origin_label(self) -> str:
        """``go-plugin``, ``go-plugin >= 1.5.0``, ``mattermost`` or ``pluginconf``."""
        return f"{self.origin} >= {self.since}" if self.since else str(self.origin)

    def upgrade_hint(self) -> str:
        """For a versioned go-plugin rule: which go-plugin release a plugin or host needs."""
        if self.origin is not Origin.GO_PLUGIN or not self.since:
            return ""
        return (
            f"{self.id} is go-plugin's behaviour since go-plugin {self.since}; an "
            f"implementation built on an older go-plugin lacks it: upgrade go-plugin to "
            f"{self.since} or later"
        )


def origins_label(origins: set[Origin] | frozenset[Origin]) -> str:
    """Several origins as one report value, in Origin order: ``go-plugin+pluginconf``."""
    return "+".join(str(o) for o in Origin if o in origins)


@cache
def requirements() -> dict[str, Requirement]:
    raw = resources.files("pluginconf.runner").joinpath("requirements.json").read_text("utf-8")
    found = {}
    for entry in json.loads(raw):
        entry["origin"] = Origin(entry["origin"])
        found[entry["id"]] = Requirement(**entry)
    return found


def citation_problem(subject: str, cited: Iterable[str], side: str) -> str | None:
    """What is wrong with ``subject`` (a case, a fuzz property) citing the requirement ids
    ``cited`` on ``side`` ("plugin" or "host"): the first id SPEC.md lacks, or that binds the
    other side only; None when each exists and binds ``side`` (or both sides)."""
    known = requirements()
    for rid in cited:
        if rid not in known:
            return f"{subject} cites {rid}, which SPEC.md lacks; cite ids of docs/SPEC.md"
        if not known[rid].applies_to(side):
            return (
                f"{subject} cites {rid}, a {known[rid].binds} requirement, for a {side}; cite "
                f"requirements that bind the {side} (or both sides)"
            )
    return None


def definition_problem(
    kind: str, defined: Iterable[tuple[str, Iterable[str]]], side: str
) -> str | None:
    """The first problem of the things of ``kind`` ("case", "fuzz property") defined on
    ``side``, each as (id, the requirement ids it cites): an id defined twice, or a
    :func:`citation_problem`. None when there is none."""
    seen: set[str] = set()
    for defined_id, cited in defined:
        if defined_id in seen:
            return f"{kind} {defined_id} is defined twice; give each one an id of its own"
        seen.add(defined_id)
        problem = citation_problem(f"{kind} {defined_id}", cited, side)
        if problem is not None:
            return problem
    return None
