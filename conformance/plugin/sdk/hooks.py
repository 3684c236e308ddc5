"""The conformance plugin's hooks: Implemented, filters and commands."""

from __future__ import annotations

import uuid

import grpc
from google.protobuf.message import Message

from pluginconf.protocol.hooks import HOOKS as ALL_HOOKS
from pluginconf.runner import Profile, case, case_each, check, expect, fail
from pluginconf.runner.plugin.target import PluginTarget
from pluginconf.v1 import hooks_pb2

from .._helpers import APP_ERROR_CODE, NON_BMP, call_hook, post
from ._helpers import command, command_text, compact_json

KEEP, MODIFY, REJECT = (
    hooks_pb2.FILTER_ACTION_KEEP,
    hooks_pb2.FILTER_ACTION_MODIFY,
    hooks_pb2.FILTER_ACTION_REJECT,
)


@case("plugin/sdk/implemented-all", requirements=["RB-1"], profile=Profile.SDK)
async def implemented_all(t: PluginTarget) -> None:
    """
    Purpose: The conformance plugin exercises every hook.
    Procedure: Read the shared process's Implemented answer.
    Asserts: It lists all seven hooks.
    """
    shared = await t.shared()
    missing = sorted(set(ALL_HOOKS) - set(shared.implemented))
    expect(not missing, f"Implemented lacks {missing}")


_POST = post(
    id="p-1",
    channel_id="town-square",
    user_id="u-1",
    message="",
    props={"k": "v", NON_BMP: "é"},
    create_at=1767000000000,
)


@case_each(
    "plugin/sdk/filter/{}",
    ["keep", "modify", "reject"],
    requirements=["RB-9", "FL-7", "HK-14"],
    profile=Profile.SDK,
)
async def filter_semantics(t: PluginTarget, action: str) -> None:
    """
    Purpose: MessageWillBePosted answers {value} exactly as the conformance plugin defines.
    Procedure: Call MessageWillBePosted on the shared process with a post whose message
      selects {value} ("[reject]", "[rewrite]", or neither), with props and non-BMP text.
    Asserts: keep: action KEEP. modify: action MODIFY with the post unchanged but for
      "[rewrite]" -> "[rewritten]" in the message and the prop rewritten_by. reject: action
      REJECT with the documented, non-empty reason.
    """
    shared = await t.shared()
    marker = {"keep": "", "modify": "[rewrite]", "reject": "[reject]"}[action]
    request_post = hooks_pb2.Post()
    request_post.CopyFrom(_POST)
    request_post.message = f"hello {NON_BMP} {marker} end {marker}"
    answer = await shared.hooks.MessageWillBePosted(
        hooks_pb2.MessageWillBePostedRequest(post=request_post), timeout=30
    )
    expect(not answer.HasField("error"), f"answered AppError {answer.error}", requirement="RB-9")
    if action == "keep":
        expect(answer.action == KEEP, f"action {answer.action}, expected KEEP", requirement="RB-9")
    elif action == "reject":
        reason = "rejected by reference plugin: message contains [reject]"
        check(
            answer.action == REJECT, f"action {answer.action}, expected REJECT", requirement="RB-9"
        )
        check(
            answer.rejection_reason == reason,
            f"rejection reason {answer.rejection_reason!r}; expected {reason!r}",
            requirement=["RB-9", "FL-7"] if not answer.rejection_reason else "RB-9",
        )
    else:
        want = hooks_pb2.Post()
        want.CopyFrom(request_post)
        want.message = request_post.message.replace("[rewrite]", "[rewritten]")
        want.props["rewritten_by"] = "pluginconf-reference"
        check(
            answer.action == MODIFY, f"action {answer.action}, expected MODIFY", requirement="RB-9"
        )
        check(
            answer.post == want,
            f"modified post:\n{answer.post}\nexpected:\n{want}",
            requirement=["RB-9", "HK-14"],
        )


@case("plugin/sdk/commands/echo", requirements=["RB-10", "HK-14"], profile=Profile.SDK)
async def command_echo(t: PluginTarget) -> None:
    """
    Purpose: Command text reaches the handler, and its answer the host, exactly.
    Procedure: ExecuteCommand "/echo" followed by spaces and text with inner and trailing
      spaces, non-BMP characters, a decomposed "e" + combining acute (which NFC would
      compose) and a line separator.
    Asserts: The answer's text is everything after the first run of spaces, unchanged, with
      response_type "ephemeral".
    """
    shared = await t.shared()
    rest = f"a  b {NON_BMP} e\u0301 \u2028 end  "
    answer = await command(shared.hooks, f"/echo   {rest}")
    expect(
        answer.text == rest and answer.response_type == "ephemeral",
        f"answered {answer.text!r} ({answer.response_type!r}), expected {rest!r} (ephemeral)",
    )


