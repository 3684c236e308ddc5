"""HostAPI: when a plugin can reach it, before activation, during activation and
deactivation, during a hook.

The fakes call HostAPI themselves (scenario key `host_api`) and report what they got back.
"""

from __future__ import annotations

from pluginconf.fake.scenario.spec import ScenarioSpec
from pluginconf.runner import Profile, case, check, expect, fail
from pluginconf.runner.host.observer import received
from pluginconf.runner.host.target import HostTarget
from pluginconf.v1 import hooks_pb2

from ._helpers import COMMANDS, call_ok, hook_results, require_host_api, shown


@case("host/hostapi/announced-before-activate", requirements=["HA-1"], profile=Profile.HOOKS)
async def announced_before_activate(t: HostTarget) -> None:
    """
    Purpose: The HostAPI id a plugin gets in OnActivate is already served and announced.
    Procedure: Load a fake that, in OnActivate, notes whether the id was announced on the
      broker stream when the call arrived, dials it and reads a key.
    Asserts: OnActivate carries a non-zero host_api_broker_id, announced before the call,
      and the read succeeds.
    """
    require_host_api(t)
    plugin = await t.load({"host_api": {"OnActivate": [{"op": "kv_get", "key": "k"}]}})
    activate = plugin.calls("OnActivate")
    expect(activate, f"no OnActivate call\n{plugin.evidence()}")
    broker_id = received(activate[0], hooks_pb2.OnActivateRequest).host_api_broker_id
    expect(
        broker_id != 0,
        "OnActivate carried host_api_broker_id 0 from a host that declares HostAPI (HA-1)\n"
        + plugin.evidence(),
    )
    dial = await plugin.wait_event("host_api_dial")
    check(
        dial.get("announced_before"),
        f"the ConnInfo for id {broker_id} had not arrived on the broker stream when "
        f"OnActivate did: the host must announce before passing the id (HA-1)\n"
        + plugin.evidence(),
    )
    results = hook_results(plugin, "OnActivate")
    expect(results, f"the fake made no HostAPI call in OnActivate\n{plugin.evidence()}")
    call_ok(results[0], "KVGet during OnActivate", "HA-1")


@case("host/hostapi/during-activate-and-deactivate", requirements=["HA-3"], profile=Profile.HOOKS)
async def during_activate_and_deactivate(t: HostTarget) -> None:
    """
    Purpose: HostAPI serves from before OnActivate until OnDeactivate has been answered.
    Procedure: Load a fake that stores a key and logs in OnActivate, and reads the key and
      its configuration in OnDeactivate; disable it.
    Asserts: Every call in both hooks succeeds, and OnDeactivate reads what OnActivate stored.
    """
    require_host_api(t)
    scenario: ScenarioSpec = {
        "host_api": {
            "OnActivate": [
                {"op": "kv_set", "key": "phase", "value": "activated"},
                {"op": "log", "level": "info", "message": "activating"},
            ],
            "OnDeactivate": [
                {"op": "kv_get", "key": "phase"},
                {"op": "get_configuration"},
            ],
        }
    }
    plugin = await t.load(scenario)
    await plugin.disable()
    for hook in ("OnActivate", "OnDeactivate"):
        results = hook_results(plugin, hook)
        expect(
            len(results) == 2,
            f"the fake made {len(results)} of 2 HostAPI calls during {hook}\n{plugin.evidence()}",
        )
        for result in results:
            call_ok(result, f"{result['op']} during {hook}", "HA-3")
    got = hook_results(plugin, "OnDeactivate")[0]
    check(
        got.get("found") and got.get("value") == "activated",
        f"KVGet during OnDeactivate did not find what OnActivate stored: {shown(got)} (HA-3)",
    )


@case("host/hostapi/during-hook", requirements=["HA-4"], profile=Profile.HOOKS)
async def during_hook(t: HostTarget) -> None:
    """
    Purpose: A hook handler may call HostAPI and wait for the answer.
    Procedure: Fire ExecuteCommand at a fake whose handler stores and reads a key through
      HostAPI before answering; the hook deadline is 10 s.
    Asserts: The command is answered, with both HostAPI calls successful.
    """
    require_host_api(t)
    plugin = await t.load(COMMANDS, hook_timeout_s=10)
    outcome = await plugin.command(
        'hostapi [{"op": "kv_set", "key": "h", "value": "v"}, {"op": "kv_get", "key": "h"}]'
    )
    if outcome.WhichOneof("result") != "response":
        fail(
            "ExecuteCommand, whose handler calls HostAPI and waits, did not complete: the "
            f"host returned {outcome.error.kind}: {outcome.error.message} (HA-4)\n"
            + plugin.evidence()
        )
    for result in hook_results(plugin, "ExecuteCommand"):
        call_ok(result, "HostAPI during ExecuteCommand", "HA-4")
