"""What the fake sees of the host's broker, and what it sends on the stream (scenario key
``broker``): every ConnInfo received (``broker_conninfo``), how the stream ended
(``broker_stream_end``), and with ``probe`` whether each announced address listens and, under
AutoMTLS, whether it lets in a plaintext client or one without a certificate (``broker_probe``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

from pluginconf.fake.scenario.hostapi import BrokerBehaviour
from pluginconf.goplugin import grpc_broker_pb2

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
SETTINGS_TYPE = 4
PROBE_TIMEOUT_S = 10.0  # a deadlock guard: a refusal and an acceptance both come at once


def conninfo_fields(info: grpc_broker_pb2.ConnInfo) -> dict[str, Any]:
    knock = info.knock
    return {
        "service_id": info.service_id,
        "network": info.network,
        "address": info.address,
        "knock_set": info.HasField("knock"),
        "knock": {"knock": knock.knock, "ack": knock.ack, "error": knock.error},
    }


def to_conninfo(spec: Any) -> grpc_broker_pb2.ConnInfo:
    info = grpc_broker_pb2.ConnInfo(
        service_id=spec.service_id, network=spec.network, address=spec.address
    )
    if spec.knock:
        info.knock.knock = True
    return info


async def _open(
    network: str, address: str, tls: ssl.SSLContext | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    server_hostname = "localhost" if tls is not None else None
    if network == "unix":
        return await asyncio.open_unix_connection(address, ssl=tls, server_hostname=server_hostname)
    host, _, port = address.rpartition(":")
    return await asyncio.open_connection(
        host.strip("[]"), int(port), ssl=tls, server_hostname=server_hostname
    )


async def _speaks_h2(network: str, address: str, tls: ssl.SSLContext | None) -> str:
    """Open a connection, send the HTTP/2 preface: 'accepted' when the server's SETTINGS
    come back, else what happened instead."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            reader, writer = await _open(network, address, tls)
            try:
                writer.write(H2_PREFACE + EMPTY_SETTINGS)
                await writer.drain()
                head = await reader.read(9)
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
    except TimeoutError:
        return "no answer"
    except (OSError, ssl.SSLError, ValueError) as exc:
        return f"refused: {type(exc).__name__}: {exc}"
    if len(head) >= 4 and head[3] == SETTINGS_TYPE:
        return "accepted"
    return f"refused: answered {head[:16]!r}"


async def probe(info: grpc_broker_pb2.ConnInfo, host_cert_pem: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"service_id": info.service_id}
    network, address = info.network, info.address
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            _, writer = await _open(network, address, None)
            writer.close()
        fields["listening"] = True
    except (OSError, ValueError, TimeoutError) as exc:
        fields["listening"] = False
        fields["connect_error"] = f"{type(exc).__name__}: {exc}"
        return fields
    fields["plaintext"] = await _speaks_h2(network, address, None)
    if host_cert_pem:
        anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        anonymous.load_verify_locations(cadata=host_cert_pem)
        anonymous.set_alpn_protocols(["h2"])
        fields["tls_without_client_cert"] = await _speaks_h2(network, address, anonymous)
    return fields


class StreamWatch:
    """Wraps the StartStream context: records what the host sends, sends the scenario's."""

    def __init__(
        self,
        context: Any,
        behaviour: BrokerBehaviour,
        record: Any,
        host_cert_pem: str | None,
    ) -> None:
        self._context = context
        self._behaviour = behaviour
        self._record = record
        self._host_cert_pem = host_cert_pem
        self._tasks: set[asyncio.Task[None]] = set()

    async def send_scenario(self) -> None:
        for spec in self._behaviour.send:
            info = to_conninfo(spec)
            self._record("broker_sent", **conninfo_fields(info))
            await self._context.write(info)

    async def read(self) -> object:
        info = await self._context.read()
        if isinstance(info, grpc_broker_pb2.ConnInfo):
            self._record("broker_conninfo", **conninfo_fields(info))
            if self._behaviour.probe:
                task = asyncio.ensure_future(self._probe(info))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return info

    async def _probe(self, info: grpc_broker_pb2.ConnInfo) -> None:
        self._record("broker_probe", **await probe(info, self._host_cert_pem))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)
