"""Filters: the MessageWillBePosted chain, in order, each step seeing the last one's post."""

from __future__ import annotations

import asyncio
from typing import Final, Unpack

from google.protobuf import text_format

from pluginconf.control import control_pb2
from pluginconf.fake.scenario.spec import FilterRawSection, ScenarioSpec
from pluginconf.runner import Profile, case, case_each, check, expect
from pluginconf.runner.host.fake_plugin import FakePlugin, describe_error
from pluginconf.runner.host.manifest import PolicyFields
from pluginconf.runner.host.observer import received
from pluginconf.runner.host.target import HostTarget
from pluginconf.v1 import hooks_pb2

from .._helpers import NON_BMP, make_post

HOOK: Final = "MessageWillBePosted"


def _post(text: str = f"chain {NON_BMP}") -> hooks_pb2.Post:
    return make_post(
        text,
        id="post-filters",
        props={"kept": f"value {NON_BMP}", "empty": ""},
        create_at=1767000000123,
    )


def _with_message(post: hooks_pb2.Post, message: str) -> hooks_pb2.Post:
    changed = hooks_pb2.Post()
    changed.CopyFrom(post)
    changed.message = message
    return changed


def _modify(tag: str) -> ScenarioSpec:
    return {"filter": {"action": "modify", "append": tag}}


async def _load_chain(
    t: HostTarget, *scenarios: tuple[str, ScenarioSpec], **policy: Unpack[PolicyFields]
) -> list[FakePlugin]:
    """Load the fakes in this order (the chain's order), then start them all at once."""
    plugins = [
        await t.load(scenario, name=name, enable=False, **policy) for name, scenario in scenarios
    ]
    for plugin in plugins:
        await plugin.enable()
    await asyncio.gather(*(p.wait_active() for p in plugins))
    return plugins


def _seen(plugin: FakePlugin) -> list[hooks_pb2.Post]:
    """The posts ``plugin`` was asked to filter, in order."""
    return [received(c, hooks_pb2.MessageWillBePostedRequest).post for c in plugin.calls(HOOK)]


def _one_line(post: hooks_pb2.Post) -> str:
    return text_format.MessageToString(post, as_one_line=True, as_utf8=True)


def _describe(outcome: control_pb2.FilterOutcome) -> str:
    lines = [f"the host's outcome: post {{{_one_line(outcome.post)}}}"]
    if outcome.rejected:
        lines.append(f"rejected by {outcome.rejected_by!r}, reason {outcome.rejection_reason!r}")
    for step in outcome.steps:
        error = f" ({describe_error(step.error)})" if step.HasField("error") else ""
        lines.append(f"  step {step.plugin_id}: {step.outcome}{error}")
    return "\n".join(lines)


def _evidence(outcome: control_pb2.FilterOutcome, *plugins: FakePlugin) -> str:
    return _describe(outcome) + "".join(f"\n{p.evidence()}" for p in plugins)


def _expect_seen(
    plugin: FakePlugin, wanted: hooks_pb2.Post, requirement: str, problems: list[str]
) -> None:
    seen = _seen(plugin)
    if seen != [wanted]:
        shown = "; ".join(f"{{{_one_line(p)}}}" for p in seen) or "none"
        problems.append(
            f"{plugin.plugin_id!r} was asked to filter {len(seen)} post(s): {shown}; expected "
            f"once, the post as the previous step left it: {{{_one_line(wanted)}}} "
            f"({requirement})"
        )


