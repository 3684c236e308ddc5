"""Dispatch: Implemented first, unimplemented hooks never called, activation's order and errors."""

from __future__ import annotations

import time

from pluginconf.runner import Profile, case, check, expect, fail
from pluginconf.runner.host.fake_plugin import FakePlugin, describe_status
from pluginconf.runner.host.observer import Observed, received
from pluginconf.runner.host.target import HostTarget
from pluginconf.v1 import hooks_pb2

from .._helpers import NON_BMP, command_answer, expect_error_kind, make_post
from ._helpers import AWKWARD, call_end_of, configuration_of

HEALTH_ANSWERS = ("SERVING",)


def _hooks_called(plugin: FakePlugin, pid: int | None = None) -> list[str]:
    return [str(c.get("hook")) for c in plugin.calls(pid=pid)]


@case("host/dispatch/implemented-first", requirements=["HK-1", "HL-6"], profile=Profile.HOOKS)
async def implemented_first(t: HostTarget) -> None:
    """
    Purpose: The host learns what a process implements before anything else, once per process.
    Procedure: Load a well-behaved fake and wait until it is active; fire ExecuteCommand;
      disable it and enable it again, so that a second process starts; once that one is
      active, fire ExecuteCommand again.
    Asserts: For each of the two processes, Implemented is its first Hooks call and is called
      exactly once (HK-1), and the fake had answered a health check with SERVING before it
      (HL-6: Mattermost calls Implemented without a health check).
    """
    plugin = await t.load()
    command_answer(await plugin.command("/first"), plugin)
    await plugin.disable()
    await plugin.enable()
    await plugin.wait_active()
    command_answer(await plugin.command("/second"), plugin)
    pids = plugin.pids()
    expect(
        len(pids) == 2,
        f"expected two processes (before and after disabling), saw {len(pids)}\n"
        f"{plugin.evidence()}",
    )
    out_of_order, unready = [], []
    for pid in pids:
        hooks = _hooks_called(plugin, pid)
        if hooks.count("Implemented") != 1:
            out_of_order.append(f"process {pid} got Implemented {hooks.count('Implemented')} times")
        if not hooks or hooks[0] != "Implemented":
            out_of_order.append(f"process {pid}'s Hooks calls in order: {hooks}")
        calls = plugin.calls(pid=pid)
        if not calls:
            continue
        serving = [
            e
            for e in plugin.events("health_answer", pid)
            if e.get("answer") in HEALTH_ANSWERS and e.seq < calls[0].seq
        ]
        if not serving:
            unready.append(
                f"process {pid} got {calls[0].get('hook')} before it had answered any health "
                "check with SERVING"
            )
    evidence = f"\n{plugin.evidence()}"
    if not check(
        not out_of_order,
        "Implemented must be the first Hooks call of each plugin process, made once (HK-1):"
        "\n  " + "\n  ".join(out_of_order) + evidence,
        requirement="HK-1",
    ):
        evidence = ""  # told once
    check(
        not unready,
        "Implemented before SERVING: the host must receive SERVING before its first hook call "
        "to a process (HL-6):\n  " + "\n  ".join(unready) + evidence,
        requirement="HL-6",
    )


@case(
    "host/dispatch/unimplemented-never-called",
    requirements=["HK-5", "RR-3"],
    profile=Profile.HOOKS,
)
async def unimplemented_never_called(t: HostTarget) -> None:
    """
    Purpose: A hook the process did not list in Implemented is never sent to it; the caller
      learns that the plugin does not implement it.
    Procedure: Load a fake implementing only OnActivate; fire ExecuteCommand on it, notify a
      post (MessageHasBeenPosted) and filter a post (MessageWillBePosted).
    Asserts: The fake receives no Hooks call but Implemented and OnActivate; ExecuteCommand
      returns an error of kind not_implemented; the filtered post leaves the chain unchanged.
    """
    plugin = await t.load({"hooks": ["OnActivate"]})
    outcome = await plugin.command("/not-listed")
    post = make_post(f"not listed {NON_BMP}")
    await t.notify_post(post)
    filtered = await t.filter_post(post)
    unexpected = [h for h in _hooks_called(plugin) if h not in ("Implemented", "OnActivate")]
    expect(
        not unexpected,
        f"the plugin lists only ['OnActivate'] in Implemented, but the host called it with "
        f"{unexpected} (HK-5: a hook not listed is never called)\n{plugin.evidence()}",
    )
    expect_error_kind(outcome, "not_implemented", plugin, "RR-3")
    expect(
        filtered.post == post and not filtered.rejected,
        f"with no plugin filtering, the post changed from {post} to {filtered.post} "
        f"(rejected: {filtered.rejected})\n{plugin.evidence()}",
    )


