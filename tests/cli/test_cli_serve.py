"""`pluginconf serve`: the README's example as written, and what it refuses before starting."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cli_process import run_cli, usage_error

from pluginconf.host.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=timeout)


def _readme_serve_manifest(folder: Path) -> None:
    """Run the README's manifest lines (mkdir .. TOML) as written, in ``folder``."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"^mkdir -p plugins/reference\n.*?^TOML$", readme, re.S | re.M)
    assert block is not None, "the README's serve example moved"
    subprocess.run(["bash", "-e", "-c", block.group(0)], cwd=folder, check=True, timeout=30)


def test_the_readme_serve_example_works_as_written(tmp_path):
    # The Quick start's venv, as the README assumes it: .venv/bin/pluginconf beside plugins/.
    shim = tmp_path / ".venv" / "bin" / "pluginconf"
    shim.parent.mkdir(parents=True)
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m pluginconf "$@"\n')
    shim.chmod(0o755)
    _readme_serve_manifest(tmp_path)
    manifest = load_manifest(tmp_path / "plugins" / "reference")
    assert manifest.argv == [str(shim), "reference-plugin"]
    env = {**os.environ, "PATH": "/usr/bin:/bin"}  # pluginconf is not on PATH after the Quick start
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(shim), "serve", "--plugins", "plugins", "--port", str(port), "--max-body", "1KiB"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/plugins/reference/echo"
        deadline = time.monotonic() + 30
        while True:
            try:
                reply = httpx.post(url, content=b"hello", timeout=5)
                if reply.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.1)  # another process's port: nothing to wait on but time
        assert reply.content == b"hello"
        assert httpx.post(url, content=b"x" * 2048, timeout=5).status_code == 413
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
        assert server.returncode == 0, output
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.communicate(timeout=10)


def test_serve_on_a_busy_port_fails_before_starting_a_plugin(tmp_path):
    marker = tmp_path / "started"
    folder = tmp_path / "plugins" / "p"
    folder.mkdir(parents=True)
    (folder / "plugin").write_text(f"#!/bin/sh\ntouch '{marker}'\nsleep 30\n")
    (folder / "plugin").chmod(0o755)
    (folder / "plugin.toml").write_text('id = "p"\nexecutable = "./plugin"\n')
    (tmp_path / "plugins" / "noid").mkdir()
    (tmp_path / "plugins" / "noid" / "plugin.toml").write_text('executable = "sh"\n')
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "--plugins", str(tmp_path / "plugins"), "--port", str(port))
    assert result.returncode == 2, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "choose another --port" in result.stderr
    assert not marker.exists(), "a plugin was started before the port was bound"


def test_serve_names_a_manifest_without_id(tmp_path, capsys):
    (tmp_path / "noid").mkdir()
    (tmp_path / "noid" / "plugin.toml").write_text('executable = "sh"\n')
    err = usage_error(capsys, "serve", "--plugins", str(tmp_path))
    assert f"{tmp_path / 'noid' / 'plugin.toml'}: id: missing" in err
    assert 'e.g. id = "hello"' in err and "None" not in err
