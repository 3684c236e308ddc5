"""What the HostAPI and broker cases do alike: fakes that call HostAPI, and their outcomes."""

from __future__ import annotations

import json
from typing import Any

from pluginconf.fake.scenario.spec import ScenarioSpec
from pluginconf.runner import fail
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.fake_plugin import FakePlugin
from pluginconf.runner.host.target import HostTarget

from .._helpers import command_answer

MAX_KEY = 256

# A fake that answers `hostapi [...]` commands with the outcome of each HostAPI operation.
COMMANDS: ScenarioSpec = {"host_api": {"commands": True}}


def require_host_api(t: HostTarget, needed_for: str = "") -> None:
    t.require(Capability.HOST_API, needed_for)


async def run_ops(
    plugin: FakePlugin, ops: list[dict[str, Any]], requirement: str | tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Have the fake call HostAPI during an ExecuteCommand; each operation's outcome."""
    outcome = await plugin.command("hostapi " + json.dumps(ops))
    answer = command_answer(outcome, plugin)
    try:
        results: list[dict[str, Any]] = json.loads(answer.text)
    except ValueError:
        fail(f"the fake's answer was not its HostAPI outcomes: {answer.text[:300]!r}")
    return results


def shown(result: dict[str, Any]) -> str:
    brief = {k: v for k, v in result.items() if k not in ("value_sha256",)}
    text = json.dumps(brief, ensure_ascii=False)
    return text if len(text) <= 400 else text[:397] + "..."


def call_ok(result: dict[str, Any], what: str, requirement: str | tuple[str, ...]) -> None:
    """The call itself succeeded (an OK status), whatever it answered."""
    if result.get("status") != "OK":
        fail(
            f"{what}: the HostAPI call failed: {result.get('status')} (expected an OK "
            f"response)\n{shown(result)}",
            requirement=requirement,
        )


def app_error(result: dict[str, Any]) -> dict[str, str] | None:
    error: dict[str, str] | None = result.get("error")
    return error


def hook_results(plugin: FakePlugin, hook: str, pid: int | None = None) -> list[dict[str, Any]]:
    """The outcomes of the HostAPI calls the fake made during ``hook``, in order."""
    return [e.get("result") for e in plugin.events("host_api", pid) if e.get("hook") == hook]
