"""App protocol version negotiation, with go-plugin's rules."""

from __future__ import annotations

import re
from collections.abc import Iterable

# A decimal integer as go's strconv.Atoi reads one: an optional sign and ASCII digits. Python's
# int() also takes "1_0" and non-ASCII digits ("\u0661"), which a host never means.
_DECIMAL = re.compile(r"[+-]?[0-9]+")


def parse_protocol_versions(text: str) -> tuple[list[int], list[str]]:
    """Parse a ``PLUGIN_PROTOCOL_VERSIONS`` value.

    Returns the versions and the entries that were not integers (go-plugin warns about
    those and carries on, so we do too).
    """
    versions: list[int] = []
    invalid: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if _DECIMAL.fullmatch(part):
            versions.append(int(part))
        else:
            invalid.append(part)
    return versions, invalid


def negotiate_version(ours: Iterable[int], theirs: Iterable[int]) -> tuple[int, bool]:
    """Pick the highest version both sides support.

    Returns ``(version, agreed)``. With no common version, returns our lowest version and
    ``agreed=False``: the plugin offers it and leaves the host to report the mismatch.
    """
    supported = sorted(set(ours), reverse=True)
    if not supported:
        raise ValueError("a plugin must support at least one app protocol version")
    wanted = set(theirs)
    for version in supported:
        if version in wanted:
            return version, True
    return supported[-1], False
