"""Every way a launch fails raises its own error, with the evidence to act on."""

from __future__ import annotations

import asyncio
import sys

import pytest

from pluginconf.host import errors
from pluginconf.host.launcher import LaunchSpec, launch


def script(body: str) -> list[str]:
    return [sys.executable, "-c", body]


def prints(line: str, then: str = "import time; time.sleep(30)") -> list[str]:
    return script(f"import sys; sys.stdout.write({line!r} + '\\n'); sys.stdout.flush(); {then}")


async def _fails(argv: list[str], **kwargs) -> errors.LaunchError:
    spec = LaunchSpec(argv=argv, start_timeout_s=kwargs.pop("timeout", 10), **kwargs)
    with pytest.raises(errors.LaunchError) as info:
        await launch(spec)  # on failure, launch itself kills and reaps the process
    return info.value


@pytest.mark.parametrize(
    ("line", "error", "fragment"),
    [
        (
            "2|1|unix|/tmp/x.sock|grpc",
            errors.CoreVersionMismatch,
            "core protocol version 2, expected 1",
        ),
        ("1|7|unix|/tmp/x.sock|grpc", errors.AppVersionUnsupported, "app protocol version 7"),
        ("1|1|udp|/tmp/x.sock|grpc", errors.UnknownNetwork, "network 'udp'"),
        ("1|1|unix|/tmp/x.sock|netrpc", errors.UnsupportedProtocol, "protocol 'netrpc'"),
        ("1|x|unix|/tmp/x.sock|grpc", errors.MalformedHandshake, "app protocol version 'x'"),
        ("1|1|unix", errors.MalformedHandshake, "expected 5 or 6"),
        ("1|1|tcp|10.1.2.3:4000|grpc", errors.MalformedHandshake, "not a loopback IP literal"),
        ("1|1|unix|/tmp/x.sock|grpc|AAAA", errors.TLSError, "did not ask for AutoMTLS"),
    ],
)
async def test_bad_handshake_lines(line, error, fragment):
    exc = await _fails(prints(line))
    assert type(exc) is error
    assert fragment in str(exc)
    assert exc.line == line
    assert repr(line) in str(exc)


async def test_unreachable_address():
    exc = await _fails(prints("1|1|unix|/nonexistent/dir/plugin.sock|grpc"))
    assert isinstance(exc, errors.AddressUnreachable)
    assert "unix:/nonexistent/dir/plugin.sock" in str(exc)


async def test_exit_before_handshake_carries_status_and_stderr():
    exc = await _fails(
        script("import sys; sys.stderr.write('boom: missing config\\n'); sys.exit(3)")
    )
    assert isinstance(exc, errors.ExitedBeforeHandshake)
    assert exc.exit_status == 3
    assert "boom: missing config" in exc.stderr_tail
    assert "exit status: 3" in str(exc)


async def test_closed_stdout_without_handshake():
    exc = await _fails(script("import os, time; os.close(1); time.sleep(30)"))
    assert isinstance(exc, errors.NoHandshake)


async def test_start_timeout():
    exc = await _fails(script("import time; time.sleep(30)"), timeout=0.5)
    assert isinstance(exc, errors.StartTimeout)
    assert "0.5s" in str(exc)


async def test_not_executable():
    exc = await _fails(["/nonexistent/plugin-binary"])
    assert "could not execute the plugin" in str(exc)


async def test_noise_before_the_handshake_is_skipped_and_recorded(launch_plugin):
    body = (
        "import os, sys, runpy\n"
        "print('starting up', flush=True)\n"
        "print('loading config', flush=True)\n"
        "sys.argv = ['pluginconf', 'reference-plugin']\n"
        "runpy.run_module('pluginconf', run_name='__main__')\n"
    )
    plugin = await launch_plugin(script(body))
    assert plugin.noise_lines == ["starting up", "loading config"]


async def test_too_much_noise():
    exc = await _fails(
        script("for i in range(100): print('noise', i, flush=True)\nimport time; time.sleep(30)")
    )
    assert isinstance(exc, errors.TooMuchNoise)


async def test_wrong_cookie_exits_before_handshake_with_the_explanation():
    from pluginconf.protocol import MagicCookie

    exc = await _fails(
        [sys.executable, "-m", "pluginconf", "reference-plugin"],
        magic_cookie=MagicCookie("PLUGINCONF_MAGIC_COOKIE", "wrong"),
    )
    assert isinstance(exc, errors.ExitedBeforeHandshake)
    assert exc.exit_status == 1
    assert "not meant to be executed directly" in exc.stderr_tail


@pytest.mark.parametrize("yields", [0, 1, 2, 3, 5, 8])
async def test_a_cancelled_launch_leaves_nothing_behind(yields):
    """Cancelled at any point of spawning: no process, no socket directory (the leak check)."""
    task = asyncio.ensure_future(
        launch(LaunchSpec(argv=[sys.executable, "-m", "pluginconf", "reference-plugin"]))
    )
    for _ in range(yields):
        await asyncio.sleep(0)
    task.cancel()
    try:
        plugin = await task
    except asyncio.CancelledError:
        return
    await plugin.stop()  # it finished first: stop it normally
