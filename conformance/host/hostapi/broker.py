"""Broker, host side: one stream per process, announcements, and what happens to them.

The fakes record each ConnInfo the host sends and how the stream ended (scenario key
`broker`), and probe each announced address. The host dials nothing of the plugin's in this
protocol, so its dialling side (BR-5, BR-6, BR-11) is not observable here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket

from pluginconf.fake.scenario.spec import ConnInfoSection, ScenarioSpec
from pluginconf.runner import Profile, case, check, expect, skip
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.fake_plugin import FakePlugin
from pluginconf.runner.host.observer import Observed
from pluginconf.runner.host.target import HostTarget

from ._helpers import call_ok, require_host_api, run_ops

PROBED: ScenarioSpec = {"host_api": {"commands": True}, "broker": {"probe": True}}
# BR-10/BR-12 are about the host's clean-up; a generous deadlock guard for it to happen.
GONE_WITHIN_S = 10.0
STOP_EVENTS = ("shutdown_requested", "signal", "stopping")


def _stop_began(plugin: FakePlugin, pid: int) -> int | None:
    """The seq at which the host began stopping process ``pid`` (OnDeactivate or later)."""
    marks = [e.seq for e in plugin.calls("OnDeactivate", pid)]
    marks += [e.seq for e in plugin.events(None, pid) if e.event in STOP_EVENTS]
    return min(marks) if marks else None


def _streams(plugin: FakePlugin, pid: int) -> list[Observed]:
    return [
        e for e in plugin.events("rpc", pid) if e.get("method") == "/plugin.GRPCBroker/StartStream"
    ]


def _reachable(network: str, address: str) -> str | None:
    """What answers at an announced address now: None when nothing does."""
    if network == "unix":
        if not os.path.exists(address):
            return None
        family, target = socket.AF_UNIX, address
    else:
        host, _, port = address.rpartition(":")
        family, target = socket.AF_INET, (host, int(port))  # type: ignore[assignment]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        try:
            sock.connect(target)
        except OSError:
            return "the socket file is still there" if network == "unix" else None
    return "a server still accepts connections there"


async def _wait_gone(network: str, address: str) -> str | None:
    """Bounded wait for the host's clean-up of an announced server; what remains, if any."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GONE_WITHIN_S
    while True:
        left = _reachable(network, address)
        if left is None or loop.time() > deadline:
            return left
        await asyncio.sleep(0.05)


@case("host/broker/one-stream", requirements=["BR-2"], profile=Profile.TRANSPORT)
async def one_stream(t: HostTarget) -> None:
    """
    Purpose: The host opens exactly one broker stream per plugin process and keeps it open
      until it stops the plugin.
    Procedure: Load a fake, call HostAPI through it, disable it; with restarts, also kill a
      first process and let the host start a second.
    Asserts: Each process saw one StartStream, which the host did not end before it began
      stopping that process (OnDeactivate, Shutdown or a signal).
    """
    plugin = await t.load(PROBED)
    if t.supports(Capability.RESTARTS):
        plugin.kill(plugin.pids()[-1])
        await plugin.wait_started(2)
        await plugin.wait_active()
    if t.supports(Capability.HOST_API):
        await run_ops(plugin, [{"op": "kv_set", "key": "k", "value": "v"}])
    await plugin.disable()
    for pid in plugin.pids():
        streams = _streams(plugin, pid)
        check(
            len(streams) == 1,
            f"process {pid} saw {len(streams)} StartStream calls; the host must open exactly "
            f"one per process (BR-2)\n{plugin.evidence()}",
        )
        began = _stop_began(plugin, pid)
        early = [
            e
            for e in plugin.events("broker_stream_end", pid)
            if str(e.get("by")).startswith("host") and (began is None or e.seq < began)
        ]
        check(
            not early,
            f"the host ended the broker stream of process {pid} "
            f"({early[0].get('by') if early else ''}) before it began stopping the plugin "
            f"(BR-2)\n{plugin.evidence()}",
        )


