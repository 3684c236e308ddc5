"""Stdout and stderr after the handshake are captured and served through GRPCStdio."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from conftest import test_plugin
from google.protobuf import empty_pb2

from pluginconf.goplugin import grpc_stdio_pb2, grpc_stdio_pb2_grpc
from pluginconf.v1 import hooks_pb2, hooks_pb2_grpc

STDOUT = grpc_stdio_pb2.StdioData.STDOUT
STDERR = grpc_stdio_pb2.StdioData.STDERR


async def _command(plugin, command: str, timeout: float = 10) -> hooks_pb2.ExecuteCommandResponse:
    stub = hooks_pb2_grpc.HooksStub(plugin.channel)
    return await stub.ExecuteCommand(
        hooks_pb2.ExecuteCommandRequest(command=command), timeout=timeout
    )


async def _collect(call, channel: int, want: bytes, timeout: float = 10) -> bytes:
    """Read StdioData until ``want`` has appeared on ``channel``."""
    got = b""

    async def read() -> None:
        nonlocal got
        while want not in got:
            data = await call.read()
            assert data is not grpc.aio.EOF, f"stdio stream ended; got {got!r}"
            if data.channel == channel:
                got += data.data

    await asyncio.wait_for(read(), timeout)
    return got


async def test_output_before_subscribing_is_kept_and_live_output_streams(launch_plugin):
    plugin = await launch_plugin()
    assert (await _command(plugin, "/print stdout early bird 🐦")).text == "printed"
    call = grpc_stdio_pb2_grpc.GRPCStdioStub(plugin.channel).StreamStdio(empty_pb2.Empty())
    assert "early bird 🐦\n".encode() in await _collect(call, STDOUT, "early bird 🐦\n".encode())
    await _command(plugin, "/print stderr live oops")
    assert b"live oops\n" in await _collect(call, STDERR, b"live oops\n")
    call.cancel()
    # Nothing the plugin printed reached its real stdout, where the handshake lives.
    assert list(plugin.stdout_after_handshake) == []


async def test_stdio_stream_ends_when_the_plugin_stops(launch_plugin):
    plugin = await launch_plugin()
    call = grpc_stdio_pb2_grpc.GRPCStdioStub(plugin.channel).StreamStdio(empty_pb2.Empty())
    await _command(plugin, "/print stdout last words")
    assert b"last words" in await _collect(call, STDOUT, b"last words")
    report = await plugin.stop()
    assert report.ended_by == "shutdown"


async def test_second_subscriber_is_refused(launch_plugin):
    plugin = await launch_plugin()
    stub = grpc_stdio_pb2_grpc.GRPCStdioStub(plugin.channel)
    first = stub.StreamStdio(empty_pb2.Empty())
    await _command(plugin, "/print stdout x")
    await _collect(first, STDOUT, b"x")
    second = stub.StreamStdio(empty_pb2.Empty())
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await asyncio.wait_for(second.read(), 10)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    first.cancel()


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
async def test_flooding_output_never_blocks_and_the_buffer_is_bounded(launch_plugin, stream):
    plugin = await launch_plugin(test_plugin("configurable"))
    flood = 8 * 1024 * 1024
    # 8 MiB is far beyond a pipe's 64 KiB: without a drain the write would block forever.
    assert (await _command(plugin, f"/flood {stream} {flood}", timeout=30)).text == "flooded"
    assert (await _command(plugin, "/echo alive")).text == "/echo alive"
    call = grpc_stdio_pb2_grpc.GRPCStdioStub(plugin.channel).StreamStdio(empty_pb2.Empty())
    await _command(plugin, f"/flood {stream} 1024")  # a marker after the flood
    got = 0
    channel = STDOUT if stream == "stdout" else STDERR

    async def read_until_quiet() -> None:
        nonlocal got
        while True:
            data = await call.read()
            if data is grpc.aio.EOF:
                return
            if data.channel == channel:
                got += len(data.data)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(read_until_quiet(), 1.0)  # the stream stays open: no EOF
    call.cancel()
    # Kept: at most the 1 MiB buffer plus what arrived after subscribing.
    assert 1024 <= got <= 1024 * 1024 + 64 * 1024 + 1024, got
