"""Configuration with states interleaved (LC-1, LC-3, LC-5): a change before a restart
reaches the restarted process, and a change the active plugin refuses keeps it active with
the new configuration."""

from __future__ import annotations

from pluginconf.fake.scenario.spec import AppErrorSection, ScenarioSpec
from pluginconf.runner import Profile, case, check, expect
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.fake_plugin import FakePlugin, describe_error, describe_status
from pluginconf.runner.host.observer import received
from pluginconf.runner.host.target import HostTarget
from pluginconf.v1 import hooks_pb2

from .._helpers import command_answer

FIRST = {"mode": "first"}
NEWEST = {"mode": "newest", "extra": "🧩"}
REFUSED: AppErrorSection = {"code": "bad_value", "message": "mode must be first"}


async def _restarted_with(p: FakePlugin, why: str) -> dict[str, str]:
    """Kill the plugin's process; the configuration its next process is started with."""
    old = p.kill()
    new = (await p.wait_started(2, timeout_s=15.0))[1]
    expect(new != old, f"the 'new' process has the killed pid {old}\n{p.evidence()}")
    call = await p.wait_event(
        "call",
        where=lambda e: e.pid == new and e.get("hook") == "OnConfigurationChange",
        timeout_s=15.0,
        why=why,
    )
    return dict(received(call, hooks_pb2.OnConfigurationChangeRequest).configuration)


@case(
    "host/dispatch/configuration-before-restart",
    requirements=["LC-1", "LC-3"],
    profile=Profile.HOOKS,
)
async def configuration_before_restart(t: HostTarget) -> None:
    """
    Purpose: A process restarted after a configuration change gets the newest configuration.
    Procedure: Load a fake with configuration {mode: first}; change it to {mode: newest,
      extra: 🧩}; SIGKILL the process and wait for the new one's OnConfigurationChange.
    Asserts: The change reached the running process; the new process's OnConfigurationChange
      carries the newest configuration, complete (LC-1).
    """
    t.require(Capability.RESTARTS)
    p = await t.load({}, configuration=FIRST, backoff_base_s=0.05, backoff_max_s=0.1)
    outcome = await p.configure(NEWEST)
    expect(
        not outcome.HasField("error"),
        f"the change was refused: {describe_error(outcome.error)}\n{p.evidence()}",
    )
    sent = await _restarted_with(p, "the restarted process must get its configuration (LC-1)")
    expect(
        sent == NEWEST,
        f"the restarted process got the configuration {sent!r}; the newest is {NEWEST!r}, "
        f"given before the restart (LC-1: the complete current configuration on every "
        f"start)\n{p.evidence()}",
        requirement="LC-1",
    )


@case(
    "host/dispatch/configuration-error-active",
    requirements=["LC-5"],
    profile=Profile.HOOKS,
)
async def configuration_error_active(t: HostTarget) -> None:
    """
    Purpose: A configuration change that the active plugin refuses with an AppError keeps it
      active, with the new configuration.
    Procedure: Load a fake with {mode: first} whose OnConfigurationChange answers an AppError
      from its second call on; change the configuration to {mode: newest, extra: 🧩}; fire a
      command; SIGKILL the process and wait for the new one's OnConfigurationChange.
    Asserts: The host reports the change's AppError (code and message); the plugin stays
      active (no transition) and answers the command; the restarted process is started with
      the new configuration.
    """
    t.require(Capability.RESTARTS)
    scenario: ScenarioSpec = {"configuration_error_from_call": {"call": 2, **REFUSED}}
    p = await t.load(scenario, configuration=FIRST, backoff_base_s=0.05, backoff_max_s=0.1)
    before = await p.status()
    outcome = await p.configure(NEWEST)
    reported = describe_error(outcome.error) if outcome.HasField("error") else "no error"
    check(
        outcome.HasField("error")
        and outcome.error.kind == "app_error"
        and outcome.error.code == REFUSED["code"],
        f"the host reported {reported} for a change the plugin refused with {REFUSED} (LC-5)",
    )
    after = await p.status()
    expect(
        after.state == "active" and len(after.transitions) == len(before.transitions),
        f"after the plugin refused a configuration change, the host reports it "
        f"{after.state}; it must stay active (LC-5)\n{describe_status(after)}",
    )
    command_answer(await p.command("/still-active", timeout_s=10), p)
    sent = await _restarted_with(p, "the restarted process must get its configuration")
    expect(
        sent == NEWEST,
        f"the restarted process got the configuration {sent!r}; the plugin stays active with "
        f"the new one, {NEWEST!r}, though it refused it (LC-5)\n{p.evidence()}",
    )
