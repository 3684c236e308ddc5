"""The SDK catches plugin authors' mistakes: at serve(), in a hook's answer, in debug mode."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest
from conftest import test_plugin

from pluginconf.v1 import hooks_pb2, hooks_pb2_grpc

COOKIE = {"PLUGINCONF_MAGIC_COOKIE": "pluginconf", "PLUGIN_PROTOCOL_VERSIONS": "1"}


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        (
            "sync-hook",
            "hook ExecuteCommand: SyncHook.execute_command is a plain def; hooks must be "
            "coroutines, async def execute_command(self, request: "
            "hooks_pb2.ExecuteCommandRequest) -> hooks_pb2.ExecuteCommandResponse",
        ),
        (
            "wrong-signature",
            "hook ExecuteCommand: WrongSignature.execute_command(request, extra) "
            "cannot be called with the request alone",
        ),
        ("rpc-name", "RpcName.ExecuteCommand is named after the RPC"),
    ],
)
def test_serve_refuses_a_plugin_class_that_cannot_work(tmp_path, kind, words):
    result = subprocess.run(
        test_plugin("sdk_mistakes", kind),
        env={**os.environ, **COOKIE, "PLUGIN_UNIX_SOCKET_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout == "", "nothing may reach stdout, where the handshake goes"
    assert result.stderr.startswith("plugin cannot serve: "), result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [], "no socket is made for a plugin that cannot serve"


async def command(plugin, text: str) -> hooks_pb2.ExecuteCommandResponse:
    stub = hooks_pb2_grpc.HooksStub(plugin.channel)
    return await stub.ExecuteCommand(hooks_pb2.ExecuteCommandRequest(command=text), timeout=10)


async def test_a_hook_answer_of_the_wrong_type_is_an_internal_app_error(launch_plugin):
    plugin = await launch_plugin(test_plugin("sdk_mistakes", "returns"))
    none = await command(plugin, "/none")
    assert none.error.code == "internal"
    assert none.error.message == (
        "hook ExecuteCommand (execute_command) returned None; expected a "
        "hooks_pb2.ExecuteCommandResponse (return hooks_pb2.ExecuteCommandResponse() for an "
        "empty answer)"
    )
    wrong = await command(plugin, "/wrong")
    assert wrong.error.code == "internal"
    assert "returned a pluginconf.v1.hooks_pb2.OnActivateResponse" in wrong.error.message
    assert (await command(plugin, "/echo")).text == "/echo", "the plugin keeps serving"


async def _stderr_with(plugin, words: str, timeout_s: float = 10) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = "\n".join(plugin.stderr_tail)
        if words in text:
            return text
        await asyncio.sleep(0.05)
    return "\n".join(plugin.stderr_tail)


async def test_debug_mode_names_the_hook_that_blocks_the_event_loop(launch_plugin):
    plugin = await launch_plugin(
        test_plugin("sdk_mistakes", "returns"), env={"PLUGINCONF_SDK_DEBUG": "1"}
    )
    assert (await command(plugin, "/block 400")).text == "/block 400"
    text = await _stderr_with(plugin, "the event loop ran again after")
    assert "the event loop has been blocked for" in text, text
    assert "in hook method execute_command, at " in text
    assert "sdk_mistakes.py:" in text and "in execute_command" in text
    assert "asyncio.to_thread" in text


async def test_without_debug_mode_a_block_is_not_reported(launch_plugin):
    plugin = await launch_plugin(test_plugin("sdk_mistakes", "returns"))
    assert (await command(plugin, "/block 300")).text == "/block 300"
    assert (await command(plugin, "/after")).text == "/after"
    assert "blocked" not in "\n".join(plugin.stderr_tail)


def test_the_plugin_class_checks_run_before_the_cookie():
    # Run by hand (no host, no cookie), a broken plugin says what is wrong, not "I am a plugin".
    env = {k: v for k, v in os.environ.items() if k != "PLUGINCONF_MAGIC_COOKIE"}
    result = subprocess.run(
        [sys.executable, *test_plugin("sdk_mistakes", "sync-hook")[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "is a plain def" in result.stderr


def test_the_suite_reports_a_refused_plugin_class_once_with_the_reason():
    # A sync hook used to fail every case that called it; now the plugin does not start.
    result = subprocess.run(
        [sys.executable, "-m", "pluginconf", "plugin", "--run", "plugin/hooks/lifecycle-sequence",
         "--", *test_plugin("sdk_mistakes", "sync-hook")],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "plugin cannot serve: hook ExecuteCommand: SyncHook.execute_command is a plain def" in (
        result.stdout + result.stderr
    )
    assert "Traceback" not in result.stderr
