"""Implemented, host side: names the host does not know, and an Implemented that fails
(HK-6, HK-7)."""

from __future__ import annotations

from pluginconf.runner import Profile, case, case_each, check, expect
from pluginconf.runner.host.fake_plugin import describe_status
from pluginconf.runner.host.target import HostTarget

from .._helpers import command_answer, crash_transition

# Names a newer plugin might list: hooks of a later protocol, as Mattermost adds hooks.
UNKNOWN_HOOKS = ["OnSharedChannelsSyncMsg", "FutureHook", "onactivate"]


@case("host/implemented/unknown-names", requirements=["HK-6"], profile=Profile.HOOKS)
async def unknown_names(t: HostTarget) -> None:
    """
    Purpose: A plugin built for a newer protocol lists hooks this host does not know; the
      host ignores those names and uses the rest.
    Procedure: Load a fake whose Implemented lists every hook plus three names that are no
      Hooks method (one is a known name in other case); fire a command.
    Asserts: The plugin becomes active, was activated (OnActivate), and answers the command.
    """
    plugin = await t.load({"implemented_extra": UNKNOWN_HOOKS}, wait_active=False)
    status = await plugin.wait_status(
        lambda s: s.state in ("active", "failed", "crashed"), "active", timeout_s=30.0
    )
    expect(
        status.state == "active",
        f"the host refused a plugin whose Implemented lists {UNKNOWN_HOOKS} besides the hooks "
        f"it knows; unknown names are ignored and the rest used (HK-6)\n"
        f"{describe_status(status)}\n{plugin.evidence()}",
    )
    check(
        bool(plugin.calls("OnActivate")),
        f"the host never called OnActivate, which the plugin lists (HK-6: use the rest)\n"
        f"{plugin.evidence()}",
    )
    command_answer(await plugin.command("/known-hook"), plugin)


@case_each(
    "host/implemented/fails/{}",
    ("unimplemented", "internal"),
    requirements=["HK-7"],
    profile=Profile.HOOKS,
)
async def implemented_fails(t: HostTarget, status_name: str) -> None:
    """
    Purpose: A plugin whose Implemented fails ({value}) is refused, not taken as implementing
      nothing.
    Procedure: Load a fake whose Implemented fails with that status (restart limit 1).
    Asserts: The plugin never becomes active; the host reports a `crashed` transition of kind
      implemented_failed; no Hooks call but Implemented reached the plugin.
    """
    plugin = await t.load(
        {"hook_status": {"Implemented": status_name.upper()}},
        wait_active=False,
        restart_limit=1,
    )
    status = await plugin.wait_status(
        lambda s: s.state == "active" or any(tr.new_state == "crashed" for tr in s.transitions),
        "refused",
        timeout_s=30.0,
    )
    crashed = crash_transition(status)
    expect(
        status.state != "active" and crashed is not None,
        f"the host took a plugin whose Implemented failed with {status_name} (HK-7: reject "
        f"it)\n{describe_status(status)}\n{plugin.evidence()}",
    )
    assert crashed is not None
    check(
        crashed.error_kind == "implemented_failed",
        f"the host reported the error kind {crashed.error_kind!r}; expected "
        f"'implemented_failed' (HK-7)\n{describe_status(status)}",
    )
    others = [str(c.get("hook")) for c in plugin.calls() if c.get("hook") != "Implemented"]
    check(
        not others,
        f"after Implemented failed the host called {others} (HK-7)\n{plugin.evidence()}",
    )
