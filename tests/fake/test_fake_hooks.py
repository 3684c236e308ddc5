"""The fake plugin's hook answers: errors, filters, commands, subsets, odd answers."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from fake_support import (
    ALL_HOOKS,
    UNARY_REQUESTS,
    event,
    fake,
    has_error,
    hooks,
    open_http,
    read_all,
    recorded,
    rpc_error,
    scenario,
)
from google.protobuf import empty_pb2

from pluginconf._grpc_compat import EOF
from pluginconf.goplugin import grpc_stdio_pb2_grpc
from pluginconf.protocol.hooks import HOOKS_WITH_APP_ERROR
from pluginconf.reference.generator import generate_bytes
from pluginconf.v1 import hooks_pb2

# -- hooks --------------------------------------------------------------------------------


async def test_activation_error(launch_plugin, tmp_path):
    error = {"code": "license_missing", "message": "no licence for 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🧩"}
    plugin = await launch_plugin(fake(scenario(tmp_path, {"activation_error": error})))
    answer = await hooks(plugin).OnActivate(hooks_pb2.OnActivateRequest(), timeout=5)
    assert (answer.error.code, answer.error.message) == (error["code"], error["message"])


async def test_hook_errors(launch_plugin, tmp_path):
    wanted = {
        hook: {"code": f"{hook.lower()}_failed", "message": f"{hook} says no 🧩"}
        for hook in HOOKS_WITH_APP_ERROR
    }
    argv, record = recorded(tmp_path, {"hook_errors": wanted})
    plugin = await launch_plugin(argv)
    stub = hooks(plugin)
    for name, request in UNARY_REQUESTS.items():
        answer = await getattr(stub, name)(request, timeout=5)
        if name in wanted:
            assert (answer.error.code, answer.error.message) == tuple(wanted[name].values())
        else:
            assert not has_error(answer), name
    outcomes = {e["hook"]: e["outcome"] for e in record.events("call_end")}
    assert outcomes == {n: "app_error" if n in wanted else "ok" for n in UNARY_REQUESTS}


POST = hooks_pb2.Post(
    id="p1", channel_id="c1", user_id="u1", message="hello 🧩", props={"k": "v"}, create_at=2**40
)


@pytest.mark.parametrize(
    ("spec", "action", "message", "reason"),
    [
        ({}, hooks_pb2.FILTER_ACTION_KEEP, None, ""),
        (
            {"action": "modify", "append": " [checked ✓]"},
            hooks_pb2.FILTER_ACTION_MODIFY,
            "hello 🧩 [checked ✓]",
            "",
        ),
        ({"action": "reject", "reason": "spam"}, hooks_pb2.FILTER_ACTION_REJECT, None, "spam"),
        ({"action": "reject"}, hooks_pb2.FILTER_ACTION_REJECT, None, "rejected by fakeplugin"),
    ],
    ids=["keep", "modify", "reject", "reject-default-reason"],
)
async def test_filter(launch_plugin, tmp_path, spec, action, message, reason):
    plugin = await launch_plugin(fake(scenario(tmp_path, {"filter": spec})))
    request = hooks_pb2.MessageWillBePostedRequest(post=POST)
    answer = await hooks(plugin).MessageWillBePosted(request, timeout=5)
    assert (answer.action, answer.rejection_reason) == (action, reason)
    assert not has_error(answer)
    if message is None:
        assert not answer.HasField("post")
    else:
        expected = hooks_pb2.Post()
        expected.CopyFrom(POST)
        expected.message = message
        assert answer.post == expected  # every other field kept


@pytest.mark.parametrize(
    ("spec", "text", "response_type"),
    [
        ({"text": "done ✓", "response_type": "in_channel"}, "done ✓", "in_channel"),
        ({"response_type": "in_channel"}, "/cmd arg", "in_channel"),
        ({"text": ""}, "", "ephemeral"),
    ],
    ids=["both", "type-only", "empty-text"],
)
async def test_command_response(launch_plugin, tmp_path, spec, text, response_type):
    plugin = await launch_plugin(fake(scenario(tmp_path, {"command_response": spec})))
    request = hooks_pb2.ExecuteCommandRequest(command="/cmd arg")
    answer = await hooks(plugin).ExecuteCommand(request, timeout=5)
    assert (answer.text, answer.response_type) == (text, response_type)


async def test_hook_subset(launch_plugin, tmp_path):
    subset = ["ExecuteCommand", "OnActivate"]
    plugin = await launch_plugin(fake(scenario(tmp_path, {"hooks": subset})))
    stub = hooks(plugin)
    listed = list((await stub.Implemented(hooks_pb2.ImplementedRequest())).hooks)
    assert listed == ["OnActivate", "ExecuteCommand"]  # in the SDK's order
    for name, request in UNARY_REQUESTS.items():
        if name in subset:
            await getattr(stub, name)(request, timeout=5)
        else:
            exc = await rpc_error(getattr(stub, name)(request, timeout=5))
            assert exc.code() == grpc.StatusCode.UNIMPLEMENTED, name
    # UNIMPLEMENTED at once, before any request frame (as the SDK answers).
    exc = await rpc_error(stub.ServeHTTP(timeout=5).read())
    assert exc.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_hook_delay(launch_plugin, tmp_path):
    plugin = await launch_plugin(fake(scenario(tmp_path, {"hook_delay_ms": 300})))
    stub = hooks(plugin)
    start = time.monotonic()
    await stub.ExecuteCommand(hooks_pb2.ExecuteCommandRequest(command="/slow"), timeout=10)
    assert time.monotonic() - start >= 0.3
    exc = await rpc_error(stub.ExecuteCommand(hooks_pb2.ExecuteCommandRequest(), timeout=0.1))
    assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED


# -- answers no correct plugin gives, request framing, /early (issue 15) --------------------


@pytest.mark.parametrize(("action", "post"), [(2, False), (7, True)], ids=["modify", "unknown"])
async def test_filter_raw_answers_as_given(launch_plugin, tmp_path, action, post):
    spec = {"filter_raw": {"action": action, "post": post}}
    plugin = await launch_plugin(fake(scenario(tmp_path, spec)))
    request = hooks_pb2.MessageWillBePostedRequest(post=POST)
    answer = await hooks(plugin).MessageWillBePosted(request, timeout=5)
    assert answer.action == action and not has_error(answer)
    assert answer.HasField("post") == post
    if post:
        assert answer.post.message == POST.message + " [raw]"


async def test_configuration_error_from_its_call_on(launch_plugin, tmp_path):
    spec = {"configuration_error_from_call": {"call": 2, "code": "bad_value", "message": "no"}}
    plugin = await launch_plugin(fake(scenario(tmp_path, spec)))
    stub = hooks(plugin)
    request = hooks_pb2.OnConfigurationChangeRequest(configuration={"a": "1"})
    first = await stub.OnConfigurationChange(request, timeout=5)
    assert not has_error(first)
    for _ in range(2):
        later = await stub.OnConfigurationChange(request, timeout=5)
        assert (later.error.code, later.error.message) == ("bad_value", "no")


async def test_implemented_extra_and_hook_status(launch_plugin, tmp_path):
    data = {"implemented_extra": ["FutureHook"], "hook_status": {"ExecuteCommand": "INTERNAL"}}
    argv, record = recorded(tmp_path, data)
    plugin = await launch_plugin(argv)
    stub = hooks(plugin)
    listed = list((await stub.Implemented(hooks_pb2.ImplementedRequest())).hooks)
    assert listed == [*ALL_HOOKS, "FutureHook"]
    error = await rpc_error(stub.ExecuteCommand(hooks_pb2.ExecuteCommandRequest(command="/x")))
    assert error.code() == grpc.StatusCode.INTERNAL
    end = await record.wait_for(event("call_end", hook="ExecuteCommand"))
    assert end["outcome"].startswith("error:")


async def test_implemented_failing(launch_plugin, tmp_path):
    plugin = await launch_plugin(
        fake(scenario(tmp_path, {"hook_status": {"Implemented": "UNIMPLEMENTED"}}))
    )
    error = await rpc_error(hooks(plugin).Implemented(hooks_pb2.ImplementedRequest()))
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize("mode", ["absent", "ends"])
async def test_stdio_absent_or_ending(launch_plugin, tmp_path, mode):
    argv, record = recorded(tmp_path, {"stdio": mode})
    plugin = await launch_plugin(argv)
    call = grpc_stdio_pb2_grpc.GRPCStdioStub(plugin.channel).StreamStdio(empty_pb2.Empty())
    if mode == "absent":
        error = await rpc_error(call.read())
        assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    else:
        assert await asyncio.wait_for(call.read(), 10) is EOF
    assert record.events("rpc")[-1]["method"] == "/plugin.GRPCStdio/StreamStdio"


async def test_configuration_error_after_activation(launch_plugin, tmp_path):
    error = {"code": "bad_config", "message": "a must be 1"}
    data = {"configuration_error_after_activation": error}
    plugin = await launch_plugin(fake(scenario(tmp_path, data)))
    stub = hooks(plugin)
    change = hooks_pb2.OnConfigurationChangeRequest(configuration={"a": "2"})
    assert not (await stub.OnConfigurationChange(change)).HasField("error")
    await stub.OnActivate(hooks_pb2.OnActivateRequest())
    answer = await stub.OnConfigurationChange(change)
    assert (answer.error.code, answer.error.message) == (error["code"], error["message"])


@pytest.mark.parametrize("size", [64, 65536, 4 * 1024 * 1024])
async def test_command_answer_of_an_exact_size(launch_plugin, tmp_path, size):
    data = {"command_response": {"message_bytes": size}}
    plugin = await launch_plugin(fake(scenario(tmp_path, data)))
    answer = await hooks(plugin).ExecuteCommand(hooks_pb2.ExecuteCommandRequest(command="/s"))
    assert answer.ByteSize() == size and set(answer.text) == {"x"}


async def test_max_receive_bytes_and_the_largest_frame(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {"max_receive_bytes": 16 * 1024 * 1024})
    plugin = await launch_plugin(argv)
    body = generate_bytes(5 * 1024 * 1024, seed=1)
    call = await open_http(plugin, "/sink")
    await call.write(hooks_pb2.HTTPRequestFrame(body=body))
    await call.write(hooks_pb2.HTTPRequestFrame(end=hooks_pb2.HTTPRequestEnd()))
    await call.done_writing()
    await read_all(call)
    ended = await record.wait_for(event("http_request_end"))
    assert ended["body_bytes"] == len(body)
