"""What the host declares it has: the features the SPEC requires of every host."""

from __future__ import annotations

from pluginconf.runner import Profile, case, check, skip
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.target import HostTarget

REQUIRED = tuple(c for c in Capability if c.required)


@case(
    "host/capabilities/declared",
    requirements=list(dict.fromkeys(r for c in REQUIRED for r in c.required_by)),
    profile=Profile.HOOKS,
)
async def declared(t: HostTarget) -> None:
    """
    Purpose: A host that lacks a feature every host needs says so once, in one case, instead
      of failing every case that needs the feature.
    Procedure: Read the capabilities the adapter declares in GetHostInfo (none declared
      means every one) and whether it reports an HTTP front.
    Asserts: The host restarts crashed plugins (SV-8 to SV-10), checks the health of active
      ones (SV-7), has a circuit breaker (SV-11 to SV-13) and an HTTP front (SE-1). Under a
      go-plugin target this is skipped: go-plugin's client has none of them, and the cases
      that need one are skipped with the reason.
    """
    missing = [c for c in REQUIRED if not t.supports(c)]
    if t.options.target.go_plugin_based:
        lacks = "; ".join(t.capabilities.why_missing(c, True) for c in missing)
        skip(
            f"under the {t.options.target.name} target a host need not have these features"
            + (f" ({lacks})" if lacks else "")
        )
    for capability in missing:
        check(
            False,
            f"{t.capabilities.why_missing(capability, False)}; every host MUST have it "
            f"({', '.join(capability.required_by)}), and the cases that need it were skipped",
            requirement=capability.required_by,
        )
