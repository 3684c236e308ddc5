"""Transport at its exact limits: a port range of one port."""

from __future__ import annotations

import socket

from pluginconf.host.errors import LaunchError
from pluginconf.runner import Profile, case, expect, skip
from pluginconf.runner.plugin.target import PluginTarget


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@case("plugin/transport/tcp-one-port-range", requirements=["TR-5"], profile=Profile.TRANSPORT)
async def tcp_one_port_range(t: PluginTarget) -> None:
    """
    Purpose: A port range is inclusive at both ends: PLUGIN_MIN_PORT equal to PLUGIN_MAX_PORT
      leaves the plugin exactly one port.
    Procedure: Find a free port p; start a plugin that uses tcp with PLUGIN_MIN_PORT and
      PLUGIN_MAX_PORT both p.
    Asserts: It starts and listens on 127.0.0.1:p.
    """
    shared = await t.shared(calls=False)
    assert shared.launched.handshake is not None
    if shared.launched.handshake.network != "tcp":
        skip("the plugin listens on unix")
    port = _free_port()
    try:
        fresh = await t.launch(connect=False, port_range=(port, port))
    except LaunchError as exc:
        expect(
            False, f"with PLUGIN_MIN_PORT=PLUGIN_MAX_PORT={port}, the plugin did not start: {exc}"
        )
        return
    expect(
        fresh.handshake.address == f"127.0.0.1:{port}",
        f"with PLUGIN_MIN_PORT=PLUGIN_MAX_PORT={port}, the plugin listens on "
        f"{fresh.handshake.address}",
    )
