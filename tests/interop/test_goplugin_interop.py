"""Interop with a real go-plugin host.

``gohost/main.go`` is built against go-plugin 1.0.1 (Debian's packages) and drives the reference
plugin through go-plugin's own client: handshake, optional AutoMTLS, gRPC dial, broker stream,
health pings and the graceful kill (GRPCController.Shutdown, then up to 2 s for the process to
exit before go-plugin kills it). The host prints one JSON line that the tests check.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from gobuild import go_build

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
GOHOST_DIR = HERE / "gohost"

# gohost gives up by itself after HOST_DEADLINE; the subprocess timeout is the backstop.
HOST_DEADLINE = "45s"
RUN_TIMEOUT_S = 60
# go-plugin waits 2 s after Shutdown before it kills the plugin; a graceful exit is far quicker.
KILL_DEADLOCK_GUARD_MS = 2000
# How long a plugin process may take to disappear after the host has returned.
EXIT_GRACE_S = 5.0

SUBCOMMAND = "reference-plugin"
# Environment variable that marks every process a host run starts.
RUN_MARKER = "PLUGINCONF_INTEROP_RUN"


def _text(output: str | bytes | None) -> str:
    """Output kept by TimeoutExpired: bytes even when the run asked for text."""
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


@pytest.fixture(scope="module")
def gohost(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the Go host once per module (gobuild.py: skipped, or failed in CI, without Go)."""
    return go_build(GOHOST_DIR, tmp_path_factory.mktemp("gohost"), "gohost")