@case(
    "host/dispatch/activation-order",
    requirements=["LC-1", "LC-2", "LC-6"],
    profile=Profile.HOOKS,
)
async def activation_order(t: HostTarget) -> None:
    """
    Purpose: A new process is given its whole configuration, then activated under its id,
      before anything else reaches it.
    Procedure: Load a fake whose hooks each take 200 ms, with a configuration holding text
      outside the BMP, a combining accent, a line separator and an empty value; from its
      enabling until the host reports it active, fire ExecuteCommand again and again; then
      fire ExecuteCommand once more.
    Asserts: The process's Hooks calls begin Implemented, OnConfigurationChange, OnActivate,
      each once, each after the previous one ended (LC-1); OnConfigurationChange carries
      exactly the manifest's configuration (LC-1); no command fired while it was starting
      reaches it before OnActivate was answered, nor does the last (LC-2);
      OnActivate's plugin_id is the plugin's id (LC-6).
    """
    configuration = {
        "greeting": f"hello {NON_BMP}",
        f"key-{NON_BMP}": "e\u0301",
        "empty": "",
        "spaced": AWKWARD,
    }
    plugin = await t.load({"hook_delay_ms": 200}, configuration=configuration, enable=False)
    await plugin.enable()
    t.step("firing ExecuteCommand while the plugin starts")
    deadline = time.monotonic() + 30.0  # a deadlock guard: the start takes about 0.4 s
    while (await plugin.status()).state != "active" and time.monotonic() < deadline:
        await plugin.command("/while-starting", timeout_s=10.0)
    command_answer(await plugin.command("/after-activation"), plugin)
    hooks = _hooks_called(plugin)
    start = ["Implemented", "OnConfigurationChange", "OnActivate"]
    expected = [*start, "ExecuteCommand"]
    calls = plugin.calls()
    fired = [c for c in calls if received_command(c) == "/while-starting"]
    # One fired just before the host reported `active` may rightly arrive after OnActivate
    # was answered: only those that arrived before that broke LC-2.
    activations = [c for c in calls if c.get("hook") == "OnActivate"]
    answered = call_end_of(plugin, activations[0]) if activations else None
    early = [c for c in fired if answered is None or c.seq < answered.seq]
    check(
        not early,
        f"{len(early)} ExecuteCommand call(s) fired while the plugin was starting reached it "
        f"before OnActivate was answered; the host must not call a hook before the activation "
        f"succeeded (LC-2); its Hooks calls were {hooks}\n{plugin.evidence()}",
        requirement="LC-2",
    )
    calls = [c for c in calls if c not in fired]
    hooks = [str(c.get("hook")) for c in calls]
    expect(
        hooks == expected,
        f"the process's Hooks calls were {hooks} (besides the commands fired while it "
        f"started); expected {expected}: Implemented, then OnConfigurationChange and "
        f"OnActivate once each, before any other hook (LC-1)\n{plugin.evidence()}",
        requirement="LC-1",
    )
    implemented, change, activate, command = calls
    got = configuration_of(change)
    check(
        got == configuration,
        f"OnConfigurationChange carried {got!r}; the manifest's configuration is "
        f"{configuration!r} (LC-1, complete and exact)\n{plugin.evidence()}",
        requirement="LC-1",
    )
    for before, after in ((implemented, change), (change, activate), (activate, command)):
        end = call_end_of(plugin, before)
        rule, why = (
            ("LC-2", "nothing before activation succeeded")
            if after is command
            else ("LC-1", "in that order")
        )
        check(
            end is not None and end.seq < after.seq,
            f"{after.get('hook')} arrived before {before.get('hook')} had been answered "
            f"({rule}: {why})\n{plugin.evidence()}",
            requirement=rule,
        )
    plugin_id = received(activate, hooks_pb2.OnActivateRequest).plugin_id
    check(
        plugin_id == plugin.plugin_id,
        f"OnActivate's plugin_id is {plugin_id!r}, expected {plugin.plugin_id!r}, the id under "
        f"which the host knows the plugin (LC-6)\n{plugin.evidence()}",
        requirement="LC-6",
    )


