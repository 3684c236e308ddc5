"""The conformance plugin's hooks: filters, commands, HostAPI through the broker, stdio, stop."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from typing import TYPE_CHECKING

import grpc
from google.protobuf.message import Message

from pluginconf.goplugin import grpc_broker_pb2, grpc_broker_pb2_grpc
from pluginconf.host.hostapi import InMemoryHostAPI
from pluginconf.runner import Profile, case, case_each, check, expect, fail
from pluginconf.runner.http import ServeHTTPCall, exchange
from pluginconf.runner.shared import SUITE_CONFIGURATION, SUITE_PLUGIN_ID, broker_credentials
from pluginconf.runner.stdio import STDERR, STDOUT, StdioCollector
from pluginconf.runner.target import PluginTarget
from pluginconf.runner.timing import Yardstick
from pluginconf.v1 import hooks_pb2, hostapi_pb2_grpc

from ._helpers import ALL_HOOKS, EXIT_GUARD_S, NON_BMP, call_hook, judge_bound, post

# A deadlock guard for output to come through GRPCStdio (IO-4, IO-5 set no bound).
_STDIO_GUARD_S = 10.0

if TYPE_CHECKING:
    from pluginconf.v1.hooks_pb2_grpc import HooksAsyncStub  # in the type stubs only

KEEP, MODIFY, REJECT = (
    hooks_pb2.FILTER_ACTION_KEEP,
    hooks_pb2.FILTER_ACTION_MODIFY,
    hooks_pb2.FILTER_ACTION_REJECT,
)


async def command(hooks: HooksAsyncStub, text: str) -> hooks_pb2.ExecuteCommandResponse:
    return await hooks.ExecuteCommand(
        hooks_pb2.ExecuteCommandRequest(command=text, user_id="u", channel_id="c"), timeout=30
    )


async def command_text(hooks: HooksAsyncStub, text: str) -> str:
    """The text of a command's answer; fails the case on an AppError."""
    answer = await command(hooks, text)
    if answer.HasField("error"):
        fail(f"{text!r} answered AppError {answer.error.code!r}: {answer.error.message}")
    return answer.text


