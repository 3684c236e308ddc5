"""Every fuzz property, checked against docs/SPEC.md, and the selection a run makes of them."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from pluginconf.fuzz.model import FuzzProperty, FuzzTarget
from pluginconf.runner.model import Profile
from pluginconf.runner.spec import definition_problem


class PropertySelectionError(ValueError):
    """A --property pattern matched nothing; the message lists what there is."""


class PropertyDefinitionError(ValueError):
    """A property is defined twice, or cites a requirement SPEC.md lacks or the other side's."""


def load_properties(target: FuzzTarget) -> list[FuzzProperty]:
    """Every property of ``target``, checked for unique ids and real requirements."""
    # Imported here: each target's properties pull in that target's machinery.
    if target is FuzzTarget.PLUGIN:
        from pluginconf.fuzz.plugin.properties import PROPERTIES as PLUGIN_PROPERTIES

        properties = list(PLUGIN_PROPERTIES)
    else:
        from pluginconf.fuzz.host.machine import PROPERTIES as HOST_PROPERTIES

        properties = list(HOST_PROPERTIES)
    check_properties(properties)
    return properties


def check_properties(properties: Sequence[FuzzProperty]) -> None:
    """Each property's id is unique, and each SPEC id it cites exists in SPEC.md and binds
    its target (the check the case registry makes of cases)."""
    for target in {p.target for p in properties}:
        mine = ((p.full_id, p.requirements) for p in properties if p.target is target)
        problem = definition_problem("fuzz property", mine, target.value)
        if problem is not None:
            raise PropertyDefinitionError(problem)


def select(
    properties: Sequence[FuzzProperty], profile: Profile, patterns: Sequence[str]
) -> list[FuzzProperty]:
    """The properties of ``profile`` (host properties have no profile) matching any pattern;
    a pattern may name the full id (``plugin/serve-http/*``) or the id (``serve-http/*``)."""
    applicable = [
        p for p in properties if p.target is FuzzTarget.HOST or profile.includes(p.profile)
    ]
    if not patterns:
        return applicable
    for pattern in patterns:
        if not any(_matches(p, pattern) for p in properties):
            known = ", ".join(p.full_id for p in properties)
            raise PropertySelectionError(
                f"--property {pattern!r} matches no property; the properties are: {known}"
            )
    return [p for p in applicable if any(_matches(p, pattern) for pattern in patterns)]


def _matches(prop: FuzzProperty, pattern: str) -> bool:
    return fnmatch.fnmatchcase(prop.full_id, pattern) or fnmatch.fnmatchcase(prop.id, pattern)
