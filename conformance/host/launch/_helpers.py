"""Helpers the launch cases share."""

from __future__ import annotations

from pluginconf.runner import check
from pluginconf.runner.host.fake_plugin import FakePlugin
from pluginconf.runner.host.fake_start import EnvFinding, started_env
from pluginconf.runner.host.target import HostTarget

from .._helpers import kill_left


async def started_event_env(plugin: FakePlugin) -> dict[str, str]:
    event = await plugin.wait_event("started", why="the plugin process should have started")
    return started_env(event)


def check_findings(findings: list[EnvFinding], plugin: FakePlugin) -> None:
    """Each wrong variable is its own failure, naming the rule it breaks."""
    for finding in findings:
        check(
            False,
            f"plugin {plugin.plugin_id!r}, at its start: {finding.describe()}",
            requirement=finding.requirement,
        )


async def check_gone(
    t: HostTarget, plugin: FakePlugin, killed_by: str, what: str, wait_s: float = 5.0
) -> None:
    """The plugin's processes, and the other members of their process groups, are gone
    ``wait_s`` after the host gave up: the process under ``killed_by``, the others under
    HS-25 (the host terminates the whole group). What is left is killed."""
    processes = plugin.pids()
    left = await t.wait_gone(processes, timeout_s=wait_s, members=t.group_member_pids())
    running = [p for p in left if p in processes]
    check(
        not running,
        f"{what}: its process {running} still runs {wait_s:g} s after the host gave up on it; "
        f"the host must kill it ({killed_by})\n{plugin.evidence()}",
        requirement=killed_by,
    )
    others = [p for p in left if p not in processes]
    check(
        not others,
        f"{what}: processes {others} of its process group still run {wait_s:g} s after the "
        f"host gave up on it; the host must terminate the plugin's process group (HS-25)",
        requirement="HS-25",
    )
    kill_left(left)