@case("host/filters/chain-order", requirements=["FL-1", "FL-3", "FL-8"], profile=Profile.HOOKS)
async def chain_order(t: HostTarget) -> None:
    """
    Purpose: Filters run one after another in the configured order, each on the post as the
      previous one left it, and a modified post replaces the one before.
    Procedure: Load fakes a, b and c in that order, each answering MODIFY with the post it got
      and [a], [b] or [c] appended to the message, c also removing the prop "kept"; filter a
      post with props and create_at.
    Asserts: The plugins are called in the order a, b, c (FL-8); each once, after the previous
      one had answered, on the post as the previous one left it (FL-1); the post leaving the
      chain is the post sent with the tags appended in the order called, without "kept" (a
      MODIFY's post replaces the post, it is not merged into it), every other field kept,
      not rejected (FL-1, FL-3).
    """
    a, b, c = await _load_chain(
        t,
        ("a", _modify("[a]")),
        ("b", _modify("[b]")),
        ("c", {"filter": {"action": "modify", "append": "[c]", "drop_props": ["kept"]}}),
    )
    post = _post()
    outcome = await t.filter_post(post)
    evidence = _evidence(outcome, a, b, c)
    tags = {a.plugin_id: "[a]", b.plugin_id: "[b]", c.plugin_id: "[c]"}
    calls = sorted(
        ((call, plugin) for plugin in (a, b, c) for call in plugin.calls(HOOK)),
        key=lambda pair: pair[0].monotonic,
    )
    order = [plugin.plugin_id for _, plugin in calls]
    check(
        order == [a.plugin_id, b.plugin_id, c.plugin_id],
        f"the plugins were called in the order {order}; the configured order is "
        f"{[a.plugin_id, b.plugin_id, c.plugin_id]} (FL-8)\n{evidence}",
        requirement="FL-8",
    )
    problems: list[str] = []
    for plugin in (a, b, c):
        if len(plugin.calls(HOOK)) != 1:
            problems.append(f"{plugin.plugin_id!r} was asked {len(plugin.calls(HOOK))} times")
    left = hooks_pb2.Post()
    left.CopyFrom(post)  # the post as the previous step left it
    for index, (call, plugin) in enumerate(calls):
        got = received(call, hooks_pb2.MessageWillBePostedRequest).post
        if got != left:
            problems.append(
                f"{plugin.plugin_id!r}, called {index + 1}, received {{{_one_line(got)}}}; "
                f"the previous step left {{{_one_line(left)}}}"
            )
        left.message += tags[plugin.plugin_id]
        if plugin is c:
            left.props.pop("kept", None)
        if index:
            previous = calls[index - 1][1]
            ends = [e for e in previous.events("call_end") if e.get("hook") == HOOK]
            if ends and call.monotonic < ends[0].monotonic:
                problems.append(
                    f"{plugin.plugin_id!r} was called before {previous.plugin_id!r} had answered"
                )
    check(
        not problems,
        "the chain is not one step after the other, each on the post as the previous step "
        "left it (FL-1):\n  " + "\n  ".join(problems) + f"\n{evidence}",
        requirement="FL-1",
    )
    check(
        not outcome.rejected and outcome.post.message == left.message,
        f"the post leaving the chain has message {outcome.post.message!r} (rejected: "
        f"{outcome.rejected}); the last step left {left.message!r} (FL-1)\n{evidence}",
        requirement="FL-1",
    )
    check(
        outcome.post == left or outcome.post.message != left.message,
        f"the post leaving the chain is {{{_one_line(outcome.post)}}}; the last step left "
        f"{{{_one_line(left)}}}: a MODIFY's post replaces the post as it is, and c removed "
        f"the prop 'kept' (FL-3)\n{evidence}",
        requirement="FL-3",
    )


@case("host/filters/keep-ignores-post", requirements=["FL-2"], profile=Profile.HOOKS)
async def keep_ignores_post(t: HostTarget) -> None:
    """
    Purpose: A filter that keeps the post leaves it exactly as it was.
    Procedure: Load fakes a and b, each answering KEEP (without a post); filter a post with
      props and create_at.
    Asserts: The post leaving the chain equals the post sent, not rejected; b received the
      post as sent.
    """
    keep: ScenarioSpec = {"filter": {"action": "keep"}}
    a, b = await _load_chain(t, ("a", keep), ("b", keep))
    post = _post()
    outcome = await t.filter_post(post)
    problems: list[str] = []
    if outcome.rejected or outcome.post != post:
        problems.append(
            "after two plugins answered KEEP, the post leaving the chain differs from the post "
            "sent (FL-2: pass it on unchanged, ignoring the response's post)"
        )
    _expect_seen(a, post, "FL-1", problems)
    _expect_seen(b, post, "FL-2", problems)
    expect(
        not problems,
        "\n".join(problems) + f"\nthe post sent: {post}\n" + _evidence(outcome, a, b),
    )


@case("host/filters/reject-stops", requirements=["FL-4"], profile=Profile.HOOKS)
async def reject_stops(t: HostTarget) -> None:
    """
    Purpose: A rejection ends the chain, and the caller learns who rejected the post and why.
    Procedure: Load fakes a (MODIFY, appending [a]), b (REJECT, with a reason holding text
      outside the BMP and surrounding spaces) and c (MODIFY) in that order; filter a post.
    Asserts: The outcome is rejected, rejected_by is b's id and rejection_reason is b's reason
      unchanged; c is never called.
    """
    reason = f"  not here {NON_BMP} e\u0301  "
    reject: ScenarioSpec = {"filter": {"action": "reject", "reason": reason}}
    a, b, c = await _load_chain(t, ("a", _modify("[a]")), ("b", reject), ("c", _modify("[c]")))
    outcome = await t.filter_post(_post())
    problems = []
    if not outcome.rejected:
        problems.append("the post was not rejected, though b rejected it (FL-4)")
    if outcome.rejected_by != b.plugin_id:
        problems.append(
            f"rejected_by is {outcome.rejected_by!r}, expected b's id {b.plugin_id!r} (FL-4)"
        )
    if outcome.rejection_reason != reason:
        problems.append(
            f"the rejection reason is {outcome.rejection_reason!r}, b gave {reason!r} (FL-4: "
            "unchanged)"
        )
    if c.calls(HOOK):
        problems.append(
            f"{c.plugin_id!r}, after the rejecting plugin, was called {len(c.calls(HOOK))} "
            "times (FL-4: no later plugin is called)"
        )
    expect(not problems, "\n".join(problems) + "\n" + _evidence(outcome, a, b, c))


