"""The plugin's broker dials: AutoMTLS on brokered connections, and failures that name the id."""

from __future__ import annotations

import asyncio

import grpc

from pluginconf.goplugin import grpc_broker_pb2, grpc_broker_pb2_grpc
from pluginconf.host.hostapi import InMemoryHostAPI
from pluginconf.protocol.mtls import der_to_pem, generate_certificate
from pluginconf.runner import Profile, case, check, expect
from pluginconf.runner.plugin.fresh import FreshPlugin
from pluginconf.runner.plugin.shared import SUITE_PLUGIN_ID, broker_credentials
from pluginconf.runner.plugin.target import PluginTarget
from pluginconf.v1 import hooks_pb2

from .._helpers import announce, show
from ._helpers import hostapi_server

# BR-5's dial timeout; the suite waits this long plus a deadlock guard for a dial to fail.
_DIAL_TIMEOUT_S = 5.0
_GUARD_S = 20.0


class _Offer:
    """A HostAPI the suite serves on a unix socket for one plugin process."""

    def __init__(self, fresh: FreshPlugin, name: str, creds: grpc.ServerCredentials) -> None:
        self.hostapi = InMemoryHostAPI()
        self.server, self.path = hostapi_server(fresh, self.hostapi, name, creds)


async def _activate_and_set(fresh: FreshPlugin, service_id: int, offer: _Offer | None) -> str:
    """Announce ``offer`` under ``service_id`` (nothing when None), activate with that id,
    run "/kv set k v"; what the command answered, as text or AppError."""
    stream = grpc_broker_pb2_grpc.GRPCBrokerStub(fresh.connection).StartStream(None)
    try:
        if offer is not None:
            await offer.server.start()
            await announce(
                stream,
                grpc_broker_pb2.ConnInfo(service_id=service_id, network="unix", address=offer.path),
                why="before the offer was announced",
                requirement="BR-7",  # only the AutoMTLS case makes an offer
            )
        await fresh.hooks.OnActivate(
            hooks_pb2.OnActivateRequest(plugin_id=SUITE_PLUGIN_ID, host_api_broker_id=service_id),
            timeout=_GUARD_S,
        )
        answer = await fresh.hooks.ExecuteCommand(
            hooks_pb2.ExecuteCommandRequest(command="/kv set k v"), timeout=_GUARD_S
        )
    finally:
        stream.cancel()
        if offer is not None:
            await offer.server.stop(0)
    if answer.HasField("error"):
        return f"AppError {answer.error.code!r}: {answer.error.message}"
    return answer.text


@case("plugin/sdk/broker/dial-auto-mtls", requirements=["BR-7", "RB-10"], profile=Profile.SDK)
async def dial_auto_mtls(t: PluginTarget) -> None:
    """
    Purpose: Under AutoMTLS, the plugin's brokered connections are as well authenticated as
      its main one, both ways.
    Procedure: Start two processes with AutoMTLS. To the first, offer HostAPI under broker id
      3 on a server that presents the host's certificate and accepts only the plugin's (from
      its handshake); activate with id 3 and run "/kv set k v". To the second, offer it on a
      server presenting a certificate of its own, foreign to the plugin, that accepts the
      plugin's; the same.
    Asserts: The first command answers "ok" and the host's store holds k (the plugin
      presented its own certificate and trusted the host's); the second does not reach the
      foreign server (the plugin verified the server against the host's certificate).
    """
    t.needs_auto_mtls()
    fresh = await t.launch(auto_mtls=True)
    creds = broker_credentials(fresh.launched)
    expect(creds is not None, "the plugin gave no certificate in its handshake", requirement="BR-7")
    assert creds is not None
    offer = _Offer(fresh, "broker-3", creds)
    got = await _activate_and_set(fresh, 3, offer)
    check(
        got == "ok" and offer.hostapi.kv.get("k") == b"v",
        f'through HostAPI on a server with the host\'s certificate, "/kv set k v" answered '
        f"{show(got)} (the plugin must present its own certificate and verify the host's)",
        requirement="BR-7",
    )
    other = await t.launch(auto_mtls=True)
    assert other.handshake.server_cert_der is not None
    foreign = generate_certificate("pluginconf-foreign")
    foreign_creds = grpc.ssl_server_credentials(
        [(foreign.key_pem, foreign.cert_pem)],
        root_certificates=der_to_pem(other.handshake.server_cert_der),
        require_client_auth=True,
    )
    impostor = _Offer(other, "broker-3", foreign_creds)
    got = await _activate_and_set(other, 3, impostor)
    check(
        impostor.hostapi.kv.get("k") is None and got != "ok",
        f"the plugin used a brokered server whose certificate is not the host's: \"/kv set k "
        f'v" answered {show(got)}',
        requirement="BR-7",
    )


@case(
    "plugin/sdk/broker/dial-failure-names-id",
    requirements=["BR-11", "RB-10"],
    profile=Profile.SDK,
    timeout_s=90.0,
)
async def dial_failure_names_id(t: PluginTarget) -> None:
    """
    Purpose: A dial that fails tells which brokered service never came.
    Procedure: On a new process, open the broker stream, call OnActivate with broker id
      48611, which is never announced, wait out the 5 s dial timeout, then run
      "/kv set k v".
    Asserts: The command answers an AppError, and its message or the plugin's stderr names
      48611.
    """
    fresh = await t.launch()
    service_id = 48611
    got = await asyncio.wait_for(_activate_and_set(fresh, service_id, None), _GUARD_S * 2)
    await fresh.launched.wait_drained(0.5)
    stderr = fresh.stderr_text()
    expect(
        got.startswith("AppError"),
        f'"/kv set k v" answered {show(got)} with no HostAPI',
        requirement="RB-10",
    )
    check(
        str(service_id) in got or str(service_id) in stderr,
        f"the dial of broker id {service_id} failed, and neither the command's answer "
        f"({show(got)}) nor stderr ({show(stderr[-300:])}) names the id",
        requirement="BR-11",
    )