def received_command(call: Observed) -> str | None:
    """The command of an ExecuteCommand call a fake recorded; None for other hooks."""
    if call.get("hook") != "ExecuteCommand":
        return None
    return str(received(call, hooks_pb2.ExecuteCommandRequest).command)


@case("host/dispatch/activation-error", requirements=["LC-7"], profile=Profile.HOOKS)
async def activation_error(t: HostTarget) -> None:
    """
    Purpose: A plugin that refuses activation is stopped and given up on, not retried.
    Procedure: Load a fake whose OnActivate answers an AppError (code license_missing, a
      message with text outside the BMP), with a restart backoff of at most 100 ms; wait for
      it to be failed, then watch for one more second.
    Asserts: The plugin enters failed with the code and message in the transition's reason;
      no second process starts; the process was never sent OnDeactivate, was sent Shutdown,
      and is gone; the plugin is still failed at the end.
    """
    code, message = "license_missing", f"no licence key configured {NON_BMP}"
    plugin = await t.load(
        {"activation_error": {"code": code, "message": message}},
        wait_active=False,
        backoff_base_s=0.05,
        backoff_max_s=0.1,
        stop_grace_s=1.0,
    )
    status = await plugin.wait_state("failed", "active")
    failed = next((tr for tr in status.transitions if tr.new_state == "failed"), None)
    if failed is None:
        fail(
            f"OnActivate answered an AppError, yet the plugin became active (LC-7: it must be "
            f"kept inactive and failed)\n{describe_status(status)}\n{plugin.evidence()}"
        )
    expect(
        code in failed.reason and message in failed.reason,
        f"the failed transition's reason {failed.reason!r} does not hold the AppError's code "
        f"{code!r} and message {message!r} (LC-7)\n{describe_status(status)}",
    )
    # A bounded look for a restart that must not come.
    started = await t.observer.wait_count(
        lambda e: e.label == plugin.plugin_id and e.event == "started", 2, 1.0
    )
    now = await plugin.status()
    expect(
        len(started) == 1 and now.state == "failed",
        f"after OnActivate's AppError the host must not restart the plugin (LC-7); "
        f"{len(started)} processes started and it is now {now.state}\n"
        f"{describe_status(now)}\n{plugin.evidence()}",
    )
    expect(
        not plugin.calls("OnDeactivate"),
        f"the host sent OnDeactivate to a process whose activation failed (LC-7)\n"
        f"{plugin.evidence()}",
    )
    left = await t.wait_gone(plugin.pids(), timeout_s=8.0)
    expect(
        not left,
        f"the process of the plugin whose activation failed still runs 8 s after (pid "
        f"{left}); LC-7 stops it as in SV-14\n{describe_status(now)}\n{plugin.evidence()}",
    )
    expect(
        plugin.events("shutdown_requested"),
        "the host stopped the process without calling GRPCController.Shutdown (LC-7: stop "
        f"it as in SV-14, which begins with Shutdown when OnDeactivate is skipped)\n"
        f"{plugin.evidence()}",
    )