FAILURES: dict[str, ScenarioSpec] = {
    "app-error": {"hook_errors": {HOOK: {"code": "filter_broken", "message": f"no {NON_BMP}"}}},
    "crash": {"crash": {"on": HOOK}},
    "hang": {"hang": {"hook": HOOK}},
}


@case_each(
    "host/filters/fails-open/{}",
    list(FAILURES),
    requirements=["FL-5", "FL-6"],
    profile=Profile.HOOKS,
)
async def fails_open(t: HostTarget, failure: str) -> None:
    """
    Purpose: A filter that fails ({value}) is passed over as if it had kept the post.
    Procedure: Load fakes a (MODIFY, appending [a]), b ({value}: an AppError answer, a crash
      during the call, or no answer within its 0.5 s hook deadline) and c (MODIFY, appending
      [c]) in that order; filter a post.
    Asserts: b was called with the post as a left it; c received that same post, as it was
      before b; the post leaving the chain is the post sent with "[a][c]" appended, not
      rejected.
    """
    # Every plugin gets the 0.5 s hook deadline: only b ever needs it.
    a, b, c = await _load_chain(
        t,
        ("a", _modify("[a]")),
        ("b", FAILURES[failure]),
        ("c", _modify("[c]")),
        hook_timeout_s=0.5,
    )
    post = _post()
    outcome = await t.filter_post(post)
    after_a = _with_message(post, post.message + "[a]")
    wanted = _with_message(post, post.message + "[a][c]")
    problems: list[str] = []
    _expect_seen(b, after_a, "FL-1", problems)
    _expect_seen(c, after_a, "FL-5, FL-6: the post as it was before the failed plugin", problems)
    if outcome.rejected or outcome.post != wanted:
        problems.append(
            f"the post leaving the chain has message {outcome.post.message!r} (rejected: "
            f"{outcome.rejected}); with b failing ({failure}) it must be {wanted.message!r} "
            "(FL-5, FL-6: the chain fails open)"
        )
    expect(not problems, "\n".join(problems) + "\n" + _evidence(outcome, a, b, c))


# Answers no correct plugin gives (the fake's filter_raw): an action number and a post.
ODD_ANSWERS: dict[str, FilterRawSection] = {
    "modify-without-post": {"action": hooks_pb2.FILTER_ACTION_MODIFY, "post": False},
    "unknown-action": {"action": 7, "post": True},
}


@case_each(
    "host/filters/odd-answer/{}",
    list(ODD_ANSWERS),
    requirements=["FL-3", "FL-6"],
    profile=Profile.HOOKS,
)
async def odd_answer(t: HostTarget, answer: str) -> None:
    """
    Purpose: A filter answer the host cannot use ({value}) is a failure of that plugin, and
      the chain passes the post on as it was.
    Procedure: Load fakes b ({value}: MODIFY without a post, or action number 7 with the post
      received plus " [raw]") and c (MODIFY, appending [c]) in that order; filter a post.
    Asserts: c received the post as sent; the post leaving the chain is the post sent with
      "[c]" appended, not rejected.
    """
    b, c = await _load_chain(t, ("b", {"filter_raw": ODD_ANSWERS[answer]}), ("c", _modify("[c]")))
    post = _post()
    outcome = await t.filter_post(post)
    wanted = _with_message(post, post.message + "[c]")
    rule = "FL-3" if answer == "modify-without-post" else "FL-6"
    why = (
        "MODIFY without a post is a failure (FL-3)"
        if rule == "FL-3"
        else "an unknown action value passes the post on as it was (FL-6)"
    )
    problems: list[str] = []
    _expect_seen(c, post, f"{why}: c must get the post as sent", problems)
    if outcome.rejected or outcome.post != wanted:
        problems.append(
            f"the post leaving the chain has message {outcome.post.message!r} (rejected: "
            f"{outcome.rejected}); it must be {wanted.message!r}: {why}"
        )
    expect(not problems, "\n".join(problems) + "\n" + _evidence(outcome, b, c), requirement=rule)
