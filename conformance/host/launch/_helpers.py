"""Helpers the launch cases share."""

from __future__ import annotations

import json
import re

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


def _forms(line: str) -> tuple[str, ...]:
    """How an error may quote ``line``: as is, as a Python repr, or as a JSON (or Go %q)
    string's inside."""
    return (line, repr(line), json.dumps(line, ensure_ascii=False)[1:-1])


def quotes(text: str, line: str) -> bool:
    """Whether ``text`` carries the whole of ``line`` (HS-27)."""
    return any(form in text for form in _forms(line))


def without_line(text: str, line: str) -> str:
    """``text`` with every quotation of ``line`` taken out."""
    for form in sorted(_forms(line), key=len, reverse=True):
        text = text.replace(form, " ")
    return text


def names(text: str, value: str) -> bool:
    """Whether ``text`` names ``value`` as a word of its own: "1" in "versions: [1]" or
    "expected 1", not in "10" or "v1.2"."""
    return re.search(rf"(?<![\w.]){re.escape(value)}(?![\w.])", text) is not None
