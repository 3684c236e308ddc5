"""The transfers the throughput and memory figures time, each verified end to end.

Every body is ``n`` bytes of one generated block, each 64 KiB copy stamped with its index, so
that a lost, repeated or reordered frame changes the SHA-256 the two ends compare. The client
writes and reads at once (full duplex), as the raw grpcio baseline does.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from pluginconf._grpc_compat import EOF
from pluginconf.bench.errors import BenchError
from pluginconf.reference.generator import generate_bytes
from pluginconf.runner.plugin.duplex import duplex_exchange
from pluginconf.units import KIB, MIB
from pluginconf.v1 import hooks_pb2, hooks_pb2_grpc

CHUNK = 64 * KIB
WARMUP_BYTES = MIB  # one echo of each kind before any is timed
ECHO_PATH = "/plugins/ref/echo"  # the reference plugin's echo route behind `pluginconf serve`
_REQUEST_END = hooks_pb2.HTTPRequestFrame(end=hooks_pb2.HTTPRequestEnd())


def transfer_timeout_s(n: int) -> float:
    """A deadlock guard: 1 MiB/s at worst, and never under a minute."""
    return max(60.0, n / MIB)


def stamped_blocks(n: int, chunk: int = CHUNK) -> Iterator[bytes]:
    """``n`` bytes: one generated block repeated, each copy stamped with its index."""
    base = generate_bytes(chunk, seed=1)
    index = sent = 0
    while sent < n:
        piece = (index.to_bytes(8, "big") + base[8:])[: n - sent]
        yield piece
        sent += len(piece)
        index += 1


def _init(path: str, n: int) -> hooks_pb2.HTTPRequestFrame:
    return hooks_pb2.HTTPRequestFrame(
        init=hooks_pb2.HTTPRequestInit(
            method="POST", path=path, content_length=n, remote_addr="127.0.0.1:1"
        )
    )


async def _read_response(call: Any, digest: Any) -> int:
    """Read a ServeHTTP response to its end, hashing the body; its length."""
    received = 0
    last = None
    while True:
        frame = await call.read()
        if frame is EOF:
            break
        kind = frame.WhichOneof("frame")
        if kind == "body":
            digest.update(frame.body)
            received += len(frame.body)
        elif kind == "init" and frame.init.status != 200:
            raise BenchError(f"the echo answered status {frame.init.status}, expected 200")
        last = frame
    if last is None or last.WhichOneof("frame") != "end" or last.end.error:
        raise BenchError(f"the echo response did not end with a clean `end` frame: {last}")
    return received


async def grpc_echo(stub: hooks_pb2_grpc.HooksAsyncStub, n: int, path: str = "/echo") -> None:
    """POST ``path`` (an echo route) with ``n`` bytes over one ServeHTTP stream, the response
    read while the body is sent."""
    call = stub.ServeHTTP(None)
    sent, got = hashlib.sha256(), hashlib.sha256()

    async def write() -> None:
        await call.write(_init(path, n))
        for piece in stamped_blocks(n):
            sent.update(piece)
            await call.write(hooks_pb2.HTTPRequestFrame(body=piece))
        await call.write(_REQUEST_END)
        await call.done_writing()

    try:
        _, received = await asyncio.gather(write(), _read_response(call, got))
    except BaseException:
        call.cancel()
        raise
    if received != n or got.digest() != sent.digest():
        raise BenchError(
            f"the ServeHTTP echo did not return what was sent: {n} bytes sent, {received} "
            "received" + ("" if received != n else ", with different content")
        )


async def _stamped_async(n: int) -> AsyncIterator[bytes]:
    for piece in stamped_blocks(n):
        yield piece


async def http_echo(base_url: str, target: str, n: int, timeout_s: float) -> None:
    """POST ``target`` (an echo route) on ``base_url`` with ``n`` bytes over HTTP/1.1, the
    response read while the body is sent."""
    result = await duplex_exchange(base_url, target, _stamped_async(n), n, timeout_s=timeout_s)
    if (
        result.status != 200
        or not result.complete
        or result.received != n
        or result.received_sha256 != result.sent_sha256
    ):
        raise BenchError(
            f"the HTTP echo through the host did not return what was sent: {result.describe()}"
        )