@case("plugin/sdk/commands/unknown", requirements=["RB-10", "HK-8"], profile=Profile.SDK)
async def command_unknown(t: PluginTarget) -> None:
    """
    Purpose: An application failure is an AppError in an OK answer, not a gRPC error.
    Procedure: ExecuteCommand "/no-such-command".
    Asserts: The call succeeds (HK-8) with an AppError whose code is non-empty
      lower_snake_case (HK-8) and is "unknown_command" (RB-10).
    """
    shared = await t.shared()
    try:
        answer = await command(shared.hooks, "/no-such-command")
    except grpc.aio.AioRpcError as exc:
        fail(
            f"an unknown command failed with status {exc.code().name} ({exc.details()}); an "
            "application failure travels as an AppError in an OK answer",
            requirement="HK-8",
        )
    expect(answer.HasField("error"), f"answered {answer}, without an AppError", requirement="RB-10")
    code = answer.error.code
    expect(
        APP_ERROR_CODE.match(code) is not None,
        f"AppError code {code!r} is not non-empty lower_snake_case",
        requirement="HK-8",
    )
    expect(
        code == "unknown_command",
        f"AppError code {code!r}, expected 'unknown_command'",
        requirement="RB-10",
    )


@case("plugin/sdk/commands/lifecycle", requirements=["RB-10", "LC-10"], profile=Profile.SDK)
async def command_lifecycle(t: PluginTarget) -> None:
    """
    Purpose: The plugin sees its lifecycle hooks in the order the host sent them.
    Procedure: On a new process: OnConfigurationChange, OnActivate, "/lifecycle";
      OnDeactivate, "/lifecycle".
    Asserts: The answers are "OnConfigurationChange,OnActivate" and then
      "OnConfigurationChange,OnActivate,OnDeactivate".
    """
    fresh = await t.launch()

    async def lifecycle_hook(hook: str, request: Message) -> None:
        outcome = await call_hook(fresh.hooks, hook, request, timeout_s=10)
        expect(outcome.ok, outcome.describe(), requirement="LC-10")

    await lifecycle_hook(
        "OnConfigurationChange", hooks_pb2.OnConfigurationChangeRequest(configuration={"a": "1"})
    )
    await lifecycle_hook("OnActivate", hooks_pb2.OnActivateRequest(plugin_id="p"))
    first = await command_text(fresh.hooks, "/lifecycle")
    await lifecycle_hook("OnDeactivate", hooks_pb2.OnDeactivateRequest())
    second = await command_text(fresh.hooks, "/lifecycle")
    check(
        first == "OnConfigurationChange,OnActivate",
        f"first /lifecycle: {first!r}",
        requirement="RB-10",
    )
    check(
        second == "OnConfigurationChange,OnActivate,OnDeactivate",
        f"after OnDeactivate, /lifecycle: {second!r}",
        requirement="RB-10",
    )


@case("plugin/sdk/commands/posts-and-config", requirements=["RB-10", "HK-14"], profile=Profile.SDK)
async def posts_and_config(t: PluginTarget) -> None:
    """
    Purpose: Notifications and configuration reach the plugin exactly.
    Procedure: MessageHasBeenPosted with two post ids (one non-BMP), then "/posts";
      OnConfigurationChange with a configuration, then "/config".
    Asserts: "/posts" ends with the two ids in order; "/config" is the configuration as
      compact JSON with sorted keys.
    """
    shared = await t.shared()
    ids = [f"post-{uuid.uuid4().hex[:6]}", f"post-{NON_BMP}"]
    for post_id in ids:
        await shared.hooks.MessageHasBeenPosted(
            hooks_pb2.MessageHasBeenPostedRequest(post=post(id=post_id)), timeout=10
        )
    posts = (await command_text(shared.hooks, "/posts")).split(",")
    expect(posts[-2:] == ids, f"/posts ends with {posts[-2:]}, expected {ids}")
    configuration = {"b": f"{NON_BMP}", "a": "", "c d": "é"}
    await shared.hooks.OnConfigurationChange(
        hooks_pb2.OnConfigurationChangeRequest(configuration=configuration), timeout=10
    )
    got = await command_text(shared.hooks, "/config")
    expect(
        got == compact_json(configuration),
        f"/config: {got!r}, expected {compact_json(configuration)!r}",
    )
