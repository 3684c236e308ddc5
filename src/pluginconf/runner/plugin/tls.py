"""The suite's AutoMTLS connections to a plugin, through Python's ssl module.

grpcio's TLS stack cannot verify P-521 certificates, the curve go-plugin plugins use, so the
suite terminates TLS itself (as the SDK does for brokered dials) and gives gRPC a plain private
unix socket spliced to the TLS connection:

  suite's gRPC channel --plain--> private socket --TLS (ssl module)--> plugin's address
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from pluginconf.host.errors import TLSError
from pluginconf.host.launcher import LaunchedPlugin
from pluginconf.plugin.serving.tls_front import PrivateDir, Splicer, client_context, dial_through
from pluginconf.protocol.constants import TLS_SERVER_NAME
from pluginconf.protocol.handshake import HandshakeLine
from pluginconf.protocol.mtls import CertificatePair, der_to_pem


@dataclass
class TLSChannel:
    """A gRPC channel to the plugin over AutoMTLS; close() removes the private socket."""

    channel: grpc.aio.Channel
    _splicer: Splicer
    _private: PrivateDir

    async def close(self) -> None:
        await self.channel.close(None)
        await self._splicer.close()
        self._private.close()


def suite_client_context(
    handshake: HandshakeLine, client: CertificatePair | None
) -> ssl.SSLContext:
    """Trust exactly the plugin's handshake certificate; present ``client`` if given."""
    assert handshake.server_cert_der is not None
    server_pem = der_to_pem(handshake.server_cert_der)
    if client is not None:
        ctx = client_context(client.cert_pem, client.key_pem, server_pem)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_verify_locations(cadata=server_pem.decode())
        ctx.set_alpn_protocols(["h2"])
    # Judged as a go-plugin host would: Go's TLS takes keys that OpenSSL's default security
    # level refuses (RSA-1024, say); how strong a key must be is no requirement of the SPEC.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


async def tls_handshake(handshake: HandshakeLine, ctx: ssl.SSLContext, timeout_s: float) -> str:
    """Complete a TLS handshake with the plugin's listener; the version agreed.

    Raises ssl.SSLError (or OSError) when the handshake fails.
    """
    async with asyncio.timeout(timeout_s):
        if handshake.network == "unix":
            _, writer = await asyncio.open_unix_connection(
                handshake.address, ssl=ctx, server_hostname=TLS_SERVER_NAME
            )
        else:
            host, _, port = handshake.address.rpartition(":")
            _, writer = await asyncio.open_connection(
                host.strip("[]"), int(port), ssl=ctx, server_hostname=TLS_SERVER_NAME
            )
    try:
        tls = writer.get_extra_info("ssl_object")
        return str(tls.version()) if tls is not None else "none"
    finally:
        writer.close()


async def open_tls_channel(
    handshake: HandshakeLine,
    client: CertificatePair | None,
    options: list[tuple[str, int | str]] | None = None,
) -> TLSChannel:
    """A channel whose connections are TLS to ``handshake``'s address, as ``client``."""
    private = PrivateDir()
    try:
        splicer, target = await dial_through(
            private,
            "tls.sock",
            (handshake.network, handshake.address),
            suite_client_context(handshake, client),
        )
    except BaseException:
        private.close()
        raise
    return TLSChannel(grpc.aio.insecure_channel(target, options=options or []), splicer, private)


async def connect_plugin(
    launched: LaunchedPlugin, options: Sequence[tuple[str, int | str]]
) -> TLSChannel | None:
    """Open the suite's channel to a launched plugin and wait until it is ready; it becomes
    ``launched.channel``, so that stopping the plugin sends Shutdown through it.

    Plain when the launch set no PLUGIN_CLIENT_CERT; else AutoMTLS through the ssl module
    (any curve, P-521 included), and the TLSChannel returned must be closed after the plugin
    is stopped. Raises LaunchError subclasses as the launcher's own connect does.
    """
    handshake = launched.handshake
    assert handshake is not None, "read the handshake first"
    if launched.client_cert is None or handshake.server_cert_der is None:
        await launched.connect(options)
        return None
    tls = await open_tls_channel(handshake, launched.client_cert, list(options))
    timeout_s = launched.spec.connect_timeout_s
    try:
        await asyncio.wait_for(tls.channel.channel_ready(), timeout_s)
    except TimeoutError:
        await tls.close()
        raise TLSError(
            f"no AutoMTLS session with {handshake.network}:{handshake.address} within "
            f"{timeout_s:g}s: the plugin must serve TLS with the certificate of its handshake "
            "and accept the host's (PLUGIN_CLIENT_CERT)",
            argv=launched.spec.argv,
            line=handshake.format(),
            exit_status=launched.process.returncode,
            stderr_tail="\n".join(launched.stderr_tail),
        ) from None
    launched.channel = tls.channel
    return tls
