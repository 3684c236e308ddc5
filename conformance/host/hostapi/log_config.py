"""HostAPI's log and configuration, and its application errors.

The host's own log is not visible to the suite (HostControl has no call for it): HA-10 is
checked as far as a plugin sees it, every level, unspecified included, accepted.
"""

from __future__ import annotations

from typing import Any

from pluginconf.fake.scenario.spec import ScenarioSpec
from pluginconf.runner import Profile, case, check, expect
from pluginconf.runner.host.target import HostTarget
from pluginconf.units import MIB

from ._helpers import (
    COMMANDS,
    MAX_KEY,
    app_error,
    call_ok,
    hook_results,
    require_host_api,
    run_ops,
    shown,
)


@case("host/hostapi/log-levels", requirements=["HA-10", "HA-12"], profile=Profile.HOOKS)
async def log_levels(t: HostTarget) -> None:
    """
    Purpose: Log takes every level, LOG_LEVEL_UNSPECIFIED as LOG_LEVEL_INFO, with fields.
    Procedure: Through a fake, log one message at each level (unspecified, debug, info, warn,
      error), with fields. The suite cannot read the host's log; it sees what the plugin sees.
    Asserts: Every Log call is answered OK without an AppError.
    """
    require_host_api(t)
    plugin = await t.load(COMMANDS)
    levels = ("unspecified", "debug", "info", "warn", "error")
    ops = [
        {"op": "log", "level": level, "message": f"at {level}", "fields": {"k": "v", "n": "1"}}
        for level in levels
    ]
    for result in await run_ops(plugin, ops):
        call_ok(result, f"Log at level {result.get('level')}", ("HA-10", "HA-12"))
        check(
            not app_error(result),
            f"Log at level {result.get('level')} was refused: {shown(result)}; the host must "
            "record it (LOG_LEVEL_UNSPECIFIED as LOG_LEVEL_INFO) (HA-10)",
            requirement="HA-10",
        )


@case("host/hostapi/configuration", requirements=["HA-11"], profile=Profile.HOOKS)
async def configuration(t: HostTarget) -> None:
    """
    Purpose: GetConfiguration answers the configuration of the most recent
      OnConfigurationChange, from the moment the host sends it.
    Procedure: Load a fake with a configuration; read it through HostAPI; give it a new one
      (a changed, a removed and an empty value) while its OnConfigurationChange handler
      reads GetConfiguration; read it again after.
    Asserts: Each read answers the latest configuration, the read inside the handler included.
    """
    require_host_api(t)
    scenario: ScenarioSpec = {
        "host_api": {"commands": True, "OnConfigurationChange": [{"op": "get_configuration"}]}
    }
    plugin = await t.load(scenario, configuration={"a": "1", "gone": "x"})
    (first,) = await run_ops(plugin, [{"op": "get_configuration"}])
    call_ok(first, "GetConfiguration", "HA-11")
    check(
        first.get("configuration") == {"a": "1", "gone": "x"},
        f"GetConfiguration answered {first.get('configuration')} after activation with "
        "{'a': '1', 'gone': 'x'} (HA-11)",
    )
    latest = {"a": "2", "empty": ""}
    await plugin.configure(latest)
    during = [r for r in hook_results(plugin, "OnConfigurationChange") if r.get("status") == "OK"]
    expect(during, f"the fake made no HostAPI call in OnConfigurationChange\n{plugin.evidence()}")
    check(
        during[-1].get("configuration") == latest,
        f"GetConfiguration inside OnConfigurationChange answered "
        f"{during[-1].get('configuration')}, expected the configuration being sent, {latest} "
        "(HA-11)",
    )
    (after,) = await run_ops(plugin, [{"op": "get_configuration"}])
    check(
        after.get("configuration") == latest,
        f"GetConfiguration after the change answered {after.get('configuration')}, "
        f"expected {latest} (HA-11)",
    )


@case("host/hostapi/app-errors", requirements=["HA-12"], profile=Profile.HOOKS)
async def app_errors(t: HostTarget) -> None:
    """
    Purpose: Application failures travel as an AppError in an OK response.
    Procedure: Through a fake, call each key-value method with an empty key, and store a key
      over 256 bytes and a value over 1 MiB (a host may take or refuse those).
    Asserts: Every answer is an OK response; the empty-key ones carry an AppError.
    """
    require_host_api(t)
    plugin = await t.load(COMMANDS)
    ops: list[dict[str, Any]] = [
        {"op": "kv_get", "key": ""},
        {"op": "kv_set", "key": "", "value": "v"},
        {"op": "kv_delete", "key": ""},
        {"op": "kv_cas", "key": "", "new": "v"},
        {"op": "kv_set", "key": "k" * (MAX_KEY + 1), "value": "v"},
        {"op": "kv_set", "key": "huge", "value_bytes": MIB + 1},
    ]
    for index, result in enumerate(await run_ops(plugin, ops)):
        check(
            result.get("status") == "OK",
            f"{result['op']} ({'empty key' if index < 4 else 'over the limits'}) answered "
            f"the status {result.get('status')}; application failures must be an AppError "
            "in an OK response (HA-12)",
        )
        if index < 4 and result.get("status") == "OK":
            check(
                app_error(result),
                f"{result['op']} with an empty key answered no AppError: {shown(result)} (HA-12)",
            )
