"""Plugin start-up: cookie, version negotiation, listeners, AutoMTLS and health."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import tempfile

import grpc
import pytest
from conftest import REFERENCE, test_plugin
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pluginconf.host.errors import AppVersionUnsupported
from pluginconf.protocol.mtls import der_to_pem, generate_certificate
from pluginconf.v1 import hooks_pb2, hooks_pb2_grpc


def _run_without_host(env_changes: dict[str, str | None]) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "PLUGINCONF_MAGIC_COOKIE"}
    env.update({k: v for k, v in env_changes.items() if v is not None})
    return subprocess.run(
        REFERENCE, env=env, capture_output=True, timeout=30, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize("cookie", [None, "wrong", ""])
def test_missing_or_wrong_cookie_explains_and_exits_1_with_empty_stdout(cookie):
    result = _run_without_host({"PLUGINCONF_MAGIC_COOKIE": cookie, "PLUGIN_PROTOCOL_VERSIONS": "1"})
    assert result.returncode == 1
    assert result.stdout == b""
    assert b"This binary is a plugin. These are not meant to be executed directly." in result.stderr


async def test_custom_cookie_key_is_honoured(launch_plugin):
    from pluginconf.protocol import MagicCookie

    argv = test_plugin("configurable", "--cookie", "MY_APP_COOKIE=s3cret")
    plugin = await launch_plugin(argv, magic_cookie=MagicCookie("MY_APP_COOKIE", "s3cret"))
    assert plugin.handshake.app_version == 1


@pytest.mark.parametrize(
    ("plugin_versions", "host_versions", "expected"),
    [("1,2,3", (1, 2), 2), ("1,2,3", (3, 2, 1), 3), ("2", (1, 2, 5), 2)],
)
async def test_version_negotiation_picks_highest_common(
    launch_plugin, plugin_versions, host_versions, expected
):
    plugin = await launch_plugin(
        test_plugin("configurable", "--versions", plugin_versions), protocol_versions=host_versions
    )
    assert plugin.handshake.app_version == expected


async def test_no_common_version_offers_lowest_and_host_reports_it(launch_plugin):
    with pytest.raises(AppVersionUnsupported) as info:
        await launch_plugin(
            test_plugin("configurable", "--versions", "3,4"), protocol_versions=(1, 2)
        )
    message = str(info.value)
    assert "app protocol version 3" in message
    assert "(1, 2)" in message
    assert "1|3|unix|" in message  # the offending line is quoted


async def test_unix_socket_in_given_dir_private_and_removed(launch_plugin):
    plugin = await launch_plugin()
    path = plugin.handshake.address
    assert plugin.handshake.network == "unix"
    assert os.path.dirname(path) == plugin.socket_dir
    mode = os.stat(path).st_mode
    assert stat.S_ISSOCK(mode)
    assert mode & 0o077 == 0, f"socket mode {oct(mode & 0o777)} lets other users in"
    assert stat.S_IMODE(os.stat(plugin.socket_dir).st_mode) == 0o700
    report = await plugin.stop()
    assert report.ended_by == "shutdown"
    assert not os.path.exists(path)


async def test_private_temp_dir_when_host_sets_none(launch_plugin):
    plugin = await launch_plugin(env={"PLUGIN_UNIX_SOCKET_DIR": None})
    own_dir = os.path.dirname(plugin.handshake.address)
    assert own_dir != plugin.socket_dir
    assert stat.S_IMODE(os.stat(own_dir).st_mode) == 0o700
    await plugin.stop()
    assert not os.path.exists(own_dir), "the plugin must remove the directory it made"


async def test_tcp_listens_on_loopback_within_port_range(launch_plugin):
    with tempfile.TemporaryDirectory():
        pass
    low, high = 42100, 42110
    plugin = await launch_plugin([*REFERENCE, "--network", "tcp"], port_range=(low, high))
    host, port = plugin.handshake.address.rsplit(":", 1)
    assert plugin.handshake.network == "tcp"
    assert host == "127.0.0.1"
    assert low <= int(port) <= high
    r = await health_pb2_grpc.HealthStub(plugin.channel).Check(
        health_pb2.HealthCheckRequest(service="plugin")
    )
    assert r.status == health_pb2.HealthCheckResponse.SERVING


async def test_health_serving_and_not_found(launch_plugin):
    plugin = await launch_plugin()
    health = health_pb2_grpc.HealthStub(plugin.channel)
    for service in ("plugin", ""):
        r = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert r.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await health.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def _implemented_over(channel: grpc.aio.Channel) -> list[str]:
    stub = hooks_pb2_grpc.HooksStub(channel)
    return list((await stub.Implemented(hooks_pb2.ImplementedRequest(), timeout=5)).hooks)


@pytest.mark.parametrize("curve", ["P-256", "P-384", "P-521"])
async def test_auto_mtls_serves_with_cert_in_handshake(launch_plugin, curve):
    # go-plugin hosts present P-521 certificates: the plugin must accept them under TLS 1.3.
    plugin = await launch_plugin(auto_mtls=True, auto_mtls_curve=curve)
    assert plugin.handshake.server_cert_der, "field 6 must carry the plugin's certificate"
    assert "ServeHTTP" in await _implemented_over(plugin.channel)


async def test_auto_mtls_over_tcp(launch_plugin):
    plugin = await launch_plugin(
        [*REFERENCE, "--network", "tcp"], auto_mtls=True, port_range=(42120, 42130)
    )
    assert plugin.handshake.network == "tcp"
    assert 42120 <= int(plugin.handshake.address.rsplit(":", 1)[1]) <= 42130
    assert "ServeHTTP" in await _implemented_over(plugin.channel)


@pytest.mark.parametrize("client", ["none", "other-cert"])
async def test_auto_mtls_refuses_clients_without_the_host_cert(launch_plugin, client):
    plugin = await launch_plugin(auto_mtls=True)
    root = der_to_pem(plugin.handshake.server_cert_der)
    options = [("grpc.ssl_target_name_override", "localhost")]
    if client == "none":
        creds = grpc.ssl_channel_credentials(root_certificates=root)
    else:
        other = generate_certificate("intruder")
        creds = grpc.ssl_channel_credentials(
            root_certificates=root, private_key=other.key_pem, certificate_chain=other.cert_pem
        )
    async with grpc.aio.secure_channel(plugin.target(), creds, options=options) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _implemented_over(channel)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_auto_mtls_refuses_plaintext(launch_plugin):
    plugin = await launch_plugin(auto_mtls=True)
    async with grpc.aio.insecure_channel(plugin.target()) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await asyncio.wait_for(_implemented_over(channel), 10)


def test_bad_client_cert_env_is_a_clear_startup_error():
    result = _run_without_host(
        {
            "PLUGINCONF_MAGIC_COOKIE": "pluginconf",
            "PLUGIN_PROTOCOL_VERSIONS": "1",
            "PLUGIN_CLIENT_CERT": "not a certificate",
        }
    )
    assert result.returncode == 1
    assert result.stdout == b""
    assert b"PLUGIN_CLIENT_CERT is set but is not a PEM certificate" in result.stderr


def test_socket_dir_that_does_not_exist_is_a_clear_startup_error(tmp_path):
    result = _run_without_host(
        {
            "PLUGINCONF_MAGIC_COOKIE": "pluginconf",
            "PLUGIN_PROTOCOL_VERSIONS": "1",
            "PLUGIN_UNIX_SOCKET_DIR": str(tmp_path / "missing"),
        }
    )
    assert result.returncode == 1
    assert result.stdout == b""
    assert b"is not a directory" in result.stderr
