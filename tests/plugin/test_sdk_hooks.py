"""Every hook of the reference plugin, Implemented, app errors, deadlines, HostAPI via broker."""

from __future__ import annotations

import json

import grpc
import pytest
from conftest import test_plugin
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pluginconf.host.broker import HostBroker
from pluginconf.host.hostapi import InMemoryHostAPI
from pluginconf.protocol.mtls import der_to_pem
from pluginconf.v1 import hooks_pb2, hooks_pb2_grpc, hostapi_pb2_grpc

ALL_HOOKS = [
    "OnConfigurationChange",
    "OnActivate",
    "OnDeactivate",
    "MessageHasBeenPosted",
    "MessageWillBePosted",
    "ExecuteCommand",
    "ServeHTTP",
]
UNUSUAL = ["", "plain", "ünïcödé", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 beyond the BMP 🧩", "x" * (1024 * 1024)]


def hooks(plugin) -> hooks_pb2_grpc.HooksStub:
    return hooks_pb2_grpc.HooksStub(plugin.channel)


async def command(plugin, text: str, timeout: float = 10) -> hooks_pb2.ExecuteCommandResponse:
    return await hooks(plugin).ExecuteCommand(
        hooks_pb2.ExecuteCommandRequest(command=text), timeout=timeout
    )


async def test_reference_implements_every_hook(launch_plugin):
    plugin = await launch_plugin()
    r = await hooks(plugin).Implemented(hooks_pb2.ImplementedRequest())
    assert list(r.hooks) == ALL_HOOKS


async def test_subset_plugin_lists_only_its_hooks_and_refuses_the_rest(launch_plugin):
    plugin = await launch_plugin(
        test_plugin("configurable", "--hooks", "ExecuteCommand,OnActivate")
    )
    stub = hooks(plugin)
    assert list((await stub.Implemented(hooks_pb2.ImplementedRequest())).hooks) == [
        "OnActivate",
        "ExecuteCommand",
    ]
    assert (await command(plugin, "/x")).text == "/x"
    for name, request in [
        ("OnConfigurationChange", hooks_pb2.OnConfigurationChangeRequest()),
        ("OnDeactivate", hooks_pb2.OnDeactivateRequest()),
        ("MessageHasBeenPosted", hooks_pb2.MessageHasBeenPostedRequest()),
        ("MessageWillBePosted", hooks_pb2.MessageWillBePostedRequest()),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await getattr(stub, name)(request, timeout=5)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED, name
        assert name in info.value.details()
    call = stub.ServeHTTP(timeout=5)

    async def exchange() -> None:
        # The refusal may come before the request is even written: it may surface on either.
        await call.write(
            hooks_pb2.HTTPRequestFrame(init=hooks_pb2.HTTPRequestInit(method="GET", path="/"))
        )
        await call.read()

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await exchange()
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_lifecycle_order_is_recorded(launch_plugin):
    plugin = await launch_plugin()
    stub = hooks(plugin)
    config = {"greeting": "hi 🌍", "empty": ""}
    r = await stub.OnConfigurationChange(
        hooks_pb2.OnConfigurationChangeRequest(configuration=config)
    )
    assert not r.HasField("error")
    assert not (await stub.OnActivate(hooks_pb2.OnActivateRequest(plugin_id="ref"))).HasField(
        "error"
    )
    await stub.OnConfigurationChange(
        hooks_pb2.OnConfigurationChangeRequest(configuration={"b": "2"})
    )
    assert not (await stub.OnDeactivate(hooks_pb2.OnDeactivateRequest())).HasField("error")
    assert (await command(plugin, "/lifecycle")).text == (
        "OnConfigurationChange,OnActivate,OnConfigurationChange,OnDeactivate"
    )
    assert json.loads((await command(plugin, "/config")).text) == {"b": "2"}


async def test_configuration_and_activation_failures_are_app_errors(launch_plugin):
    plugin = await launch_plugin()
    stub = hooks(plugin)
    r = await stub.OnConfigurationChange(
        hooks_pb2.OnConfigurationChangeRequest(configuration={"fail_configuration": "bad key"})
    )
    assert (r.error.code, r.error.message) == ("configuration_rejected", "bad key")
    await stub.OnConfigurationChange(
        hooks_pb2.OnConfigurationChangeRequest(configuration={"fail_activation": "no db"})
    )
    r2 = await stub.OnActivate(hooks_pb2.OnActivateRequest(plugin_id="ref"))
    assert (r2.error.code, r2.error.message) == ("activation_failed", "no db")


@pytest.mark.parametrize("text", UNUSUAL, ids=["empty", "ascii", "latin", "non-bmp", "1MiB"])
async def test_execute_command_echoes_unusual_payloads_exactly(launch_plugin, text):
    plugin = await launch_plugin()
    r = await command(plugin, f"/echo {text}")
    assert r.text == text
    assert r.response_type == "ephemeral"
    assert not r.HasField("error")


async def test_unknown_command_is_an_app_error_not_a_grpc_error(launch_plugin):
    plugin = await launch_plugin()
    r = await command(plugin, "/frobnicate now")
    assert r.error.code == "unknown_command"
    assert "'/frobnicate'" in r.error.message


async def test_notifications_are_recorded_in_order(launch_plugin):
    plugin = await launch_plugin()
    ids = ["p1", "𝔭𝔬𝔰𝔱-2", ""]
    for post_id in ids:
        post = hooks_pb2.Post(id=post_id, message="hello", props={"k": "v"})
        await hooks(plugin).MessageHasBeenPosted(hooks_pb2.MessageHasBeenPostedRequest(post=post))
    assert (await command(plugin, "/posts")).text == ",".join(ids)


async def test_filter_keeps_rewrites_and_rejects(launch_plugin):
    plugin = await launch_plugin()
    stub = hooks(plugin)
    base = hooks_pb2.Post(
        id="p", channel_id="c", user_id="u", props={"a": "1"}, create_at=1700000000000
    )

    def post(message: str) -> hooks_pb2.MessageWillBePostedRequest:
        p = hooks_pb2.Post()
        p.CopyFrom(base)
        p.message = message
        return hooks_pb2.MessageWillBePostedRequest(post=p)

    keep = await stub.MessageWillBePosted(post("just words 🙂"))
    assert keep.action == hooks_pb2.FILTER_ACTION_KEEP

    mod = await stub.MessageWillBePosted(post("a [rewrite] b [rewrite]"))
    assert mod.action == hooks_pb2.FILTER_ACTION_MODIFY
    assert mod.post.message == "a [rewritten] b [rewritten]"
    assert dict(mod.post.props) == {"a": "1", "rewritten_by": "pluginconf-reference"}
    assert (mod.post.id, mod.post.channel_id, mod.post.user_id, mod.post.create_at) == (
        "p",
        "c",
        "u",
        1700000000000,
    )

    rej = await stub.MessageWillBePosted(post("[rewrite] and [reject]"))
    assert rej.action == hooks_pb2.FILTER_ACTION_REJECT
    assert rej.rejection_reason == "rejected by reference plugin: message contains [reject]"


async def test_a_raising_hook_is_an_internal_app_error_and_the_plugin_survives(launch_plugin):
    plugin = await launch_plugin(test_plugin("configurable"))
    r = await command(plugin, "/raise")
    assert r.error.code == "internal"
    assert "RuntimeError: asked to raise" in r.error.message
    health = await health_pb2_grpc.HealthStub(plugin.channel).Check(
        health_pb2.HealthCheckRequest(service="plugin")
    )
    assert health.status == health_pb2.HealthCheckResponse.SERVING


async def test_deadline_is_enforced_and_the_plugin_survives(launch_plugin):
    plugin = await launch_plugin(test_plugin("configurable"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await command(plugin, "/sleep 5000", timeout=0.3)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert (await command(plugin, "/sleep 1")).text == "slept"


# -- HostAPI through the broker ----------------------------------------------------------


async def _activate_with_host_api(plugin, api: InMemoryHostAPI, mtls: bool) -> HostBroker:
    creds = None
    if mtls:
        creds = grpc.ssl_server_credentials(
            [(plugin.client_cert.key_pem, plugin.client_cert.cert_pem)],
            root_certificates=der_to_pem(plugin.handshake.server_cert_der),
            require_client_auth=True,
        )
    broker = HostBroker(plugin.channel, plugin.socket_dir, creds)
    await broker.start()
    broker_id = await broker.serve(
        lambda server: hostapi_pb2_grpc.add_HostAPIServicer_to_server(api, server)
    )
    r = await hooks(plugin).OnActivate(
        hooks_pb2.OnActivateRequest(plugin_id="ref", host_api_broker_id=broker_id), timeout=10
    )
    assert not r.HasField("error"), r.error
    return broker


@pytest.mark.parametrize(
    ("mtls", "curve"),
    [(False, "P-256"), (True, "P-256"), (True, "P-521")],
    ids=["plain", "mtls", "mtls-p521"],
)
async def test_host_api_round_trip_through_the_broker(launch_plugin, mtls, curve):
    plugin = await launch_plugin(auto_mtls=mtls, auto_mtls_curve=curve)
    api = InMemoryHostAPI(configuration={"mode": "test", "emoji": "🔌"})
    broker = await _activate_with_host_api(plugin, api, mtls)
    try:
        assert (await command(plugin, "/kv set colour deep blue")).text == "ok"
        assert api.kv == {"colour": b"deep blue"}
        assert (await command(plugin, "/kv get colour")).text == "deep blue"
        assert (await command(plugin, "/kv get missing")).text == "(not found)"
        assert (await command(plugin, "/kv cas colour red green")).text == "not swapped"
        assert (await command(plugin, "/kv cas colour deep red")).text == "not swapped"
        api.kv["colour"] = b"red"
        assert (await command(plugin, "/kv cas colour red green")).text == "swapped"
        assert (await command(plugin, "/kv cas fresh - new")).text == "swapped"
        assert (await command(plugin, "/kv cas fresh - again")).text == "not swapped"
        assert api.kv == {"colour": b"green", "fresh": b"new"}
        assert (await command(plugin, "/kv delete colour")).text == "deleted"
        assert (await command(plugin, "/kv delete colour")).text == "absent"
        assert json.loads((await command(plugin, "/hostconfig")).text) == api.configuration
        assert (await command(plugin, "/log warn disk nearly full")).text == "logged"
        assert [(r.level, r.message) for r in api.logs] == [("warn", "disk nearly full")]
        # A HostAPI AppError reaches the plugin and is passed on as is.
        bad = await command(plugin, "/kv get " + "k" * 300)
        assert (bad.error.code, bad.error.message) == ("invalid_argument", "key is over 256 bytes")
    finally:
        await broker.close()


async def test_host_api_unavailable_without_a_broker_id(launch_plugin):
    plugin = await launch_plugin()
    await hooks(plugin).OnActivate(hooks_pb2.OnActivateRequest(plugin_id="ref"))
    r = await command(plugin, "/kv get anything")
    assert r.error.code == "host_api_unavailable"
    assert "broker id was 0" in r.error.message