@case("host/broker/stream-order", requirements=["BR-13"], profile=Profile.TRANSPORT)
async def stream_order(t: HostTarget) -> None:
    """
    Purpose: The broker stream is opened after the health check and before OnActivate.
    Procedure: Load a fake and read the order of what it observed.
    Asserts: The first SERVING health answer precedes StartStream, which precedes OnActivate.
    """
    plugin = await t.load({})
    pid = plugin.pids()[-1]
    streams = _streams(plugin, pid)
    if not streams:
        skip(
            "the host opened no broker stream, so there is no order to check; "
            "host/broker/one-stream reports the missing stream (BR-2)"
        )
    serving = [
        e
        for e in plugin.events("health_answer", pid)
        if e.get("answer") == "SERVING" and e.get("service") in ("", "plugin")
    ]
    check(
        serving and serving[0].seq < streams[0].seq,
        f"the host opened the broker stream before its health check was answered SERVING "
        f"(BR-13)\n{plugin.evidence()}",
    )
    activate = plugin.calls("OnActivate", pid)
    check(
        not activate or streams[0].seq < activate[0].seq,
        f"the host called OnActivate before it opened the broker stream (BR-13)\n"
        f"{plugin.evidence()}",
    )


@case(
    "host/broker/announcements",
    requirements=["BR-3", "BR-4", "BR-8"],
    profile=Profile.TRANSPORT,
)
async def announcements(t: HostTarget) -> None:
    """
    Purpose: What the host announces on the stream: an id of its own, a listening address on
      a unix socket or 127.0.0.1, and no knock.
    Procedure: Load a fake that connects to each address the host announces as it arrives.
    Asserts: Every ConnInfo has a non-zero id unused before on the stream (BR-4), network
      unix or tcp on 127.0.0.1, already listening when announced (BR-3), and knock unset
      (BR-8).
    """
    require_host_api(t, "an announcement to look at")
    plugin = await t.load(PROBED)
    await plugin.wait_event("broker_probe")
    infos = plugin.events("broker_conninfo")
    expect(infos, f"the host announced nothing on the broker stream\n{plugin.evidence()}")
    seen: set[int] = set()
    for info in infos:
        sid, network, address = info.get("service_id"), info.get("network"), info.get("address")
        check(
            sid != 0 and sid not in seen,
            f"the host announced id {sid}, {'0' if sid == 0 else 'already used'} (BR-4)",
            requirement="BR-4",
        )
        seen.add(sid)
        local = network == "unix"
        if network == "tcp":
            host = str(address).rpartition(":")[0].strip("[]")
            try:
                local = ipaddress.ip_address(host) == ipaddress.ip_address("127.0.0.1")
            except ValueError:
                local = False
        check(
            local,
            f"the host announced id {sid} on {network} {address!r}; a unix socket or "
            "127.0.0.1 is required (BR-3)",
            requirement="BR-3",
        )
        check(
            not info.get("knock_set"),
            f"the host's ConnInfo for id {sid} has the knock field set ({info.get('knock')}); "
            "it must be left unset (BR-8)",
            requirement="BR-8",
        )
    for probe in plugin.events("broker_probe"):
        check(
            probe.get("listening"),
            f"id {probe.get('service_id')} was announced before anything listened there: "
            f"{probe.get('connect_error')} (BR-3)",
            requirement="BR-3",
        )


@case("host/broker/unusable-conninfo", requirements=["BR-9", "BR-8"], profile=Profile.HOOKS)
async def unusable_conninfo(t: HostTarget) -> None:
    """
    Purpose: A ConnInfo the host cannot use does not end the stream.
    Procedure: Load a fake that sends, as the stream opens, a ConnInfo with an unknown
      network, one asking for a knock, one with an address that does not exist, and one of
      id 0; then use HostAPI and disable the plugin.
    Asserts: The host did not end the stream before it began stopping the plugin, and
      HostAPI still answers.
    """
    sends: list[ConnInfoSection] = [
        {"service_id": 901, "network": "udp", "address": "/nowhere"},
        {"service_id": 902, "network": "unix", "address": "/nonexistent/b.sock", "knock": True},
        {"service_id": 903, "network": "unix", "address": "/nonexistent/c.sock"},
        {"service_id": 0, "network": "tcp", "address": "127.0.0.1:1"},
    ]
    plugin = await t.load({"host_api": {"commands": True}, "broker": {"send": sends}})
    if t.supports(Capability.HOST_API):
        (result,) = await run_ops(plugin, [{"op": "kv_get", "key": "k"}])
        call_ok(result, "KVGet after the unusable ConnInfo", ("BR-9", "BR-8"))
    await plugin.disable()
    pid = plugin.pids()[-1]
    began = _stop_began(plugin, pid)
    early = [
        e
        for e in plugin.events("broker_stream_end", pid)
        if str(e.get("by")).startswith("host") and (began is None or e.seq < began)
    ]
    check(
        not early,
        f"the host ended the broker stream ({early[0].get('by') if early else ''}) after "
        f"ConnInfo it could not use, before it stopped the plugin (BR-9, BR-8)\n"
        f"{plugin.evidence()}",
    )


