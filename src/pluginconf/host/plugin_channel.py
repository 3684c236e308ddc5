"""The host's gRPC channel to a plugin: plaintext or AutoMTLS, and waiting until it is ready."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import grpc

from pluginconf.host.errors import HostError
from pluginconf.protocol.constants import TLS_SERVER_NAME
from pluginconf.protocol.handshake import HandshakeLine
from pluginconf.protocol.mtls import CertificatePair, der_to_pem


class TLSFailed(HostError):
    """The TLS handshake with the plugin failed (wait_ready)."""


def channel_target(handshake: HandshakeLine) -> str:
    """The gRPC target of the handshake's address."""
    if handshake.network == "unix":
        return f"unix:{handshake.address}"
    return handshake.address


def open_channel(
    handshake: HandshakeLine,
    client_cert: CertificatePair | None,
    options: Sequence[tuple[str, int | str]],
) -> grpc.aio.Channel:
    """A channel to the plugin: AutoMTLS when both sides have a certificate, else plaintext."""
    opts = list(options)
    if client_cert is not None and handshake.server_cert_der is not None:
        creds = grpc.ssl_channel_credentials(
            root_certificates=der_to_pem(handshake.server_cert_der),
            private_key=client_cert.key_pem,
            certificate_chain=client_cert.cert_pem,
        )
        opts.append(("grpc.ssl_target_name_override", TLS_SERVER_NAME))
        return grpc.aio.secure_channel(channel_target(handshake), creds, options=opts)
    return grpc.aio.insecure_channel(channel_target(handshake), options=opts)


async def wait_ready(channel: grpc.aio.Channel, handshake: HandshakeLine, tls: bool) -> None:
    """Until the channel is READY. Under AutoMTLS, a failed connection attempt to an
    address that accepts connections is a failed TLS handshake, which no retry mends:
    the wait ends at once (TLSFailed) rather than at the connect timeout (TLS-10)."""
    state = channel.get_state(try_to_connect=True)
    while state != grpc.ChannelConnectivity.READY:
        if (
            tls
            and state == grpc.ChannelConnectivity.TRANSIENT_FAILURE
            and await accepts_connections(handshake)
        ):
            raise TLSFailed
        await channel.wait_for_state_change(state)
        state = channel.get_state(try_to_connect=True)


async def accepts_connections(handshake: HandshakeLine, timeout_s: float = 1.0) -> bool:
    """Whether a plain connection to the address opens: tells a failed TLS handshake from an
    address nobody listens on."""
    try:
        async with asyncio.timeout(timeout_s):
            if handshake.network == "unix":
                _, writer = await asyncio.open_unix_connection(handshake.address)
            else:
                host, _, port = handshake.address.rpartition(":")
                _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
    except (OSError, TimeoutError, ValueError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
