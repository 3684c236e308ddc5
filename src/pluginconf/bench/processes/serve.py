"""``pluginconf serve`` (the reference host behind its HTTP front) over a plugin directory
holding the reference plugin as ``ref``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from pluginconf.bench.errors import BenchError, last_lines
from pluginconf.bench.processes.lifecycle import (
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    descendants,
    kill_leftovers,
    reap,
)
from pluginconf.bench.processes.reference import REFERENCE_PLUGIN


@dataclass(frozen=True)
class Served:
    """``pluginconf serve`` with one plugin, ``ref``."""

    base_url: str  # http://127.0.0.1:PORT
    serve_pid: int
    plugin_pid: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_plugin_dir(workdir: Path) -> Path:
    plugins = workdir / "plugins"
    (plugins / "ref").mkdir(parents=True)
    # JSON strings are valid TOML basic strings.
    (plugins / "ref" / "plugin.toml").write_text(
        f"id = {json.dumps('ref')}\n"
        f"executable = {json.dumps(REFERENCE_PLUGIN[0])}\n"
        f"args = {json.dumps(list(REFERENCE_PLUGIN[1:]))}\n",
        encoding="utf-8",
    )
    return plugins


def _log_tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return last_lines(path.read_text(errors="replace"), lines)
    return ""


async def _wait_for_front(process: asyncio.subprocess.Process, url: str, log: Path) -> None:
    """Poll ``url`` until the front answers 200: the serve process is another program, whose
    readiness shows only on its port."""
    deadline = time.monotonic() + START_TIMEOUT_S
    async with httpx.AsyncClient(timeout=5) as probe:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if (await probe.get(url)).status_code == 200:
                    return
            if process.returncode is not None or time.monotonic() > deadline:
                state = (
                    f"exited with status {process.returncode}"
                    if process.returncode is not None
                    else f"did not answer {url} within {START_TIMEOUT_S:g}s"
                )
                raise BenchError(f"pluginconf serve {state}; its log ends:\n{_log_tail(log)}")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def serve_process() -> AsyncIterator[Served]:
    """``pluginconf serve`` over a directory with the reference plugin as ``ref``; SIGTERM,
    then SIGKILL, on exit, and any plugin it left is killed."""
    workdir = Path(tempfile.mkdtemp(prefix="pluginconf-bench-"))
    try:
        log = workdir / "serve.log"
        port = _free_port()
        with log.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "pluginconf", "serve",
                "--plugins", str(_write_plugin_dir(workdir)), "--port", str(port),
                stdin=asyncio.subprocess.DEVNULL, stdout=log_file,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        started: list[int] = []
        try:
            base = f"http://127.0.0.1:{port}"
            await _wait_for_front(process, f"{base}/plugins/ref/headers", log)
            started = descendants(process.pid)
            if len(started) != 1:
                raise BenchError(f"expected one plugin process under serve, found {started}")
            yield Served(base, process.pid, started[0])
        finally:
            # The plugin runs in its own session: remember it in case serve has to be killed.
            started = sorted(set(started) | set(descendants(process.pid)))
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
            await reap(process, STOP_TIMEOUT_S * 3)
            kill_leftovers(started)  # only does something if serve failed to stop its plugin
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
