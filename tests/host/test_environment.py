"""Many plugins: fan-out, filter chains in order, fail-open, isolation (SPEC NT, FL, RR, SV-20)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import AsyncIterator

import pytest
from conftest import REFERENCE, test_plugin

from pluginconf.host.client import ClientConfig, PluginUnavailable
from pluginconf.host.environment import AppErrorAnswer, Environment
from pluginconf.host.launcher import LaunchSpec
from pluginconf.host.supervision.config import SupervisorConfig
from pluginconf.host.supervision.states import PluginState
from pluginconf.v1 import hooks_pb2

CONFIG = SupervisorConfig(
    client=ClientConfig(hook_timeout_s=0.5, ready_timeout_s=10),
    health_interval_s=60,  # these tests hang plugins on purpose; no restarts meanwhile
)


@pytest.fixture
async def env() -> AsyncIterator[Environment]:
    environment = Environment(CONFIG)
    environment.add("a", LaunchSpec(argv=REFERENCE))
    environment.add(
        "subset", LaunchSpec(argv=test_plugin("configurable", "--hooks", "ExecuteCommand"))
    )
    environment.add("b", LaunchSpec(argv=REFERENCE))
    await environment.enable_all()
    yield environment
    for supervisor in environment.plugins.values():
        if supervisor.process is not None:
            os.kill(supervisor.process.pid, signal.SIGCONT)
    await environment.stop_all()


async def posts_seen(env: Environment, plugin_id: str) -> str:
    reply = await env.execute_command(plugin_id, hooks_pb2.ExecuteCommandRequest(command="/posts"))
    return reply.text


async def test_all_plugins_activate(env):
    assert env.states() == {"a": "active", "subset": "active", "b": "active"}


async def test_notification_fans_out_to_implementers_only(env):
    outcomes = await env.message_has_been_posted(hooks_pb2.Post(id="p-1", message="hello"))
    assert outcomes == {"a": "ok", "b": "ok"}  # "subset" does not implement it: never called
    assert await posts_seen(env, "a") == "p-1"
    assert await posts_seen(env, "b") == "p-1"


async def test_filter_chain_passes_each_output_to_the_next(env):
    result = await env.message_will_be_posted(hooks_pb2.Post(id="p", message="x [rewrite] y"))
    assert [(s.plugin_id, s.outcome) for s in result.steps] == [("a", "modify"), ("b", "keep")]
    assert result.post.message == "x [rewritten] y"
    assert not result.rejected


async def test_rejection_stops_the_chain(env):
    result = await env.message_will_be_posted(hooks_pb2.Post(id="p", message="[reject] [rewrite]"))
    assert result.rejected
    assert result.rejected_by == "a"
    assert [s.plugin_id for s in result.steps] == ["a"]
    assert result.reason == "rejected by reference plugin: message contains [reject]"


async def test_a_hung_plugin_fails_open_and_delays_others_by_its_deadline_only(env):
    os.kill(env.get("a").process.pid, signal.SIGSTOP)
    start = time.monotonic()
    result = await env.message_will_be_posted(hooks_pb2.Post(id="p", message="[rewrite]"))
    assert [(s.plugin_id, s.outcome) for s in result.steps] == [("a", "error"), ("b", "modify")]
    assert "timeout" in result.steps[0].detail
    assert result.post.message == "[rewritten]"  # b still ran, on the unmodified post

    start = time.monotonic()
    outcomes = await env.message_has_been_posted(hooks_pb2.Post(id="p-2"))
    elapsed = time.monotonic() - start
    assert outcomes["b"] == "ok"
    assert outcomes["a"].startswith("timeout")
    assert elapsed < 0.5 + 0.5, f"fan-out took {elapsed:.2f}s with a 0.5 s deadline"
    assert await posts_seen(env, "b") == "p-2"
    assert env.get("b").state is PluginState.ACTIVE


async def test_request_response_errors_are_typed(env):
    with pytest.raises(AppErrorAnswer) as info:
        await env.execute_command("a", hooks_pb2.ExecuteCommandRequest(command="/nope"))
    assert info.value.code == "unknown_command"
    await env.get("b").disable()
    with pytest.raises(PluginUnavailable):
        await env.execute_command("b", hooks_pb2.ExecuteCommandRequest(command="/echo x"))
    with pytest.raises(KeyError, match="no plugin with id 'zzz'"):
        env.get("zzz")


async def test_stop_all_stops_every_plugin_concurrently(env):
    start = time.monotonic()
    await env.stop_all()
    assert set(env.states().values()) == {"stopped"}
    assert time.monotonic() - start < 2.0
