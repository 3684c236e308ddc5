"""Dispatch: what the host passes to a hook and hands back, application errors, deadlines."""

from __future__ import annotations

import time

import grpc
from google.protobuf.message import Message

from pluginconf.control import control_pb2
from pluginconf.runner import Profile, case, check, expect, fail
from pluginconf.runner.host.fake_plugin import FakePlugin, describe_error, describe_status
from pluginconf.runner.host.observer import received
from pluginconf.runner.host.target import HostTarget
from pluginconf.runner.timing import Yardstick, judge_time
from pluginconf.v1 import hooks_pb2

from .._helpers import NON_BMP, command_answer, expect_error_kind, make_post
from ._helpers import AWKWARD, DEADLINE_ALLOWANCE_S

# 1 MiB of UTF-8 (64-byte units, each ending in three 4-byte characters).
LONG = ("a" * 52 + NON_BMP) * 16384


# HK-11: a hook call with no answer comes back as a timeout at the hook deadline; the host's
# own steps before and after the call may add this much.
HOOK_DEADLINE_S = 0.5


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
