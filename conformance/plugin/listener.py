"""Transport: where and how the plugin listens, what it leaves behind, message sizes."""

from __future__ import annotations

import ipaddress
import os
import random
import stat

import grpc
import psutil
from grpc_health.v1 import health_pb2

from pluginconf.protocol.constants import GRPC_MAX_MESSAGE_BYTES
from pluginconf.runner import Level, Profile, case, expect, fail, skip
from pluginconf.runner.target import PluginTarget

from ._helpers import refusal_problems, show


async def _network(t: PluginTarget) -> str:
    shared = await t.shared()
    assert shared.launched.handshake is not None
    return shared.launched.handshake.network


@case("plugin/transport/unix-socket-dir", requirements=["TR-1"], profile=Profile.TRANSPORT)
async def unix_socket_dir(t: PluginTarget) -> None:
    """
    Purpose: The plugin's socket is in the private directory the host made for it.
    Procedure: Start the plugin with PLUGIN_UNIX_SOCKET_DIR set to a new 0700 directory.
    Asserts: A unix ADDR is a socket directly inside that directory.
    """
    shared = await t.shared()
    hs = shared.launched.handshake
    assert hs is not None
    if hs.network != "unix":
        skip("the plugin listens on tcp")
    expect(
        os.path.dirname(hs.address) == shared.launched.socket_dir,
        f"the socket {hs.address} is not directly inside PLUGIN_UNIX_SOCKET_DIR="
        f"{shared.launched.socket_dir}",
    )
    expect(stat.S_ISSOCK(os.stat(hs.address).st_mode), f"{hs.address} is not a socket")


@case("plugin/transport/unix-socket-mode", requirements=["TR-2"], profile=Profile.TRANSPORT)
async def unix_socket_mode(t: PluginTarget) -> None:
    """
    Purpose: Only the host's user can connect to the plugin.
    Procedure: Start the plugin; look at its socket file.
    Asserts: The socket grants no permission to other users (no bits of 0007).
    """
    shared = await t.shared()
    hs = shared.launched.handshake
    assert hs is not None
    if hs.network != "unix":
        skip("the plugin listens on tcp")
    mode = stat.S_IMODE(os.stat(hs.address).st_mode)
    expect(not mode & 0o007, f"the socket {hs.address} has mode {mode:04o}; others may connect")


@case(
    "plugin/transport/prefers-unix",
    requirements=["TR-7"],
    profile=Profile.TRANSPORT,
    level=Level.SHOULD,
)
async def prefers_unix(t: PluginTarget) -> None:
    """
    Purpose: On systems with unix sockets, plugins use them.
    Procedure: Start the plugin as a host does.
    Asserts: The handshake's NETWORK is unix.
    """
    network = await _network(t)
    expect(network == "unix", f"the plugin listens on {network}, not unix")


def _ipv4(ip: str) -> str:
    """An IPv4-mapped IPv6 address (::ffff:127.0.0.1, as gRPC binds) as plain IPv4."""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _port_window() -> tuple[int, int]:
    low = random.randrange(20000, 30000)
    return low, low + 15


@case("plugin/transport/tcp-port-range", requirements=["TR-4", "TR-5"], profile=Profile.TRANSPORT)
async def tcp_port_range(t: PluginTarget) -> None:
    """
    Purpose: A tcp plugin stays inside the ports the host allows, on loopback only.
    Procedure: Start a plugin that uses tcp with PLUGIN_MIN_PORT..PLUGIN_MAX_PORT set to a
      16-port window.
    Asserts: Its port is inside the window, and every socket it listens on is bound to
      127.0.0.1.
    """
    if await _network(t) != "tcp":
        skip("the plugin listens on unix")
    low, high = _port_window()
    fresh = await t.launch(connect=False, port_range=(low, high))
    port = fresh.handshake.address.rpartition(":")[2]
    expect(
        port.isdigit() and low <= int(port) <= high,
        f"the plugin listens on {fresh.handshake.address}, outside {low}..{high}",
    )
    listening = [
        c.laddr
        for c in psutil.Process(fresh.pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    wild = [f"{a.ip}:{a.port}" for a in listening if _ipv4(a.ip) != "127.0.0.1"]
    expect(not wild, f"the plugin also listens on {', '.join(wild)}, off 127.0.0.1")


@case("plugin/transport/tcp-bad-port-range", requirements=["TR-6"], profile=Profile.TRANSPORT)
async def tcp_bad_port_range(t: PluginTarget) -> None:
    """
    Purpose: A tcp plugin given an unusable port range says so instead of listening elsewhere.
    Procedure: Start a plugin that uses tcp with PLUGIN_MIN_PORT greater than
      PLUGIN_MAX_PORT.
    Asserts: It exits with a non-zero status within 5 s, with a message on stderr and
      nothing on stdout.
    """
    if await _network(t) != "tcp":
        skip("the plugin listens on unix")
    fresh = await t.spawn(port_range=(25000, 24000))
    problems = await refusal_problems(fresh, status=None)
    expect(not problems, "with PLUGIN_MIN_PORT=25000 PLUGIN_MAX_PORT=24000: " + "; ".join(problems))


@case(
    "plugin/transport/socket-removed",
    requirements=["TR-3"],
    profile=Profile.TRANSPORT,
)
async def socket_removed(t: PluginTarget) -> None:
    """
    Purpose: A plugin that is stopped cleans up after itself, but not the host's directory.
    Procedure: Start the plugin, call GRPCController/Shutdown, and wait up to 2 s for it to
      exit.
    Asserts: Its socket file is gone and PLUGIN_UNIX_SOCKET_DIR is still there.
    """
    if await _network(t) != "unix":
        skip("the plugin listens on tcp")
    fresh = await t.launch()
    address = fresh.handshake.address
    await fresh.request_shutdown()
    expect(await fresh.wait_exit(2.0), "the plugin did not exit within 2 s of Shutdown")
    expect(not os.path.exists(address), f"the socket {address} is still there after the exit")
    expect(
        os.path.isdir(fresh.launched.socket_dir),
        f"the plugin removed the host's directory {fresh.launched.socket_dir}",
    )


def _health_request_of_size(size: int) -> health_pb2.HealthCheckRequest:
    """A HealthCheckRequest whose serialized size is exactly ``size`` bytes."""
    name_len = size - 5  # 1 tag byte, 4 length bytes (for 2**21 <= n < 2**28)
    request = health_pb2.HealthCheckRequest(service="x" * name_len)
    assert request.ByteSize() == size
    return request


@case("plugin/transport/accepts-4mib-messages", requirements=["TR-10"], profile=Profile.TRANSPORT)
async def accepts_4mib_messages(t: PluginTarget) -> None:
    """
    Purpose: Either side may send messages up to gRPC's default 4 MiB limit.
    Procedure: Send the plugin a health check whose request is exactly 4194304 bytes (a
      service name of that length).
    Asserts: The plugin answers it (NOT_FOUND, the unknown service), rather than refusing
      the message with RESOURCE_EXHAUSTED.
    """
    shared = await t.shared()
    request = _health_request_of_size(GRPC_MAX_MESSAGE_BYTES)
    try:
        await shared.health.Check(request, timeout=10)
    except grpc.aio.AioRpcError as exc:
        expect(
            exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"a {GRPC_MAX_MESSAGE_BYTES}-byte request was refused: {exc.code().name}: "
            f"{show(exc.details() or '')}",
        )
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            fail(
                f"a {GRPC_MAX_MESSAGE_BYTES}-byte health check failed with "
                f"{exc.code().name}: {show(exc.details() or '')}"
            )
