"""Every fuzz property, and the selection a run makes of them."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from pluginconf.fuzz.model import FuzzProperty, FuzzTarget
from pluginconf.runner.model import Profile


class PropertySelectionError(ValueError):
    """A --property pattern matched nothing; the message lists what there is."""


def load_properties(target: FuzzTarget) -> list[FuzzProperty]:
    # Imported here: each target's properties pull in that target's machinery.
    if target is FuzzTarget.PLUGIN:
        from pluginconf.fuzz.plugin_properties import PROPERTIES as PLUGIN_PROPERTIES

        return list(PLUGIN_PROPERTIES)
    from pluginconf.fuzz.host_machine import PROPERTIES as HOST_PROPERTIES

    return list(HOST_PROPERTIES)


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
