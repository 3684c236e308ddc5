"""ASGI lifespan: startup before the handshake, state in each request, shutdown on stop."""

from __future__ import annotations

import pytest
from conftest import test_plugin

from pluginconf.host.errors import ExitedBeforeHandshake
from pluginconf.v1 import hooks_pb2, hooks_pb2_grpc


async def _get(plugin, path: str) -> tuple[int, bytes]:
    call = hooks_pb2_grpc.HooksStub(plugin.channel).ServeHTTP(timeout=10)
    await call.write(
        hooks_pb2.HTTPRequestFrame(init=hooks_pb2.HTTPRequestInit(method="GET", path=path))
    )
    await call.write(hooks_pb2.HTTPRequestFrame(end=hooks_pb2.HTTPRequestEnd()))
    await call.done_writing()
    frames = [f async for f in call]
    return frames[0].init.status, b"".join(f.body for f in frames)


async def test_startup_state_reaches_requests_and_shutdown_runs(launch_plugin, tmp_path):
    marker = tmp_path / "marker"
    plugin = await launch_plugin(test_plugin("lifespan_plugin", str(marker)))
    assert marker.read_text() == "started\n"  # before the handshake
    assert await _get(plugin, "/greet") == (200, b"hello from startup")
    report = await plugin.stop()
    assert report.ended_by == "shutdown"
    assert marker.read_text() == "started\nshutdown\n"


async def test_failed_startup_is_a_clear_exit_before_the_handshake(launch_plugin, tmp_path):
    with pytest.raises(ExitedBeforeHandshake) as info:
        await launch_plugin(test_plugin("lifespan_plugin", str(tmp_path / "m"), "--fail-startup"))
    assert info.value.exit_status == 1
    assert "ASGI app startup failed" in info.value.stderr_tail
    assert "database unreachable" in info.value.stderr_tail
