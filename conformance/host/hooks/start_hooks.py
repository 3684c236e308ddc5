"""The start sequence's hooks, host side: OnConfigurationChange or OnActivate that hang or
fail on transport count as a failed start (LC-8)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pluginconf.fake.scenario.spec import ScenarioSpec
from pluginconf.runner import Profile, case_each, check, expect
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.fake_plugin import describe_status
from pluginconf.runner.host.target import HostTarget

BACKOFF: dict[str, Any] = {"backoff_base_s": 0.05, "backoff_max_s": 0.1}
# A bound on something that must not happen, not a SPEC time.
SETTLE_S = 0.5


@dataclass(frozen=True)
class StartFailure:
    name: str
    scenario: ScenarioSpec
    what: str
    policy: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        return self.name


START_FAILURES = (
    StartFailure(
        "activate-deadline",
        {"hang": {"hook": "OnActivate"}},
        "OnActivate never answered (hook deadline 0.5 s)",
        (("hook_timeout_s", 0.5),),
    ),
    StartFailure(
        "configuration-deadline",
        {"hang": {"hook": "OnConfigurationChange"}},
        "the start's OnConfigurationChange never answered (hook deadline 0.5 s)",
        (("hook_timeout_s", 0.5),),
    ),
    StartFailure(
        "configuration-unavailable",
        {"hook_status": {"OnConfigurationChange": "UNAVAILABLE"}},
        "the start's OnConfigurationChange failed with UNAVAILABLE",
    ),
    StartFailure(
        "activate-internal",
        {"hook_status": {"OnActivate": "INTERNAL"}},
        "OnActivate failed with INTERNAL",
    ),
)


@case_each(
    "host/lifecycle/start-hook-fails/{}",
    START_FAILURES,
    requirements=["LC-8"],
    profile=Profile.HOOKS,
)
async def start_hook_fails(t: HostTarget, failure: StartFailure) -> None:
    """
    Purpose: A start whose OnConfigurationChange or OnActivate hangs or fails on transport
      ({value}) is a failed start, counted like a crash: restarted, then given up on.
    Procedure: Load such a fake with a restart limit of 2 and a short backoff; wait until the
      host gives up on it.
    Asserts: The first start ends in a `crashed` transition (not `failed`, which is for an
      AppError); a second process starts; after it, the plugin is `failed`. Without
      restarts, the `crashed` transition is checked only.
    """
    plugin = await t.load(
        failure.scenario,
        wait_active=False,
        restart_limit=2,
        **BACKOFF,
        **dict(failure.policy),
    )
    status = await plugin.wait_given_up(timeout_s=30.0)
    states = [tr.new_state for tr in status.transitions]
    expect(
        "active" not in states,
        f"the host activated a plugin whose {failure.what} (LC-8)\n{describe_status(status)}",
    )
    first_end = next((s for s in states if s in ("crashed", "failed")), None)
    expect(
        first_end == "crashed",
        f"the start where {failure.what} ended {first_end!r}; it is a failed start, a "
        f"`crashed` transition counted towards the restart limit (LC-8, SV-10)\n"
        f"{describe_status(status)}",
    )
    if not t.supports(Capability.RESTARTS):
        return
    pids = plugin.pids()
    check(
        len(pids) == 2 and states[-1] == "failed",
        f"with a restart limit of 2, the host started {len(pids)} process(es) and the plugin "
        f"ended {states[-1]!r}; expected 2 processes then `failed` (LC-8, SV-10)\n"
        f"{describe_status(status)}",
    )
