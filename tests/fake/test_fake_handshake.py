"""The fake plugin before and instead of its handshake, and its handshake's TLS variants."""

from __future__ import annotations

import tempfile

import pytest
from fake_support import (
    SERVING,
    Record,
    check,
    event,
    fake,
    hooks,
    launch_fails,
    recorded,
    scenario,
)

from pluginconf.host import errors
from pluginconf.host.launcher import LaunchedPlugin, LaunchSpec, spawn
from pluginconf.v1 import hooks_pb2

# -- before and instead of the handshake --------------------------------------------------


async def _start_timeout_after(record: Record, argv: list[str], name: str) -> LaunchedPlugin:
    """Spawn, wait until the fake records ``name``, then read the handshake; the start timeout
    (counted from the spawn, long enough for the fake to start) must expire."""
    plugin = await spawn(LaunchSpec(argv=argv, start_timeout_s=2.0))
    try:
        await record.wait_for(event(name))
        with pytest.raises(errors.StartTimeout):
            await plugin.read_handshake()
    finally:
        await plugin.close()
    return plugin


async def test_never_handshake_times_out(tmp_path):
    argv, record = recorded(tmp_path, {"never_handshake": True})
    plugin = await _start_timeout_after(record, argv, "started")
    assert plugin.noise_lines == []
    assert [e["event"] for e in record.lines()] == ["started"]


async def test_empty_handshake_line_is_noise_then_start_timeout(tmp_path):
    argv, record = recorded(tmp_path, {"handshake": {"line": ""}})
    plugin = await _start_timeout_after(record, argv, "handshake")
    assert plugin.noise_lines == [""]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("2|1|unix|/x|grpc", errors.CoreVersionMismatch),
        ("1|7|unix|/x|grpc", errors.AppVersionUnsupported),
        ("1|1|udp|/x|grpc", errors.UnknownNetwork),
        ("1|1|unix|/x|netrpc", errors.UnsupportedProtocol),
        ("garbage|", errors.MalformedHandshake),
        ("1|1|unix|/nonexistent/fake.sock|grpc", errors.AddressUnreachable),
    ],
    ids=["core-version", "app-version", "network", "protocol", "garbage", "unreachable"],
)
async def test_bad_handshake_line_gives_its_typed_error(tmp_path, line, error):
    path = scenario(tmp_path, {"handshake": {"line": line}})
    exc = await launch_fails(fake(path), connect_timeout_s=0.5)
    assert type(exc) is error
    assert exc.line == line


async def test_exit_before_handshake_carries_status_and_stderr(tmp_path):
    path = scenario(tmp_path, {"handshake": {"exit_before": 3}})
    exc = await launch_fails(fake(path))
    assert type(exc) is errors.ExitedBeforeHandshake
    assert exc.exit_status == 3
    assert "exiting with status 3 before the handshake" in exc.stderr_tail


async def test_closed_stdout_is_no_handshake(tmp_path):
    path = scenario(tmp_path, {"handshake": {"close_stdout": True}})
    assert type(await launch_fails(fake(path))) is errors.NoHandshake


async def test_noise_before_handshake_is_recorded_by_the_launcher(launch_plugin, tmp_path):
    plugin = await launch_plugin(fake(scenario(tmp_path, {"noise_before_handshake": 3})))
    assert plugin.noise_lines == [f"fakeplugin noise line {i} of 3" for i in (1, 2, 3)]
    lines = ["starting up", "loading config ✓"]
    plugin = await launch_plugin(fake(scenario(tmp_path, {"noise_before_handshake": lines})))
    assert plugin.noise_lines == lines
    assert await check(plugin) == SERVING


async def test_too_much_noise_is_rejected(tmp_path):
    path = scenario(tmp_path, {"noise_before_handshake": 65})
    assert type(await launch_fails(fake(path))) is errors.TooMuchNoise


async def test_slow_start_beyond_the_start_timeout(tmp_path):
    argv, record = recorded(tmp_path, {"slow_start": 60})
    exc = await launch_fails(argv, start_timeout_s=1.0)
    assert type(exc) is errors.StartTimeout
    assert not record.events("handshake")


async def test_slow_start_within_the_start_timeout(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {"slow_start": 0.5})
    await launch_plugin(argv)
    started, handshake = record.events("started")[0], record.events("handshake")[0]
    assert handshake["monotonic"] - started["monotonic"] >= 0.5


# -- what real plugins do: field 6, Implemented, GRPCStdio, later errors, message sizes ------


async def test_six_fields_with_an_empty_sixth(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {"tls": {"sixth_field": "empty"}})
    plugin = await launch_plugin(argv)
    line = record.events("handshake")[0]["line"]
    assert line.endswith("|") and line.count("|") == 5
    assert plugin.handshake.server_cert_der is None


@pytest.mark.parametrize("padding", [0, 1, 2])
async def test_certificate_padding(launch_plugin, tmp_path, padding):
    argv, record = recorded(tmp_path, {"tls": {"certificate_padding": padding}})
    plugin = await launch_plugin(argv, auto_mtls=True)
    sixth = record.events("handshake")[0]["line"].split("|")[5]
    assert "=" not in sixth
    assert (3 - len(plugin.handshake.server_cert_der) % 3) % 3 == padding
    answer = await hooks(plugin).ExecuteCommand(hooks_pb2.ExecuteCommandRequest(command="/p"))
    assert answer.text == "/p"


@pytest.mark.parametrize(
    ("data", "auto_mtls"),
    [
        ({"tls": {"serve": "plain", "sixth_field": "certificate"}}, False),
        ({"tls": {"serve": "plain", "sixth_field": "not-a-certificate"}}, True),
        ({"tls": {"serve": "plain", "sixth_field": "certificate"}}, True),
        ({"tls": {"serve": "tls1.1"}}, True),
    ],
)
async def test_tls_variants_are_refused_by_the_reference_host(tmp_path, data, auto_mtls):
    # A plugin killed mid-start leaves its TLS front's private directory behind: give it a
    # TMPDIR of the test's own (short: a unix socket path has at most 107 bytes).
    with tempfile.TemporaryDirectory(prefix="tls", dir="/tmp") as tmpdir:
        argv = fake(scenario(tmp_path, data))
        error = await launch_fails(argv, auto_mtls=auto_mtls, env={"TMPDIR": tmpdir})
    assert isinstance(error, errors.TLSError), error