async def _announced(plugin: FakePlugin) -> list[Observed]:
    await plugin.wait_event("broker_conninfo")
    return plugin.events("broker_conninfo")


async def _check_closed(infos: list[Observed], when: str, rule: str) -> None:
    """Nothing listens, and no socket file remains, at any address announced in ``infos``."""
    for info in infos:
        left = await _wait_gone(str(info.get("network")), str(info.get("address")))
        check(
            left is None,
            f"{when}, at the address announced for id "
            f"{info.get('service_id')} ({info.get('address')}) {left} ({rule})",
        )


@case("host/broker/servers-closed-on-stop", requirements=["BR-10"], profile=Profile.HOOKS)
async def servers_closed_on_stop(t: HostTarget) -> None:
    """
    Purpose: Stopping a plugin closes the servers the host announced to it and removes their
      sockets.
    Procedure: Load a fake, note what the host announced, disable the plugin.
    Asserts: Nothing listens at any announced address afterwards, and no socket file remains.
    """
    require_host_api(t, "an announced server")
    plugin = await t.load({})
    infos = await _announced(plugin)
    await plugin.disable()
    await _check_closed(infos, "after the plugin was stopped", "BR-10")


@case("host/broker/servers-closed-on-exit", requirements=["BR-12"], profile=Profile.HOOKS)
async def servers_closed_on_exit(t: HostTarget) -> None:
    """
    Purpose: A plugin process that exits on its own takes the servers announced to it along.
    Procedure: Load a fake, note what the host announced, kill the process.
    Asserts: Once the host has seen the exit, nothing listens at any address announced to
      that process and no socket file remains.
    """
    require_host_api(t, "an announced server")
    plugin = await t.load({})
    infos = await _announced(plugin)
    plugin.kill(plugin.pids()[-1])
    await plugin.wait_state("crashed", "restarting", "failed")
    await _check_closed(infos, "after the plugin process exited", "BR-12")


@case("host/broker/auto-mtls", requirements=["BR-7"], profile=Profile.HOOKS)
async def auto_mtls(t: HostTarget) -> None:
    """
    Purpose: Under AutoMTLS, brokered connections use the main connection's certificates.
    Procedure: Load a fake with AutoMTLS; it probes the announced HostAPI server with a
      plaintext HTTP/2 client and with a TLS client that presents no certificate, then calls
      HostAPI through its broker dial (its own certificate; the host's verified for the name
      localhost).
    Asserts: Both probes are refused, and the HostAPI calls succeed.
    """
    require_host_api(t, "a brokered server")
    t.require_auto_mtls()
    plugin = await t.load(PROBED, auto_mtls=True)
    probe = await plugin.wait_event("broker_probe")
    check(
        probe.get("plaintext") != "accepted",
        f"under AutoMTLS the brokered server for id {probe.get('service_id')} accepted a "
        "plaintext HTTP/2 client (BR-7)",
    )
    check(
        probe.get("tls_without_client_cert") != "accepted",
        f"under AutoMTLS the brokered server for id {probe.get('service_id')} let in a TLS "
        "client without a certificate; it must require the plugin's (BR-7)",
    )
    results = await run_ops(
        plugin, [{"op": "kv_set", "key": "k", "value": "v"}, {"op": "kv_get", "key": "k"}]
    )
    for result in results:
        call_ok(result, f"{result['op']} over the brokered TLS connection", "BR-7")
