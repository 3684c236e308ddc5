"""The plugin's own brokered servers: what it announces on the broker stream, and their end.

pluginconf.v1 asks no plugin to offer a service through the broker (only the host serves
one, HostAPI), but a go-plugin plugin may (GRPCBroker.AcceptAndServe); whatever a plugin does
announce follows BR-3, BR-4, BR-8, BR-10 and BR-12.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass

import grpc

from pluginconf._grpc_compat import EOF
from pluginconf.goplugin import grpc_broker_pb2, grpc_broker_pb2_grpc
from pluginconf.runner import Profile, case, check, skip
from pluginconf.runner.plugin.fresh import FreshPlugin
from pluginconf.runner.plugin.target import PluginTarget
from pluginconf.v1 import hooks_pb2

from .._helpers import EXIT_GUARD_S

# How long a plugin is given to announce after the stream opens (and after OnActivate): the
# window of the stimulus, not a SPEC bound. A plugin that announces later is not checked.
_WINDOW_S = 0.3
# Deadlock guards.
_PROBE_GUARD_S = 2.0
_CLOSE_GUARD_S = 5.0


@dataclass
class _Offer:
    info: grpc_broker_pb2.ConnInfo
    listening: bool  # accepted a connection the moment its announcement arrived


async def _reachable(network: str, address: str) -> bool:
    """Whether something accepts a connection at the address (a connect, no protocol)."""
    try:
        if network == "unix":
            opening = asyncio.open_unix_connection(address)
        elif network == "tcp":
            host, _, port = address.rpartition(":")
            opening = asyncio.open_connection(host, int(port))
        else:
            return False
        _, writer = await asyncio.wait_for(opening, _PROBE_GUARD_S)
    except (OSError, ValueError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class _Offers:
    """A broker stream opened as the host does; each announcement is probed as it arrives."""

    def __init__(self, fresh: FreshPlugin) -> None:
        self._call = grpc_broker_pb2_grpc.GRPCBrokerStub(fresh.connection).StartStream(None)
        self.offers: list[_Offer] = []
        self._arrived = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            while True:
                info = await self._call.read()
                if info is EOF:
                    return
                assert isinstance(info, grpc_broker_pb2.ConnInfo)
                listening = await _reachable(info.network, info.address)
                self.offers.append(_Offer(info, listening))
                self._arrived.set()

    async def wait(self) -> bool:
        """Whether the plugin announced anything within the window."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), _WINDOW_S)
        return bool(self.offers)

    async def end(self) -> None:
        """End the stream: half-close it and let the plugin end its side (a cancellation at
        once can be lost with the half-close in grpcio), then cancel what is left."""
        with contextlib.suppress(grpc.aio.AioRpcError, grpc.aio.UsageError, RuntimeError):
            await asyncio.wait_for(self._call.done_writing(), _PROBE_GUARD_S)
        await asyncio.wait({self._reader}, timeout=_PROBE_GUARD_S)
        self._call.cancel()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def _open(t: PluginTarget) -> tuple[FreshPlugin, _Offers, bool]:
    fresh = await t.launch()
    offers = _Offers(fresh)
    announced = await offers.wait()
    if not announced and t.profile.includes(Profile.HOOKS):
        # As a host does next: a plugin may offer its services when it is activated.
        await fresh.hooks.Implemented(hooks_pb2.ImplementedRequest(), timeout=10)
        await fresh.hooks.OnActivate(hooks_pb2.OnActivateRequest(plugin_id="p"), timeout=10)
        announced = await offers.wait()
    return fresh, offers, announced


def _announcement_problems(offers: list[_Offer]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"BR-3": [], "BR-4": [], "BR-8": []}
    seen: set[int] = set()
    for offer in offers:
        info = offer.info
        what = f"ConnInfo{{service_id={info.service_id}, {info.network} {info.address!r}}}"
        if info.service_id == 0:
            found["BR-4"].append(f"{what}: id 0 means no service")
        elif info.service_id in seen:
            found["BR-4"].append(f"{what}: id {info.service_id} announced twice")
        seen.add(info.service_id)
        knock = info.knock
        if knock.knock or knock.ack or knock.error:
            found["BR-8"].append(f"{what}: knock is set ({str(knock).strip()})")
        if info.network == "unix":
            if not os.path.isabs(info.address):
                found["BR-3"].append(f"{what}: not an absolute socket path")
        elif info.network == "tcp":
            if info.address.rpartition(":")[0] != "127.0.0.1":
                found["BR-3"].append(f"{what}: not on 127.0.0.1")
        else:
            found["BR-3"].append(f"{what}: network is neither unix nor tcp")
        if not offer.listening:
            found["BR-3"].append(f"{what}: nothing accepted a connection when it arrived")
    return found


async def _left_open(offers: list[_Offer], guard_s: float) -> list[str]:
    """The announced servers still reachable, or whose socket file is still there, once the
    guard has passed (polled: nothing signals a closed listener)."""
    deadline = time.monotonic() + guard_s
    while True:
        left = []
        for offer in offers:
            info = offer.info
            if info.network == "unix" and os.path.exists(info.address):
                left.append(f"id {info.service_id}: {info.address} still exists")
            elif await _reachable(info.network, info.address):
                left.append(f"id {info.service_id}: {info.address} still accepts connections")
        if not left or time.monotonic() >= deadline:
            return left
        await asyncio.sleep(0.05)


@case(
    "plugin/broker/plugin-announcements",
    requirements=["BR-3", "BR-4", "BR-8", "BR-10", "BR-12"],
    profile=Profile.TRANSPORT,
)
async def plugin_announcements(t: PluginTarget) -> None:
    """
    Purpose: A server the plugin offers through the broker is one the host can dial, and it
      goes away with the stream or the plugin.
    Procedure: On a new process open plugin.GRPCBroker/StartStream and wait 300 ms for
      announcements (then, with the hooks profile, call OnActivate and wait 300 ms more),
      connecting to each announced address as soon as it arrives; end the stream. On a
      second process, open the stream, take its announcements and call Shutdown. Skipped
      when the plugin announces nothing.
    Asserts: Each ConnInfo has an address on a unix socket (absolute path) or on
      127.0.0.1 that accepts a connection when it arrives (BR-3), a non-zero id not
      announced before (BR-4), and no knock (BR-8); once the stream has ended the servers
      are closed and their sockets removed (BR-12; 5 s at most), and so they are once the
      plugin has stopped after Shutdown (BR-10).
    """
    _, offers, announced = await _open(t)
    if not announced:
        await offers.end()
        skip(
            "the plugin announced no brokered server on GRPCBroker/StartStream (pluginconf.v1 "
            "asks none of a plugin): BR-3, BR-4, BR-8, BR-10 and BR-12 have nothing to check"
        )
    for rule, problems in _announcement_problems(offers.offers).items():
        check(not problems, "; ".join(problems), requirement=rule)
    await offers.end()
    left = await _left_open(offers.offers, _CLOSE_GUARD_S)
    check(
        not left,
        f"{_CLOSE_GUARD_S:g} s after the host ended the broker stream: " + "; ".join(left),
        requirement="BR-12",
    )
    second, offers, announced = await _open(t)
    if not announced:
        await offers.end()
        return  # nothing offered this time: no server of its own to outlive Shutdown
    await second.request_shutdown()
    exited = await second.wait_exit(EXIT_GUARD_S)
    await offers.end()
    left = await _left_open(offers.offers, 0.0 if exited else _CLOSE_GUARD_S)
    check(
        not left,
        f"after Shutdown ({'exited' if exited else 'still running'}): " + "; ".join(left),
        requirement="BR-10",
    )
