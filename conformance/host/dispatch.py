"""Dispatch: which hooks the host calls, in what order, with what, and what it hands back."""

from __future__ import annotations

import asyncio
import time

import grpc
from google.protobuf.message import Message

from pluginconf.control import control_pb2
from pluginconf.runner import Profile, case, check, expect, fail
from pluginconf.runner.host_capabilities import Capability
from pluginconf.runner.host_target import FakePlugin, HostTarget, describe_status
from pluginconf.runner.observer import Observed
from pluginconf.runner.timing import Yardstick, judge_time
from pluginconf.v1 import hooks_pb2

from ._helpers import (
    NON_BMP,
    command_answer,
    describe_error,
    expect_error_kind,
    make_post,
    received,
)

# Text a host might be tempted to trim, normalise or re-encode: outside the BMP, a combining
# accent (e + U+0301, not é), a line separator, a NUL, CR LF, and surrounding spaces.
AWKWARD = f"  {NON_BMP} e\u0301 \u2028\x00\r\n  "
# 1 MiB of UTF-8 (64-byte units, each ending in three 4-byte characters).
LONG = ("a" * 52 + NON_BMP) * 16384
HEALTH_ANSWERS = ("SERVING",)
# HK-11: a hook call with no answer comes back as a timeout at the hook deadline; the host's
# own steps before and after the call may add this much.
HOOK_DEADLINE_S = 0.5
DEADLINE_ALLOWANCE_S = 0.5
# NT-2: while one plugin hangs, each other plugin gets its notification within 1 s.
NOTIFY_BOUND_S = 1.0


def _hooks_called(plugin: FakePlugin, pid: int | None = None) -> list[str]:
    return [str(c.get("hook")) for c in plugin.calls(pid=pid)]


def _call_end(plugin: FakePlugin, call: Observed) -> Observed | None:
    return next(
        (
            e
            for e in plugin.events("call_end", call.pid)
            if e.get("call") == call.get("call") and e.get("hook") == call.get("hook")
        ),
        None,
    )


def _show(value: str) -> str:
    """A string for evidence: short ones whole, long ones by size and ends."""
    if len(value) <= 80:
        return repr(value)
    size = len(value.encode("utf-8", "surrogatepass"))
    return f"{value[:24]!r}...{value[-24:]!r} ({len(value)} characters, {size} bytes)"


