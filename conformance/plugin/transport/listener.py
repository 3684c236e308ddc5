"""Transport: where and how the plugin listens, what it leaves behind, message sizes."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import stat

import grpc
import psutil
from grpc_health.v1 import health_pb2

from pluginconf.host.errors import LaunchError
from pluginconf.protocol.constants import ENV_UNIX_SOCKET_DIR, GRPC_MAX_MESSAGE_BYTES
from pluginconf.runner import Level, Profile, case, check, expect, fail, skip
from pluginconf.runner.plugin.addresses import SharedAddress, plain_ip, tcp_port
from pluginconf.runner.plugin.socket_access import (
    OTHER_UID,
    connect_as,
    judge_others,
    open_directory,
)
from pluginconf.runner.plugin.target import PluginTarget

from .._helpers import EXIT_GUARD_S, refusal, show


async def _network(t: PluginTarget) -> str:
    shared = await t.shared(calls=False)
    assert shared.launched.handshake is not None
    return shared.launched.handshake.network


@case("plugin/transport/unix-socket-dir", requirements=["TR-1"], profile=Profile.TRANSPORT)
async def unix_socket_dir(t: PluginTarget) -> None:
    """
    Purpose: The plugin's socket is in the private directory the host made for it.
    Procedure: Start the plugin with PLUGIN_UNIX_SOCKET_DIR set to a new 0700 directory (not
      under a target whose host never sets it, such as Terraform's).
    Asserts: A unix ADDR is a socket directly inside that directory.
    """
    if not t.options.target.sets_unix_socket_dir:
        skip(
            f"the {t.options.target.name} target's host never sets PLUGIN_UNIX_SOCKET_DIR "
            "(go-plugin's client sets it only for a RunnerFunc), so its plugins need not read it"
        )
    shared = await t.shared(calls=False)
    hs = shared.launched.handshake
    assert hs is not None
    if hs.network != "unix":
        skip("the plugin listens on tcp")
    check(
        os.path.dirname(hs.address) == shared.launched.socket_dir,
        f"the socket {hs.address} is not directly inside PLUGIN_UNIX_SOCKET_DIR="
        f"{shared.launched.socket_dir}",
    )
    check(
        os.path.exists(hs.address) and stat.S_ISSOCK(os.stat(hs.address).st_mode),
        f"{hs.address} is not a socket",
    )


async def _socket_access(t: PluginTarget, where: str, env: dict[str, str | None]) -> str | None:
    """Start the plugin with ``env``; None when others cannot connect to its socket, else
    the evidence. As root, a real connection attempt as another user decides."""
    fresh = await t.launch(connect=False, env=env)
    address = fresh.handshake.address
    try:
        access = judge_others(address)
    except OSError as exc:
        return f"{where}: its socket {address} cannot be examined: {exc}"
    tried = await connect_as(address)
    await fresh.close()
    if tried is None:
        return f"{where}: {address}: {access.reason}" if access.others_can_connect else None
    # The kernel decides, where the modes and it disagree (an ACL, a security module).
    if tried:
        return f"{where}: {address}: {access.reason}; uid {OTHER_UID}'s connection was accepted"
    return None


@case("plugin/transport/unix-socket-mode", requirements=["TR-2"], profile=Profile.TRANSPORT)
async def unix_socket_mode(t: PluginTarget) -> None:
    """
    Purpose: Only the host's user can connect to the plugin, even where other users may
      reach its socket's directory.
    Procedure: Start the plugin twice with its socket where others may search: with
      PLUGIN_UNIX_SOCKET_DIR set to a new directory of mode 0755, and, as go-plugin's host
      starts plugins, without PLUGIN_UNIX_SOCKET_DIR and with TMPDIR such a directory. Look
      at each socket and the directories above it; when the suite runs as root, also try
      to connect to it as another user (uid 65534), which decides.
    Asserts: Others cannot connect: the socket grants them no write permission (0002;
      connect(2) needs write permission, so 0755 is enough), or a directory on its path no
      search permission.
    """
    if await _network(t) != "unix":
        skip("the plugin listens on tcp")
    with open_directory() as directory:
        if directory is None:
            skip("no directory whose whole path others may search, to put the socket in")
        launches: list[tuple[str, dict[str, str | None]]] = [
            (
                f"with PLUGIN_UNIX_SOCKET_DIR={directory} (mode 0755)",
                {ENV_UNIX_SOCKET_DIR: directory, "TMPDIR": directory},
            ),
            (
                f"without PLUGIN_UNIX_SOCKET_DIR, TMPDIR={directory} (mode 0755)",
                {ENV_UNIX_SOCKET_DIR: None, "TMPDIR": directory},
            ),
        ]
        for where, env in launches:
            problem = await _socket_access(t, where, env)
            check(problem is None, f"others may connect {problem}")


@case(
    "plugin/transport/own-socket-dir",
    requirements=["TR-12", "TR-13"],
    profile=Profile.TRANSPORT,
)
async def own_socket_dir(t: PluginTarget) -> None:
    """
    Purpose: A plugin given no socket directory makes a private one, and removes it.
    Procedure: Start the plugin without PLUGIN_UNIX_SOCKET_DIR, TMPDIR a new directory; look
      at where its socket is; send SIGTERM and wait (10 s at most) for it to exit.
    Asserts: The socket is inside a new directory of mode 0700 under TMPDIR, owned by the
      host's user (TR-12); once the plugin has exited, its socket and that directory are gone
      (TR-13).
    """
    if await _network(t) != "unix":
        skip("the plugin listens on tcp")
    fresh = await t.launch(connect=False, env={ENV_UNIX_SOCKET_DIR: None})
    address = fresh.handshake.address
    parent = os.path.dirname(address)
    inside = os.path.commonpath([parent, fresh.tmpdir]) == fresh.tmpdir
    own = inside and parent != fresh.tmpdir and os.path.isdir(parent)
    if not own:
        check(
            False,
            f"the socket {address} is not in a directory of its own under TMPDIR={fresh.tmpdir}",
            requirement="TR-12",
        )
    else:
        info = os.stat(parent)
        mode = stat.S_IMODE(info.st_mode)
        check(
            mode == 0o700 and info.st_uid == os.getuid(),
            f"the socket's directory {parent} has mode {mode:04o} and owner uid "
            f"{info.st_uid}; expected 0700, owned by uid {os.getuid()}",
            requirement="TR-12",
        )
    fresh.signal(signal.SIGTERM)
    if not await fresh.wait_exit(EXIT_GUARD_S):
        return  # plugin/controller/sigterm reports a plugin that SIGTERM does not stop
    check(
        not os.path.lexists(address),
        f"the socket {address} is still there after the plugin exited on SIGTERM",
        requirement="TR-13",
    )
    if own:
        check(
            not os.path.lexists(parent),
            f"the directory {parent} the plugin made is still there after it exited on SIGTERM",
            requirement="TR-13",
        )


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


def _port_window() -> tuple[int, int]:
    low = random.randrange(20000, 30000)
    return low, low + 15


@case("plugin/transport/tcp-port-range", requirements=["TR-4", "TR-5"], profile=Profile.TRANSPORT)
async def tcp_port_range(t: PluginTarget) -> None:
    """
    Purpose: A tcp plugin stays inside the ports the host allows, on loopback only.
    Procedure: Start a plugin that uses tcp with PLUGIN_MIN_PORT..PLUGIN_MAX_PORT set to a
      16-port window.
    Asserts: Its port is inside the window (TR-5), and every socket it listens on is bound
      to 127.0.0.1 (TR-4).
    """
    if await _network(t) != "tcp":
        skip("the plugin listens on unix")
    low, high = _port_window()
    fresh = await t.launch(connect=False, port_range=(low, high))
    port = fresh.handshake.address.rpartition(":")[2]
    check(
        port.isdigit() and low <= int(port) <= high,
        f"the plugin listens on {fresh.handshake.address}, outside {low}..{high}",
        requirement="TR-5",
    )
    listening = [
        c.laddr
        for c in psutil.Process(fresh.pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    wild = [f"{a.ip}:{a.port}" for a in listening if plain_ip(a.ip) != "127.0.0.1"]
    check(
        not wild,
        f"the plugin also listens on {', '.join(wild)}, off 127.0.0.1",
        requirement="TR-4",
    )


@case(
    "plugin/transport/tcp-bad-port-range",
    requirements=["TR-6", "TR-15"],
    profile=Profile.TRANSPORT,
)
async def tcp_bad_port_range(t: PluginTarget) -> None:
    """
    Purpose: A tcp plugin given an unusable port range says so instead of listening elsewhere.
    Procedure: Start a plugin that uses tcp with PLUGIN_MIN_PORT greater than
      PLUGIN_MAX_PORT; then one with a range above 65535. Wait (10 s at most) for each to
      exit.
    Asserts: With min > max it does not listen, writes a message on stderr and nothing on
      stdout, and exits (TR-6), with a non-zero status (TR-15); ports outside 1..65535 are
      refused the same way (TR-15).
    """
    if await _network(t) != "tcp":
        skip("the plugin listens on unix")
    for (low, high), rule in (((25000, 24000), "TR-6"), ((70000, 70010), "TR-15")):
        where = f"with PLUGIN_MIN_PORT={low} PLUGIN_MAX_PORT={high}"
        seen = await refusal(await t.spawn(port_range=(low, high)))
        for problem in seen.problems(status=None):
            check(
                False,
                f"{where}: {problem}",
                requirement="TR-15" if problem.startswith("exit status 0") else rule,
            )


@case(
    "plugin/transport/socket-removed",
    requirements=["TR-3"],
    profile=Profile.TRANSPORT,
)
async def socket_removed(t: PluginTarget) -> None:
    """
    Purpose: A plugin that is stopped cleans up after itself, but not the host's directory.
    Procedure: Start the plugin, call GRPCController/Shutdown, and wait (10 s at most) for
      it to exit.
    Asserts: Its socket file is gone and PLUGIN_UNIX_SOCKET_DIR is still there.
    """
    if await _network(t) != "unix":
        skip("the plugin listens on tcp")
    fresh = await t.launch()
    address = fresh.handshake.address
    await fresh.request_shutdown()
    if not await fresh.wait_exit(EXIT_GUARD_S):
        skip(
            f"the plugin did not exit within {EXIT_GUARD_S:g} s of Shutdown, so what it "
            "leaves behind cannot be seen (plugin/controller/shutdown reports the exit)"
        )
    check(not os.path.exists(address), f"the socket {address} is still there after the exit")
    check(
        os.path.isdir(fresh.launched.socket_dir),
        f"the plugin removed the host's directory {fresh.launched.socket_dir}",
    )


# The host's default port range (HS-3), which the suite's launches set.
_HOST_PORTS = (10000, 25000)


@case(
    "plugin/transport/address-per-process",
    requirements=["TR-14", "TR-5"],
    profile=Profile.TRANSPORT,
)
async def address_per_process(t: PluginTarget) -> None:
    """
    Purpose: Each plugin process serves an address of its own, so that a host's calls to
      one never reach another (a plugin on a fixed port, as in go-plugin's Python example,
      lets two processes bind it).
    Procedure: Start two processes of the plugin at once, as a host does, and read both
      handshakes without calling either; when only one starts, stop it and start another
      alone.
    Asserts: The two announce different addresses, and neither fails to start only because
      the other holds its address (TR-14); a tcp address they share is within the host's
      port range 10000..25000 (TR-5).
    """
    first = await t.spawn()
    second = await t.spawn(alongside=True)
    outcomes = await asyncio.gather(
        first.launched.read_handshake(), second.launched.read_handshake(), return_exceptions=True
    )
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    for failure in failures:
        if not isinstance(failure, LaunchError):
            raise failure
    if len(failures) == 2:
        fail(
            f"neither of two processes started at once could start:\n{failures[0]}",
            requirement="TR-14",
        )
    if failures:
        first_failed = isinstance(outcomes[0], BaseException)
        running, failed = (second, first) if first_failed else (first, second)
        held = running.handshake
        await running.close()
        alone = await t.launch(connect=False)
        shared = SharedAddress(
            f"{alone.handshake.network}:{alone.handshake.address}",
            running.pid,
            failed.pid,
            f"of which the second could not start while the first served "
            f"{held.network}:{held.address}, and a process started alone later served",
        )
        check(False, f"{shared.evidence()}\n{failures[0]}", requirement="TR-14")
        announced = alone.handshake
    else:
        a, b = first.handshake, second.handshake
        if (a.network, a.address) != (b.network, b.address):
            return
        shared = SharedAddress(f"{a.network}:{a.address}", first.pid, second.pid, "both announced")
        check(False, shared.evidence(), requirement="TR-14")
        announced = a
    port = tcp_port(announced)
    if port is not None and not _HOST_PORTS[0] <= port <= _HOST_PORTS[1]:
        check(
            False,
            f"the address {announced.address} is outside the host's port range "
            f"{_HOST_PORTS[0]}..{_HOST_PORTS[1]} (PLUGIN_MIN_PORT..PLUGIN_MAX_PORT)",
            requirement="TR-5",
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