def _compact(mapping: dict[str, str]) -> str:
    return json.dumps(mapping, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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
      spaces, non-BMP characters and a line separator.
    Asserts: The answer's text is everything after the first run of spaces, unchanged, with
      response_type "ephemeral".
    """
    shared = await t.shared()
    rest = f"a  b {NON_BMP} \u2028 end  "
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
    Asserts: The call succeeds with AppError code "unknown_command".
    """
    shared = await t.shared()
    answer = await command(shared.hooks, "/no-such-command")
    expect(
        answer.HasField("error") and answer.error.code == "unknown_command",
        f"answered {answer}",
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
        got == _compact(configuration), f"/config: {got!r}, expected {_compact(configuration)!r}"
    )


@case(
    "plugin/sdk/hostapi/kv",
    requirements=["RB-10", "HA-2", "BR-5", "BR-6"],
    profile=Profile.SDK,
)
async def hostapi_kv(t: PluginTarget) -> None:
    """
    Purpose: The plugin reaches the host's key-value store through the broker.
    Procedure: On the shared process (whose HostAPI was announced before OnActivate), run
      "/kv set K v1", "/kv get K", "/kv cas K v1 v2", "/kv cas K v1 v3", "/kv delete K",
      "/kv get K"; look at the suite's store after each step.
    Asserts: The answers are ok, v1, swapped, not swapped, deleted, (not found), and the
      suite's store holds what they say, when they say it.
    """
    shared = await t.shared()
    key = f"k-{uuid.uuid4().hex[:8]}"
    store = shared.hostapi.kv
    steps = [
        (f"/kv set {key} v1", "ok", b"v1"),
        (f"/kv get {key}", "v1", b"v1"),
        (f"/kv cas {key} v1 v2", "swapped", b"v2"),
        (f"/kv cas {key} v1 v3", "not swapped", b"v2"),
        (f"/kv delete {key}", "deleted", None),
        (f"/kv get {key}", "(not found)", None),
    ]
    for text, answer, stored in steps:
        got = await command_text(shared.hooks, text)
        expect(
            got == answer, f"{text!r} answered {got!r}, expected {answer!r}", requirement="RB-10"
        )
        expect(
            store.get(key) == stored,
            f"after {text!r} the host's store holds {store.get(key)!r}, expected {stored!r}",
            requirement=["HA-2", "RB-10"],
        )


@case("plugin/sdk/hostapi/log-and-config", requirements=["RB-10", "HA-2"], profile=Profile.SDK)
async def hostapi_log_and_config(t: PluginTarget) -> None:
    """
    Purpose: The plugin logs and reads its configuration through the host.
    Procedure: On the shared process, run "/log warn TEXT" and "/hostconfig".
    Asserts: The suite's HostAPI recorded TEXT at level warn; "/hostconfig" answers the
      configuration the suite serves, as compact JSON with sorted keys.
    """
    shared = await t.shared()
    text = f"log-{uuid.uuid4().hex[:6]} {NON_BMP}"
    expect(await command_text(shared.hooks, f"/log warn {text}") == "logged", "/log did not log")
    logged = [(r.level, r.message) for r in shared.hostapi.logs]
    expect(("warn", text) in logged, f"the host's log lacks (warn, {text!r}): {logged[-3:]}")
    got = await command_text(shared.hooks, "/hostconfig")
    want = _compact(SUITE_CONFIGURATION)
    expect(got == want, f"/hostconfig answered {got!r}, expected {want!r}")


@case(
    "plugin/sdk/hostapi/late-announcement",
    requirements=["BR-5", "RB-10"],
    profile=Profile.SDK,
)
async def hostapi_late_announcement(t: PluginTarget) -> None:
    """
    Purpose: A dial waits for an announcement that comes after the id was passed on.
    Procedure: On a new process, open the broker stream and call OnActivate with broker id 7
      before announcing anything; 500 ms later announce HostAPI under id 7; then run
      "/kv set K v".
    Asserts: OnActivate and the command succeed, and the suite's store holds K.
    """
    fresh = await t.launch()
    hostapi = InMemoryHostAPI()
    server = grpc.aio.server()
    hostapi_pb2_grpc.add_HostAPIServicer_to_server(hostapi, server)
    path = os.path.join(fresh.launched.socket_dir, "late-hostapi.sock")
    credentials = broker_credentials(fresh.launched)
    if credentials is None:
        server.add_insecure_port(f"unix:{path}")
    else:
        server.add_secure_port(f"unix:{path}", credentials)
    await server.start()
    stream = grpc_broker_pb2_grpc.GRPCBrokerStub(fresh.connection).StartStream(None)
    try:
        await fresh.hooks.Implemented(hooks_pb2.ImplementedRequest(), timeout=10)
        activate = asyncio.ensure_future(
            fresh.hooks.OnActivate(
                hooks_pb2.OnActivateRequest(plugin_id=SUITE_PLUGIN_ID, host_api_broker_id=7),
                timeout=30,
            )
        )
        # The stimulus: the announcement comes late on purpose.
        await asyncio.wait({activate}, timeout=0.5)
        await stream.write(grpc_broker_pb2.ConnInfo(service_id=7, network="unix", address=path))
        answer = await activate
        expect(
            not answer.HasField("error"), f"OnActivate answered {answer.error}", requirement="BR-5"
        )
        got = await command_text(fresh.hooks, "/kv set late v")
        expect(got == "ok", f"/kv set answered {got!r}", requirement="BR-5")
        expect(
            hostapi.kv.get("late") == b"v",
            f"the host's store holds {hostapi.kv}",
            requirement="BR-5",
        )
    finally:
        stream.cancel()
        await server.stop(0)


@case("plugin/sdk/hostapi/no-broker", requirements=["HA-2", "RB-10"], profile=Profile.SDK)
async def hostapi_no_broker(t: PluginTarget) -> None:
    """
    Purpose: A plugin that was offered no HostAPI says so instead of failing obscurely.
    Procedure: On a new process, OnActivate with host_api_broker_id 0, then "/kv get K".
    Asserts: The command answers AppError code "host_api_unavailable".
    """
    fresh = await t.launch()
    await fresh.hooks.OnActivate(hooks_pb2.OnActivateRequest(plugin_id="p"), timeout=10)
    answer = await command(fresh.hooks, "/kv get K")
    expect(
        answer.HasField("error") and answer.error.code == "host_api_unavailable",
        f"/kv get without HostAPI answered {answer}",
    )


@case("plugin/sdk/stdio/capture", requirements=["IO-2", "IO-4", "RB-10"], profile=Profile.SDK)
async def stdio_capture(t: PluginTarget) -> None:
    """
    Purpose: What the plugin prints reaches the host through GRPCStdio, on the right channel.
    Procedure: On the shared process (whose StreamStdio the suite opened at start), run
      "/print stdout TEXT" and "/print stderr TEXT" with distinct non-BMP texts.
    Asserts: Each text and its newline arrive on its channel (10 s at most), and no StdioData
      has channel INVALID or empty data (IO-4).
    """
    shared = await t.shared()
    run = uuid.uuid4().hex[:6]
    for channel, name in ((STDOUT, "stdout"), (STDERR, "stderr")):
        text = f"{name}-{run}-{NON_BMP}"
        await command_text(shared.hooks, f"/print {name} {text}")
        check(
            await shared.stdio.wait_for(channel, f"{text}\n".encode(), _STDIO_GUARD_S),
            f"{text!r} did not arrive on {name} within {_STDIO_GUARD_S:g} s "
            f"(StreamStdio: {shared.stdio.error or 'open'})",
            requirement="IO-4",
        )
    check(not shared.stdio.violations, "; ".join(shared.stdio.violations), requirement="IO-4")


@case("plugin/sdk/stdio/single-delivery", requirements=["IO-5", "RB-10"], profile=Profile.SDK)
async def stdio_single_delivery(t: PluginTarget) -> None:
    """
    Purpose: Captured output is delivered once, never twice.
    Procedure: On a new process, print a line, open StreamStdio and receive it, close that
      stream, then open a second StreamStdio.
    Asserts: The second stream fails with FAILED_PRECONDITION or does not deliver the line
      again.
    """
    fresh = await t.launch()
    text = f"once-{uuid.uuid4().hex[:6]}\n".encode()
    await command_text(fresh.hooks, f"/print stdout {text.decode().strip()}")
    first = StdioCollector(fresh.connection)
    try:
        expect(
            await first.wait_for(STDOUT, text, _STDIO_GUARD_S),
            "the line did not arrive",
            requirement="IO-5",
        )
    finally:
        await first.close()
    second = StdioCollector(fresh.connection)
    try:
        again = await second.wait_for(STDOUT, text, 0.5)
    finally:
        await second.close()
    expect(not again, "a second StreamStdio delivered the line again", requirement="IO-5")


# CT-2: once its calls are done, the plugin exits "as soon as" it can; the suite allows what
# CT-3 allows after a Shutdown with nothing in progress.
_AFTER_LAST_CALL_S = 1.0


@case("plugin/sdk/controller/grace", requirements=["CT-2", "RB-6"], profile=Profile.SDK)
async def shutdown_grace(t: PluginTarget) -> None:
    """
    Purpose: Shutdown lets a call in progress finish, and then the plugin exits.
    Procedure: On a new process start GET /flush?n=2&ms=600 and, once its first chunk has
      arrived, call Shutdown; try a new call; wait for the exchange to complete; time the
      exit from its end. A time over the bound is set beside a minimal gRPC process's stop
      timed just then, and the whole sequence run again on a new process before it counts.
    Asserts: The first chunk comes (RB-6); the new call fails; the exchange completes with
      both chunks and end; the process exits within 1 s after that (CT-2).
    """
    first_run: list[str] = []

    async def graceful_once() -> float | None:
        problems: list[str] = []
        fresh = await t.launch()
        call = ServeHTTPCall(fresh.hooks)
        try:
            await call.send_init("GET", "/flush", "n=2&ms=600")
            await call.send_end()
            await call.half_close()
            expect(
                await call.wait_for("body", 10),
                f"no first chunk: {call.response.describe()}",
                requirement="RB-6",
            )
            await fresh.request_shutdown()
            late = await exchange(fresh.hooks, "GET", "/status/200", timeout_s=10)
            if late.status is not None:
                problems.append(f"a call made after Shutdown was served: {late.describe()}")
            response = await call.finish(10)
        finally:
            await call.close()
        ended = time.monotonic()
        if not (bytes(response.body) == b"chunk 0\nchunk 1\n" and response.ended):
            problems.append(
                f"the call in progress at Shutdown did not complete: {response.describe()}, "
                f"body {bytes(response.body)!r}"
            )
        exited = await fresh.wait_exit(EXIT_GUARD_S)
        if not first_run:
            first_run.extend(problems or [""])
        return time.monotonic() - ended if exited else None

    verdict = await judge_bound(
        _AFTER_LAST_CALL_S, graceful_once, Yardstick.STOP, "the exit after the last call ended"
    )
    for problem in first_run:
        check(not problem, problem, requirement="CT-2")
    check(verdict.met, verdict.evidence(), requirement="CT-2")