def _reference_plugin_command() -> list[str]:
    script = Path(sys.executable).with_name("pluginconf")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script), SUBCOMMAND]
    return [sys.executable, "-m", "pluginconf", SUBCOMMAND]


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        return _alive(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False


def _marked_processes(token: str) -> list[psutil.Process]:
    """Live processes started under this test's host: they inherit RUN_MARKER=token.

    go-plugin passes the host's whole environment to the plugin, so the mark finds the plugin
    (and anything it spawned) even after it has been re-parented, and never an unrelated
    reference plugin that happens to run on the same machine.
    """
    found = []
    for proc in psutil.process_iter(["environ"], ad_value=None):
        environ = proc.info["environ"] or {}
        if environ.get(RUN_MARKER) == token and _alive(proc):
            found.append(proc)
    return found


def _describe(proc: psutil.Process) -> str:
    try:
        return f"pid {proc.pid}: {' '.join(proc.cmdline())}"
    except psutil.Error:
        return f"pid {proc.pid}"


def _short_tmp_root() -> str:
    # The plugin's socket lives under TMPDIR and a socket path is limited to 107 bytes, so keep
    # TMPDIR short rather than under pytest's (long) per-test directory.
    if os.path.isdir("/tmp") and os.access("/tmp", os.W_OK | os.X_OK):
        return "/tmp"
    return tempfile.gettempdir()


@dataclass(frozen=True)
class HostRun:
    """What one host run is given: a fresh TMPDIR and the mark its processes inherit."""

    tmpdir: Path
    token: str

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        # go-plugin 1.0.1 sets none of these itself: none may reach the plugin from our env.
        for name in ("PLUGIN_UNIX_SOCKET_DIR", "PLUGIN_CLIENT_CERT", "PLUGIN_PROTOCOL_VERSIONS"):
            env.pop(name, None)
        env["TMPDIR"] = str(self.tmpdir)
        env[RUN_MARKER] = self.token
        return env


@pytest.fixture
def host_run() -> Iterator[HostRun]:
    """Give the test a TMPDIR and a process mark; afterwards both must be clean.

    go-plugin 1.0.1 does not set PLUGIN_UNIX_SOCKET_DIR: its own plugins put their socket in
    the temporary directory (ioutil.TempFile("", "plugin")) and remove it when the listener
    closes, so the TMPDIR must be empty again once the plugin has exited. No process started
    by the host, and no new child of this test process, may outlive the host.
    """
    me = psutil.Process()
    children_before = {p.pid for p in me.children(recursive=True)}
    run = HostRun(Path(tempfile.mkdtemp(prefix="pcio-", dir=_short_tmp_root())), uuid.uuid4().hex)
    problems = []
    try:
        yield run
        deadline = time.monotonic() + EXIT_GRACE_S
        while True:
            left = {p.pid: p for p in _marked_processes(run.token)}
            left.update(
                (p.pid, p)
                for p in me.children(recursive=True)
                if p.pid not in children_before and _alive(p)
            )
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if left:
            problems.append(
                "processes left behind after the host exited:\n"
                + "\n".join(_describe(p) for p in left.values())
            )
            for proc in left.values():
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        leftovers = sorted(str(p.relative_to(run.tmpdir)) for p in run.tmpdir.rglob("*"))
        if leftovers:
            problems.append(f"left behind in the plugin's TMPDIR {run.tmpdir}: {leftovers}")
    finally:
        shutil.rmtree(run.tmpdir, ignore_errors=True)
    if problems:
        pytest.fail("\n".join(problems))


def _run_host(
    gohost: Path, run: HostRun, plugin_cmd: list[str], *flags: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    argv = [
        str(gohost),
        "-deadline",
        HOST_DEADLINE,
        *flags,
        "-plugin-cmd",
        plugin_cmd[0],
        "--",
        *plugin_cmd[1:],
    ]
    try:
        proc = subprocess.run(
            argv,
            env=run.env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"go host did not finish within {RUN_TIMEOUT_S} s: {argv}\n"
            f"stdout:\n{_text(exc.stdout)}\nstderr:\n{_text(exc.stderr)}"
        )
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, (
        f"go host must print exactly one JSON line (exit {proc.returncode}):\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    result = json.loads(lines[0])
    assert isinstance(result, dict)
    return proc, result


def _check_session(proc: subprocess.CompletedProcess[str], result: dict[str, Any]) -> None:
    context = f"result: {result}\nhost stderr:\n{proc.stderr}"
    assert proc.returncode == 0, f"go host failed (exit {proc.returncode})\n{context}"
    assert "error" not in result, context
    assert result["negotiated_version"] == 1, context
    assert result["protocol"] == "grpc", context
    assert result["network"] in ("unix", "tcp"), context
    assert result["dispensed"] is True, context
    assert result["pings"] == 3, context
    assert result["exited"] is True, context
    assert result["graceful"] is True, (
        "go-plugin had to kill the plugin: it did not exit within 2 s of "
        f"GRPCController.Shutdown\n{context}"
    )
    assert result["kill_ms"] < KILL_DEADLOCK_GUARD_MS, context
    if result["network"] == "unix":
        assert not os.path.exists(result["address"]), (
            f"socket {result['address']} still exists after the plugin exited\n{context}"
        )
    pid = result["plugin_pid"]
    deadline = time.monotonic() + EXIT_GRACE_S
    while _pid_alive(pid):
        assert time.monotonic() < deadline, f"plugin pid {pid} still running\n{context}"
        time.sleep(0.05)


def test_unix_socket_ping_and_graceful_kill(gohost: Path, host_run: HostRun) -> None:
    proc, result = _run_host(gohost, host_run, _reference_plugin_command())
    _check_session(proc, result)
    assert result["automtls"] is False


def test_automtls_ping_and_graceful_kill(gohost: Path, host_run: HostRun) -> None:
    """go-plugin's own TLS client verifies the plugin's handshake certificate (field 6)."""
    proc, result = _run_host(gohost, host_run, _reference_plugin_command(), "-automtls")
    _check_session(proc, result)
    assert result["automtls"] is True


def test_host_reports_a_plugin_that_never_handshakes(gohost: Path, host_run: HostRun) -> None:
    false = shutil.which("false") or "/bin/false"
    proc, result = _run_host(gohost, host_run, [false])
    assert proc.returncode == 1, f"result: {result}\nhost stderr:\n{proc.stderr}"
    assert set(result) == {"error"}, result
    assert result["error"].startswith("connect: "), result