def _differences(sent: Message, got: Message) -> list[str]:
    """Field by field, how the message a fake received differs from the one sent."""
    problems = []
    for field in sent.DESCRIPTOR.fields:
        mine, theirs = getattr(sent, field.name), getattr(got, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            mine, theirs = dict(mine), dict(theirs)
        if mine == theirs:
            continue
        if isinstance(mine, str) and isinstance(theirs, str):
            at = next(
                (i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b),
                min(len(mine), len(theirs)),
            )
            problems.append(
                f"{field.name}: sent {_show(mine)}, received {_show(theirs)} (first "
                f"difference at character {at})"
            )
        else:
            problems.append(f"{field.name}: sent {mine!r}, received {theirs!r}")
    return problems


def _configuration(event: Observed) -> dict[str, str]:
    return dict(received(event, hooks_pb2.OnConfigurationChangeRequest).configuration)


@case("host/dispatch/implemented-first", requirements=["HK-1"], profile=Profile.HOOKS)
async def implemented_first(t: HostTarget) -> None:
    """
    Purpose: The host learns what a process implements before anything else, once per process.
    Procedure: Load a well-behaved fake and wait until it is active; fire ExecuteCommand;
      disable it and enable it again, so that a second process starts; once that one is
      active, fire ExecuteCommand again.
    Asserts: For each of the two processes, Implemented is its first Hooks call and is called
      exactly once, and the fake had answered a health check with SERVING before it.
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
    problems = []
    for pid in pids:
        hooks = _hooks_called(plugin, pid)
        if hooks.count("Implemented") != 1:
            problems.append(f"process {pid} got Implemented {hooks.count('Implemented')} times")
        if not hooks or hooks[0] != "Implemented":
            problems.append(f"process {pid}'s Hooks calls in order: {hooks}")
            continue
        first = plugin.calls("Implemented", pid)[0]
        serving = [
            e
            for e in plugin.events("health_answer", pid)
            if e.get("answer") in HEALTH_ANSWERS and e.seq < first.seq
        ]
        if not serving:
            problems.append(
                f"process {pid} got Implemented before it had answered any health check "
                "with SERVING"
            )
    expect(
        not problems,
        "Implemented must be the first Hooks call of each plugin process, made once, after "
        "the start-up health check (HK-1):\n  " + "\n  ".join(problems) + f"\n{plugin.evidence()}",
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
      outside the BMP, a combining accent, a line separator and an empty value; wait until
      the host reports it active, then fire ExecuteCommand.
    Asserts: The process's Hooks calls begin Implemented, OnConfigurationChange, OnActivate,
      each once, each after the previous one ended; OnConfigurationChange carries exactly the
      manifest's configuration; OnActivate's plugin_id is the plugin's id; the command
      arrives only after OnActivate was answered.
    """
    configuration = {
        "greeting": f"hello {NON_BMP}",
        f"key-{NON_BMP}": "e\u0301",
        "empty": "",
        "spaced": AWKWARD,
    }
    plugin = await t.load({"hook_delay_ms": 200}, configuration=configuration)
    command_answer(await plugin.command("/after-activation"), plugin)
    hooks = _hooks_called(plugin)
    expected = ["Implemented", "OnConfigurationChange", "OnActivate", "ExecuteCommand"]
    expect(
        hooks == expected,
        f"the process's Hooks calls were {hooks}; expected {expected}: Implemented, then "
        "OnConfigurationChange and OnActivate once each, before any other hook (LC-1, LC-2)"
        f"\n{plugin.evidence()}",
    )
    implemented, change, activate, command = plugin.calls()
    problems = []
    got = _configuration(change)
    if got != configuration:
        problems.append(
            f"OnConfigurationChange carried {got!r}; the manifest's configuration is "
            f"{configuration!r} (LC-1, complete and exact)"
        )
    for before, after in ((implemented, change), (change, activate), (activate, command)):
        end = _call_end(plugin, before)
        if end is None or end.seq > after.seq:
            problems.append(
                f"{after.get('hook')} arrived before {before.get('hook')} had been answered "
                "(LC-1: in that order; LC-2: nothing before activation succeeded)"
            )
    plugin_id = received(activate, hooks_pb2.OnActivateRequest).plugin_id
    if plugin_id != plugin.plugin_id:
        problems.append(
            f"OnActivate's plugin_id is {plugin_id!r}, expected {plugin.plugin_id!r} (LC-6)"
        )
    expect(not problems, "\n".join(problems) + f"\n{plugin.evidence()}")


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


@case("host/dispatch/payloads-exact", requirements=["HK-14", "RR-1"], profile=Profile.HOOKS)
async def payloads_exact(t: HostTarget) -> None:
    """
    Purpose: What the application gives the host reaches the plugin byte for byte, and the
      plugin's answer comes back unchanged.
    Procedure: Load a fake whose ExecuteCommand answers a fixed text (outside the BMP, a
      combining accent, spaces, CR LF) with response_type in_channel; fire ExecuteCommand
      with awkward text, with empty strings, and with a 1 MiB command; notify and filter a
      post whose props hold keys and values outside the BMP and an empty value.
    Asserts: Each request the fake recorded equals the one fired; each command returns the
      plugin's text and response_type unchanged; the posts received equal the post sent.
    """
    text = f"  answer {NON_BMP} e\u0301\r\n  "
    plugin = await t.load({"command_response": {"text": text, "response_type": "in_channel"}})
    requests = [
        hooks_pb2.ExecuteCommandRequest(command=f"/cmd {AWKWARD}", user_id=NON_BMP, channel_id=" "),
        hooks_pb2.ExecuteCommandRequest(command="", user_id="", channel_id=""),
        hooks_pb2.ExecuteCommandRequest(command=f"/long {LONG}", user_id="u1", channel_id="c1"),
    ]
    problems = []
    for index, request in enumerate(requests):
        t.step(f"firing ExecuteCommand {index + 1} of {len(requests)}")
        answer = command_answer(await plugin.command_request(request), plugin)
        if answer.text != text or answer.response_type != "in_channel":
            problems.append(
                f"command {index + 1}: the host returned text {_show(answer.text)} and "
                f"response_type {answer.response_type!r}; the plugin answered {_show(text)} "
                "and 'in_channel' (RR-1)"
            )
    calls = plugin.calls("ExecuteCommand")
    expect(
        len(calls) == len(requests),
        f"fired {len(requests)} commands, the fake received {len(calls)}\n{plugin.evidence()}",
    )
    for index, (request, call) in enumerate(zip(requests, calls, strict=True)):
        got = received(call, hooks_pb2.ExecuteCommandRequest)
        problems += [f"command {index + 1}: {p} (HK-14)" for p in _differences(request, got)]
    post = make_post(
        f"post {AWKWARD}",
        props={NON_BMP: f"value {NON_BMP}", "empty": "", "accent": "e\u0301"},
        create_at=1767000000123,
    )
    t.step("notifying and filtering a post")
    await t.notify_post(post)
    filtered = await t.filter_post(post)
    for hook, request_type in (
        ("MessageHasBeenPosted", hooks_pb2.MessageHasBeenPostedRequest),
        ("MessageWillBePosted", hooks_pb2.MessageWillBePostedRequest),
    ):
        hook_calls = plugin.calls(hook)
        if len(hook_calls) != 1:
            problems.append(f"{hook}: the fake received {len(hook_calls)} calls, expected 1")
            continue
        got_post = received(hook_calls[0], request_type).post
        problems += [f"{hook}: post {p} (HK-14)" for p in _differences(post, got_post)]
    if filtered.post != post:
        problems += [
            f"the post leaving the chain (the plugin kept it): {p}"
            for p in _differences(post, filtered.post)
        ]
    expect(not problems, "\n".join(problems) + f"\n{plugin.evidence()}")


@case(
    "host/dispatch/app-error",
    requirements=["RR-2", "HK-9", "SV-11"],
    profile=Profile.HOOKS,
)
async def app_error(t: HostTarget) -> None:
    """
    Purpose: A plugin's application error reaches the caller as such, with its code and
      message, and is not mistaken for a failure of the plugin.
    Procedure: Load a fake whose ExecuteCommand answers an AppError (code quota_exceeded, a
      message with text outside the BMP) and fire ExecuteCommand four times (one more than
      the circuit breaker's threshold of 3).
    Asserts: Every outcome is an error of kind app_error with exactly the plugin's code and
      message (none is circuit_open: an AppError resets the failure count); the fake
      received all four calls and the plugin is still active with one process.
    """
    code, message = "quota_exceeded", f"over quota {NON_BMP}: 3 of 2"
    plugin = await t.load(
        {"hook_errors": {"ExecuteCommand": {"code": code, "message": message}}},
        breaker_threshold=3,
    )
    for attempt in range(1, 5):
        t.step(f"firing ExecuteCommand {attempt} of 4")
        error = expect_error_kind(
            await plugin.command(f"/quota {attempt}"), "app_error", plugin, "RR-2, HK-9, SV-11"
        )
        expect(
            error.code == code and error.message == message,
            f"call {attempt}: the host returned {describe_error(error)}; the plugin's AppError "
            f"has code {code!r} and message {message!r} (RR-2: the same code and message)\n"
            f"{plugin.evidence()}",
        )
    calls = plugin.calls("ExecuteCommand")
    status = await plugin.status()
    expect(
        len(calls) == 4 and status.state == "active" and len(plugin.pids()) == 1,
        f"after four AppErrors the fake received {len(calls)} of the 4 calls and the plugin "
        f"is {status.state} with {len(plugin.pids())} process(es); an AppError is an answer, "
        f"not a failure (HK-9, SV-11)\n{describe_status(status)}\n{plugin.evidence()}",
    )


@case("host/dispatch/hook-deadline", requirements=["HK-11", "RR-3"], profile=Profile.HOOKS)
async def hook_deadline(t: HostTarget) -> None:
    """
    Purpose: A hook call that gets no answer ends at the hook deadline, as a timeout, and the
      plugin is told the call is over.
    Procedure: Load a fake whose ExecuteCommand never answers, with a hook deadline of 0.5 s;
      fire ExecuteCommand and time it. A late timeout is timed again, against the same-run
      yardstick of a call.
    Asserts: The outcome is an error of kind timeout (RR-3), returned no sooner than 0.45 s
      and within 0.5 s of the deadline (HK-11); the fake's call ended as cancelled (its gRPC
      deadline expired, or the host cancelled it) no sooner than 0.4 s after its arrival.
    """
    plugin = await t.load({"hang": {"hook": "ExecuteCommand"}}, hook_timeout_s=HOOK_DEADLINE_S)
    outcome, elapsed = await _time_out(plugin)
    expect_error_kind(outcome, "timeout", plugin, "HK-11, RR-3")
    check(
        elapsed >= HOOK_DEADLINE_S - 0.05,
        f"the timeout came {elapsed:.3f}s after firing, before the hook deadline of "
        f"{HOOK_DEADLINE_S}s (HK-11)\n{plugin.evidence()}",
        requirement="HK-11",
    )
    calls = plugin.calls("ExecuteCommand")
    expect(calls, f"the fake never received the ExecuteCommand call\n{plugin.evidence()}")
    call = calls[0]
    end = await plugin.wait_event(
        "call_end",
        timeout_s=5.0,
        where=lambda e: e.get("call") == call.get("call"),
        why="the hung call must end at its gRPC deadline (HK-11), so the plugin sees it end",
    )
    lasted = end.monotonic - call.monotonic
    check(
        end.get("outcome") == "cancelled" and lasted >= HOOK_DEADLINE_S - 0.1,
        f"the plugin saw the call end {lasted:.3f}s after it arrived, as "
        f"{end.get('outcome')!r}; expected it cancelled at the hook deadline of "
        f"{HOOK_DEADLINE_S}s given to the call (HK-11)\n{plugin.evidence()}",
        requirement="HK-11",
    )

    async def again() -> float | None:
        return (await _time_out(plugin))[1] - HOOK_DEADLINE_S

    verdict = await judge_time(
        DEADLINE_ALLOWANCE_S,
        again,
        Yardstick.CALL,
        f"how long after the hook deadline of {HOOK_DEADLINE_S}s the timeout came back",
        seen=[elapsed - HOOK_DEADLINE_S],
    )
    check(verdict.met, f"{verdict.evidence()} (HK-11)", requirement="HK-11")


async def _time_out(plugin: FakePlugin) -> tuple[control_pb2.CommandOutcome, float]:
    """A command the fake never answers: the host's outcome, and when it came."""
    fired = time.monotonic()
    try:
        outcome = await plugin.command("/hang", timeout_s=HOOK_DEADLINE_S + 30.0)
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
        fail(
            f"the host returned nothing within {HOOK_DEADLINE_S + 30.0:g}s of firing a command "
            f"that never gets an answer; with a hook deadline of {HOOK_DEADLINE_S}s it must "
            f"return a timeout error after about {HOOK_DEADLINE_S}s (HK-11)\n{plugin.evidence()}",
            requirement="HK-11",
        )
    return outcome, time.monotonic() - fired


@case("host/dispatch/configuration-change", requirements=["LC-3"], profile=Profile.HOOKS)
async def configuration_change(t: HostTarget) -> None:
    """
    Purpose: Configuration changes reach an active plugin whole, one at a time, in order.
    Procedure: Load a fake whose hooks each take 200 ms; change its configuration, and while
      that OnConfigurationChange is in progress at the fake, change it again.
    Asserts: The fake receives two more OnConfigurationChange calls, the first with exactly
      the first new configuration and the second with exactly the second (keys dropped are
      gone); the second arrives only after the first was answered; neither change fails.
    """
    initial = {"a": "1", "dropped": "x"}
    first = {"a": "2", "new": f"value {NON_BMP}", "empty": ""}
    second = {"a": "3"}
    plugin = await t.load({"hook_delay_ms": 200}, configuration=initial)

    def changes() -> list[Observed]:
        return plugin.calls("OnConfigurationChange")

    first_change = asyncio.ensure_future(plugin.configure(first))
    try:
        await t.observer.wait_count(
            lambda e: (
                e.label == plugin.plugin_id
                and e.event == "call"
                and e.get("hook") == "OnConfigurationChange"
            ),
            2,
            10.0,
        )
        second_outcome = await plugin.configure(second)
        first_outcome = await first_change
    finally:
        first_change.cancel()
    for outcome, which in ((first_outcome, "first"), (second_outcome, "second")):
        expect(
            not outcome.HasField("error"),
            f"the {which} change failed: {describe_error(outcome.error)}\n{plugin.evidence()}",
        )
    calls = changes()
    expect(
        len(calls) == 3,
        f"expected 3 OnConfigurationChange calls (activation and two changes), the fake "
        f"received {len(calls)} (LC-3)\n{plugin.evidence()}",
    )
    problems = []
    for call, wanted, which in ((calls[1], first, "first"), (calls[2], second, "second")):
        got = _configuration(call)
        if got != wanted:
            problems.append(f"the {which} change arrived as {got!r}, expected {wanted!r}")
    end = _call_end(plugin, calls[1])
    if end is None or end.seq > calls[2].seq:
        problems.append(
            "the second OnConfigurationChange arrived while the first was still in progress "
            "(never concurrent for one plugin)"
        )
    expect(not problems, "LC-3:\n" + "\n".join(problems) + f"\n{plugin.evidence()}")


@case("host/dispatch/isolation", requirements=["SV-20"], profile=Profile.HOOKS)
async def isolation(t: HostTarget) -> None:
    """
    Purpose: One plugin crashing over and over does not disturb another.
    Procedure: Load a fake that crashes on every ExecuteCommand (restarting after at most
      100 ms) and a well-behaved one; twice, fire a command at both at once, fire another at
      the well-behaved one while the other restarts, and wait for the crashing one to be
      active again (once, without waiting, for a host without restarts).
    Asserts: Every command to the well-behaved plugin returns its answer; it stays active
      throughout (no transition after active) with one process.
    """
    crashing = await t.load(
        {"crash": {"on": "ExecuteCommand"}},
        name="crashing",
        backoff_base_s=0.05,
        backoff_max_s=0.1,
        restart_limit=20,
        enable=False,
    )
    steady = await t.load(name="steady", enable=False)
    for plugin in (crashing, steady):
        await plugin.enable()
    await asyncio.gather(crashing.wait_active(), steady.wait_active())
    answers = []
    # A host without restarts leaves the crashed plugin crashed: one round then.
    restarts = t.supports(Capability.RESTARTS)
    for round_ in range(1, 3 if restarts else 2):
        before = len((await crashing.status()).transitions)
        t.step(f"round {round_}: firing at both plugins")
        _, steady_outcome = await asyncio.gather(
            crashing.command(f"/crash {round_}"), steady.command(f"/steady {round_}")
        )
        answers.append((f"/steady {round_}", steady_outcome))
        answers.append((f"/steady {round_} again", await steady.command(f"/steady {round_} again")))
        if restarts:
            await crashing.wait_state("active", after=before + 1)
        else:
            await crashing.wait_state("crashed", "failed", after=before)
    for command, outcome in answers:
        if outcome.WhichOneof("result") != "response" or outcome.response.text != command:
            shown = (
                describe_error(outcome.error)
                if outcome.HasField("error")
                else repr(outcome.response.text)
            )
            fail(
                f"while another plugin crashed, the command {command!r} to {steady.plugin_id!r} "
                f"returned {shown} (SV-20: no effect on other plugins)\n{steady.evidence()}"
            )
    status = await steady.status()
    states = [tr.new_state for tr in status.transitions]
    expect(
        status.state == "active" and states == ["starting", "active"] and len(steady.pids()) == 1,
        f"while another plugin crashed, {steady.plugin_id!r} went through {states} with "
        f"{len(steady.pids())} process(es) (SV-20: its state must not change)\n"
        f"{describe_status(status)}\n{steady.evidence()}",
    )
    expect(
        len(crashing.pids()) >= (3 if restarts else 1),
        f"the crashing plugin was expected to crash and restart twice\n{crashing.evidence()}",
    )


@case("host/dispatch/fan-out", requirements=["NT-1", "NT-2", "NT-3", "NT-4"], profile=Profile.HOOKS)
async def fan_out(t: HostTarget) -> None:
    """
    Purpose: A notification reaches every plugin at once, one hanging plugin holding up no
      other, and a failure is reported, not retried.
    Procedure: Load, in this order, a fake whose MessageHasBeenPosted never answers (hook
      deadline 1.5 s) and two well-behaved fakes; notify a post, noting the time of firing;
      after the outcome, watch for half a second more. A late time is measured again, by
      notifying again, against the same-run yardstick of a call.
    Asserts: Each well-behaved fake received the post exactly as sent, once (NT-1), within
      1 s of the firing (NT-2); the hanging one was called once and never again (NT-1, NT-4);
      the outcome reports an error for the hanging plugin and none for the others (NT-4), and
      came within 0.5 s of the 1.5 s deadline (NT-3).
    """
    deadline = 1.5
    hung = await t.load(
        {"hang": {"hook": "MessageHasBeenPosted"}},
        name="hung",
        hook_timeout_s=deadline,
        enable=False,
    )
    others = [await t.load(name=n, enable=False) for n in ("first", "second")]
    for plugin in (hung, *others):
        await plugin.enable()
    await asyncio.gather(*(p.wait_active() for p in (hung, *others)))
    post = make_post(f"fan-out {NON_BMP}", props={"k": "v", "empty": ""})
    evidence = "".join(f"\n{p.evidence()}" for p in (hung, *others))
    outcome, took, delay = await _notify_once(t, post, deadline, others)
    for plugin in others:
        calls = plugin.calls("MessageHasBeenPosted")
        check(
            len(calls) == 1,
            f"{plugin.plugin_id!r} received MessageHasBeenPosted {len(calls)} times, expected "
            f"once (NT-1){evidence}",
            requirement="NT-1",
        )
        if calls:
            got = received(calls[0], hooks_pb2.MessageHasBeenPostedRequest).post
            check(
                got == post,
                f"{plugin.plugin_id!r} received {got}, expected {post} (NT-1)",
                requirement="NT-1",
            )
    results = {r.plugin_id: r for r in outcome.results}
    hung_result = results.get(hung.plugin_id)
    check(
        hung_result is not None and hung_result.HasField("error"),
        f"the outcome reports no error for the hanging plugin {hung.plugin_id!r} "
        f"(results: {list(outcome.results)}) (NT-4: a failure is logged and reported)",
        requirement="NT-4",
    )
    for plugin in others:
        result = results.get(plugin.plugin_id)
        check(
            result is None or not result.HasField("error"),
            f"the outcome reports {describe_error(result.error) if result else ''} for "
            f"{plugin.plugin_id!r}, which answered (NT-4: no effect on other plugins)",
            requirement="NT-4",
        )
    retried = await t.observer.wait_count(
        lambda e: (
            e.label == hung.plugin_id
            and e.event == "call"
            and e.get("hook") == "MessageHasBeenPosted"
        ),
        2,
        0.5,
    )
    check(
        len(retried) == 1,
        f"the hanging plugin received MessageHasBeenPosted {len(retried)} times, expected "
        "exactly once: every active plugin is called (NT-1) and a failure is not retried "
        f"(NT-4){evidence}",
        requirement=["NT-1", "NT-4"],
    )
    measured: list[tuple[float, float | None]] = []

    async def again() -> float | None:
        measured.append((await _notify_once(t, post, deadline, others))[1:])
        return measured[-1][1]

    concurrent = await judge_time(
        NOTIFY_BOUND_S,
        again,
        Yardstick.CALL,
        "the latest notification of a plugin while another hung",
        seen=[delay],
    )
    check(
        concurrent.met,
        f"{concurrent.evidence()} (NT-2: concurrently){evidence}",
        requirement="NT-2",
    )

    async def again_took() -> float | None:
        return (await _notify_once(t, post, deadline, others))[1] - deadline

    waited = await judge_time(
        DEADLINE_ALLOWANCE_S,
        again_took,
        Yardstick.CALL,
        f"how long after the hook deadline of {deadline}s notifying the post returned",
        seen=[took - deadline, *(m[0] - deadline for m in measured)],
    )
    check(waited.met, f"{waited.evidence()} (NT-3){evidence}", requirement="NT-3")


async def _notify_once(
    t: HostTarget, post: hooks_pb2.Post, deadline: float, others: list[FakePlugin]
) -> tuple[control_pb2.NotifyOutcome, float, float | None]:
    """Notify ``post``: the outcome, how long the host took, and how long after the firing
    the latest of ``others`` received it (None: one did not within the call)."""
    counts = {p.plugin_id: len(p.calls("MessageHasBeenPosted")) for p in others}
    fired = time.monotonic()
    try:
        outcome = await t.notify_post(post, timeout_s=deadline + 30.0)
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
        fail(
            f"notifying a post took more than {deadline + 30.0:g}s while one plugin hung with "
            f"a hook deadline of {deadline}s (NT-3)",
            requirement="NT-3",
        )
    took = time.monotonic() - fired
    delays: list[float] = []
    for plugin in others:
        new = plugin.calls("MessageHasBeenPosted")[counts[plugin.plugin_id] :]
        if not new:
            return outcome, took, None
        delays.append(new[0].monotonic - fired)
    return outcome, took, max(delays)


@case(
    "host/dispatch/configuration-error",
    requirements=["LC-4"],
    profile=Profile.HOOKS,
    timeout_s=45,
)
async def configuration_error(t: HostTarget) -> None:
    """
    Purpose: A plugin that refuses its configuration is not activated, and the operator
      learns why.
    Procedure: Load a fake whose OnConfigurationChange answers an AppError (restart limit 3);
      wait for the host to settle.
    Asserts: The plugin is `failed`, its last error holds the code and message, OnActivate
      was never called, and no second process was started.
    """
    code, message = "bad_configuration", f"greeting is missing {NON_BMP}"
    p = await t.load(
        {"hook_errors": {"OnConfigurationChange": {"code": code, "message": message}}},
        wait_active=False,
        restart_limit=3,
    )
    status = await p.wait_state("failed", "active", timeout_s=20.0)
    expect(
        status.state == "failed",
        f"the plugin is {status.state}; a configuration AppError at start must leave it "
        f"failed (LC-4)\n{describe_status(status)}",
    )
    expect(
        code in status.last_error and message in status.last_error,
        f"the last error does not hold the plugin's code {code!r} and message {message!r} "
        f"(LC-4)\n{describe_status(status)}",
    )
    expect(
        not p.calls("OnActivate"),
        f"the host called OnActivate after the configuration was refused (LC-4)\n{p.evidence()}",
    )
    second = await t.observer.wait_count(
        lambda e: e.label == p.plugin_id and e.event == "started", 2, 1.0
    )
    expect(
        len(second) == 1,
        f"the host started the plugin again after it refused its configuration; LC-4 "
        f"allows no automatic restart\n{p.evidence()}",
    )
