"""How a plugin ends: Shutdown, SIGTERM, the grace for in-flight calls, and host death."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import grpc
import psutil
import pytest
from conftest import REFERENCE

from pluginconf.goplugin import grpc_controller_pb2, grpc_controller_pb2_grpc
from pluginconf.v1 import hooks_pb2, hooks_pb2_grpc


async def _exit_time_after(plugin, action) -> float:
    start = time.monotonic()
    await action()
    await asyncio.wait_for(plugin.process.wait(), 10)
    return time.monotonic() - start


async def test_shutdown_exits_promptly_when_idle(launch_plugin):
    plugin = await launch_plugin()
    socket_path = plugin.handshake.address
    stub = grpc_controller_pb2_grpc.GRPCControllerStub(plugin.channel)

    async def shutdown():
        await stub.Shutdown(grpc_controller_pb2.Empty(), timeout=5)

    elapsed = await _exit_time_after(plugin, shutdown)
    assert plugin.process.returncode == 0
    # The target is 100 ms; the bound here only guards against a hang on a loaded machine.
    assert elapsed < 1.0, f"exit took {elapsed:.3f}s after Shutdown"
    assert not os.path.exists(socket_path)


async def test_shutdown_is_prompt_with_a_health_watch_open(launch_plugin):
    """A Watch stream never ends by itself; it must not hold the graceful stop."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    plugin = await launch_plugin()
    watch = health_pb2_grpc.HealthStub(plugin.channel).Watch(
        health_pb2.HealthCheckRequest(service="plugin")
    )
    first = await asyncio.wait_for(watch.read(), 10)
    assert first.status == health_pb2.HealthCheckResponse.SERVING
    stub = grpc_controller_pb2_grpc.GRPCControllerStub(plugin.channel)

    async def shutdown():
        await stub.Shutdown(grpc_controller_pb2.Empty(), timeout=5)

    elapsed = await _exit_time_after(plugin, shutdown)
    assert elapsed < 1.0, f"exit took {elapsed:.3f}s after Shutdown with a Watch open"
    watch.cancel()


async def test_sigterm_exits_promptly_and_cleanly(launch_plugin):
    plugin = await launch_plugin()
    socket_path = plugin.handshake.address

    async def term():
        plugin.process.send_signal(signal.SIGTERM)

    elapsed = await _exit_time_after(plugin, term)
    assert plugin.process.returncode == 0
    assert elapsed < 1.0, f"exit took {elapsed:.3f}s after SIGTERM"
    assert not os.path.exists(socket_path)


async def test_sigint_is_ignored_like_go_plugin(launch_plugin):
    plugin = await launch_plugin()
    plugin.process.send_signal(signal.SIGINT)
    stub = hooks_pb2_grpc.HooksStub(plugin.channel)
    r = await stub.ExecuteCommand(
        hooks_pb2.ExecuteCommandRequest(command="/echo still here"), timeout=5
    )
    assert r.text == "still here"
    assert plugin.process.returncode is None


async def _start_slow_response(stub, pause_ms: int):
    """Start /flush with two chunks; return once the handler has sent the first one."""
    call = stub.ServeHTTP(timeout=30)
    await call.write(
        hooks_pb2.HTTPRequestFrame(
            init=hooks_pb2.HTTPRequestInit(
                method="GET", path="/flush", raw_query=f"n=2&ms={pause_ms}"
            )
        )
    )
    await call.write(hooks_pb2.HTTPRequestFrame(end=hooks_pb2.HTTPRequestEnd()))
    await call.done_writing()
    first = [await asyncio.wait_for(call.read(), 10) for _ in range(2)]
    assert [f.WhichOneof("frame") for f in first] == ["init", "body"]
    assert first[0].init.status == 200, first[1].body
    return call


async def _rest(call) -> bytes:
    body = b""
    while (frame := await call.read()) is not grpc.aio.EOF:
        body += frame.body
    return body


async def _shutdown(plugin) -> float:
    start = time.monotonic()
    await grpc_controller_pb2_grpc.GRPCControllerStub(plugin.channel).Shutdown(
        grpc_controller_pb2.Empty(), timeout=5
    )
    await asyncio.wait_for(plugin.process.wait(), 10)
    return time.monotonic() - start


async def test_in_flight_call_finishes_within_the_grace(launch_plugin):
    plugin = await launch_plugin()
    call = await _start_slow_response(hooks_pb2_grpc.HooksStub(plugin.channel), 500)
    rest = asyncio.ensure_future(_rest(call))
    await _shutdown(plugin)
    assert await asyncio.wait_for(rest, 10) == b"chunk 1\n"
    assert plugin.process.returncode == 0


async def test_in_flight_call_is_cut_after_the_grace(launch_plugin):
    plugin = await launch_plugin()
    call = await _start_slow_response(hooks_pb2_grpc.HooksStub(plugin.channel), 10000)
    rest = asyncio.ensure_future(_rest(call))
    elapsed = await _shutdown(plugin)
    assert 1.5 < elapsed < 5, f"exit after {elapsed:.2f}s; the SDK's grace is 2 s"
    with pytest.raises(grpc.aio.AioRpcError):
        await asyncio.wait_for(rest, 10)


def test_plugin_exits_when_its_host_dies():
    """A host killed with SIGKILL cannot stop its plugin; the plugin must notice and exit."""
    socket_dir = tempfile.mkdtemp()  # short: unix socket paths are limited to 107 bytes
    host_script = (
        "import os, subprocess, sys\n"
        "env = dict(os.environ, PLUGINCONF_MAGIC_COOKIE='pluginconf', PLUGIN_PROTOCOL_VERSIONS='1',"
        f" PLUGIN_UNIX_SOCKET_DIR={socket_dir!r})\n"
        f"p = subprocess.Popen({REFERENCE!r}, env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)\n"
        "line = p.stdout.readline().decode().strip()\n"
        "print(p.pid, line, flush=True)\n"
        "sys.stdin.read()\n"
    )
    host = subprocess.Popen(
        [sys.executable, "-c", host_script], stdout=subprocess.PIPE, stdin=subprocess.PIPE
    )
    plugin = None
    try:
        pid_text, line = host.stdout.readline().decode().split(" ", 1)
        plugin = psutil.Process(int(pid_text))
        socket_path = line.split("|")[3]
        assert os.path.exists(socket_path)
        host.kill()
        host.wait(timeout=10)
        start = time.monotonic()
        plugin.wait(timeout=10)  # raises TimeoutExpired if the plugin outlives its host
        assert time.monotonic() - start < 5
        assert not os.path.exists(socket_path)
    finally:
        host.kill()
        host.wait(timeout=10)
        if plugin is not None and plugin.is_running():
            plugin.kill()  # the test failed: do not leave the orphan behind
        if host.stdin:
            host.stdin.close()
        if host.stdout:
            host.stdout.close()
        shutil.rmtree(socket_dir, ignore_errors=True)
