"""The processes a benchmark measures, each started in its own session and always reaped:
the raw grpcio baseline server, the reference plugin launched as a host does, and
``pluginconf serve`` (the reference host behind its HTTP front)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil

from pluginconf.bench.errors import BenchError
from pluginconf.host.launcher import LaunchSpec, launch
from pluginconf.v1 import hooks_pb2_grpc

REFERENCE_PLUGIN = (sys.executable, "-m", "pluginconf", "reference-plugin")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Endpoint:
    """A gRPC server under test: its Hooks stub and its process."""

    stub: hooks_pb2_grpc.HooksAsyncStub
    pid: int


@dataclass(frozen=True)
class RawServer(Endpoint):
    process: asyncio.subprocess.Process

    async def stop(self) -> None:
        """Close its stdin, which stops it (grpc.aio ``server.stop``), and reap it."""
        await _stop_raw(self.process)


@dataclass(frozen=True)
class Served:
    """``pluginconf serve`` with one plugin, ``ref``."""

    base_url: str  # http://127.0.0.1:PORT
    serve_pid: int
    plugin_pid: int


async def _reap(process: asyncio.subprocess.Process, timeout_s: float) -> None:
    """Wait for ``process``; SIGKILL its process group if it has not exited in time."""
    try:
        await asyncio.wait_for(process.wait(), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


def _descendants(pid: int) -> list[int]:
    with contextlib.suppress(psutil.Error):
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    return []


def _kill_leftovers(pids: list[int]) -> None:
    """SIGKILL those of ``pids`` still running (processes this run started), and wait."""
    alive = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            process.kill()
            alive.append(process)
    psutil.wait_procs(alive, timeout=5)


async def _stop_raw(process: asyncio.subprocess.Process) -> None:
    """The raw server exits when its stdin ends; SIGKILL if it has not in time; reaped."""
    assert process.stdin is not None
    process.stdin.close()
    await _reap(process, STOP_TIMEOUT_S)


@contextlib.asynccontextmanager
async def raw_server() -> AsyncIterator[RawServer]:
    """The raw grpcio baseline (``pluginconf.bench.raw_server``) on a unix socket."""
    workdir = tempfile.mkdtemp(prefix="pluginconf-bench-")
    address = f"unix:{workdir}/raw.sock"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pluginconf.bench.raw_server",
        address,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    channel = None
    try:
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if line.strip() != b"ready":
            raise BenchError(
                f"the raw grpcio baseline server did not start: it printed {line!r} where "
                "'ready' was expected; run `python -m pluginconf.bench.raw_server unix:/tmp/x` "
                "to see why"
            )
        channel = grpc.aio.insecure_channel(address)
        await asyncio.wait_for(channel.channel_ready(), 10)
        yield RawServer(hooks_pb2_grpc.HooksStub(channel), process.pid, process)
    finally:
        if channel is not None:
            await channel.close(None)
        await _stop_raw(process)
        shutil.rmtree(workdir, ignore_errors=True)


REFERENCE_SPEC = LaunchSpec(argv=REFERENCE_PLUGIN, plugin_id="ref", start_timeout_s=START_TIMEOUT_S)


@contextlib.asynccontextmanager
async def reference_plugin() -> AsyncIterator[Endpoint]:
    """The reference plugin, launched and connected as a host does; stopped by the stop
    sequence (GRPCController.Shutdown, then signals) on exit."""
    plugin = await launch(REFERENCE_SPEC)
    try:
        assert plugin.channel is not None
        yield Endpoint(hooks_pb2_grpc.HooksStub(plugin.channel), plugin.pid)
    finally:
        await plugin.stop()


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
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
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
            started = _descendants(process.pid)
            if len(started) != 1:
                raise BenchError(f"expected one plugin process under serve, found {started}")
            yield Served(base, process.pid, started[0])
        finally:
            # The plugin runs in its own session: remember it in case serve has to be killed.
            started = sorted(set(started) | set(_descendants(process.pid)))
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
            await _reap(process, STOP_TIMEOUT_S * 3)
            _kill_leftovers(started)  # only does something if serve failed to stop its plugin
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _read_report(path: Path) -> dict[str, Any] | None:
    """The JSON report a pluginconf run wrote, or None if it wrote none."""
    try:
        report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return report


async def run_pluginconf(words: list[str], timeout_s: float) -> tuple[float, dict[str, Any]]:
    """Run ``pluginconf WORDS... --json FILE`` in its own session; its wall time in seconds
    and its JSON report. A run that does not exit 0 would time a broken run: BenchError."""
    with tempfile.TemporaryDirectory(prefix="pluginconf-bench-") as tmp:
        path = Path(tmp, "report.json")
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pluginconf", *words, "--json", str(path),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout_s)
        except BaseException:
            # Timed out or cancelled: the run and everything it started go.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            raise
        seconds = time.perf_counter() - started
        report = _read_report(path)
    if process.returncode != 0 or report is None:
        tail = "\n".join(output.decode(errors="replace").splitlines()[-15:])
        raise BenchError(
            f"`pluginconf {' '.join(words)}` exited with status {process.returncode} "
            f"(0 expected), so its figure would not mean anything; its output ended:\n{tail}"
        )
    return seconds, report
