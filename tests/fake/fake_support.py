"""Helpers for the fake plugin's tests (tests/fake/): scenarios, launching, reading the record.

The fake runs as ``python fake_interpreters/fakeplugin SCENARIO.json`` (once directly through
its #! line, once as ``python -m pluginconf.fake``), launched by the project's launcher. Tests
synchronise on what they can observe: call results, process exits, lines of the fake's record
file, which it writes and flushes per event, and the reports of its Observer client.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pluginconf._grpc_compat import EOF
from pluginconf.host import errors
from pluginconf.host.launcher import LaunchedPlugin, LaunchSpec, launch
from pluginconf.protocol.hooks import HOOKS
from pluginconf.v1 import hooks_pb2, hooks_pb2_grpc

FAKE = Path(__file__).resolve().parents[2] / "fake_interpreters" / "fakeplugin"
ALL_HOOKS = list(HOOKS)
UNARY_REQUESTS = {
    "OnConfigurationChange": hooks_pb2.OnConfigurationChangeRequest(),
    "OnActivate": hooks_pb2.OnActivateRequest(plugin_id="fake"),
    "OnDeactivate": hooks_pb2.OnDeactivateRequest(),
    "MessageHasBeenPosted": hooks_pb2.MessageHasBeenPostedRequest(),
    "MessageWillBePosted": hooks_pb2.MessageWillBePostedRequest(),
    "ExecuteCommand": hooks_pb2.ExecuteCommandRequest(command="/x"),
}
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
MiB = 1024 * 1024

# -- helpers ------------------------------------------------------------------------------


def scenario(tmp_path: Path, data: Any, name: str = "scenario.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def fake(path: Path) -> list[str]:
    """The fake as a host runs an interpreter: ``python fakeplugin SCENARIO``."""
    return [sys.executable, str(FAKE), str(path)]


def recorded(tmp_path: Path, data: dict[str, Any]) -> tuple[list[str], Record]:
    """argv for a scenario that records to a file, and that file."""
    record = Record(tmp_path / "calls.jsonl")
    path = scenario(tmp_path, {**data, "record": {"file": record.path.name}})
    return fake(path), record


class Record:
    """The fake's JSON-lines record, read while the fake runs."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        # Split on "\n" only: strings may hold U+2028 and the like. The text after the last
        # newline is a line still being written.
        *complete, _ = self.path.read_text(encoding="utf-8").split("\n")
        return [json.loads(line) for line in complete]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.lines() if e["event"] == name]

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for entry in self.lines():
                if predicate(entry):
                    return entry
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching record line within {timeout}s: {self.lines()}")
            await asyncio.sleep(0.02)  # the file gives no notification; poll it, bounded


def event(name: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["event"] == name and all(e.get(k) == v for k, v in fields.items())


def hooks(plugin: LaunchedPlugin) -> hooks_pb2_grpc.HooksStub:
    return hooks_pb2_grpc.HooksStub(plugin.channel)


async def check(plugin: LaunchedPlugin, service: str = "plugin", timeout: float = 5) -> int:
    stub = health_pb2_grpc.HealthStub(plugin.channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    return response.status


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def exit_status(plugin: LaunchedPlugin, timeout: float = 10) -> int:
    return await asyncio.wait_for(plugin.process.wait(), timeout)


async def launch_fails(argv: list[str], **kwargs: Any) -> errors.LaunchError:
    spec = LaunchSpec(argv=argv, start_timeout_s=kwargs.pop("start_timeout_s", 20), **kwargs)
    with pytest.raises(errors.LaunchError) as info:
        await launch(spec)  # a failed launch kills and reaps the process itself
    return info.value


async def http(
    plugin: LaunchedPlugin, path: str, query: str = "", body: bytes = b""
) -> tuple[list[hooks_pb2.HTTPResponseFrame], grpc.aio.AioRpcError | None]:
    """One ServeHTTP exchange, the request written while the response is read."""
    call = hooks(plugin).ServeHTTP(timeout=30)

    async def write() -> None:
        init = hooks_pb2.HTTPRequestInit(
            method="POST", path=path, raw_query=query, content_length=len(body)
        )
        await call.write(hooks_pb2.HTTPRequestFrame(init=init))
        for start in range(0, len(body), 65536):
            await call.write(hooks_pb2.HTTPRequestFrame(body=body[start : start + 65536]))
        await call.write(hooks_pb2.HTTPRequestFrame(end=hooks_pb2.HTTPRequestEnd()))
        await call.done_writing()

    writer = asyncio.ensure_future(write())
    frames: list[hooks_pb2.HTTPResponseFrame] = []
    error = None
    try:
        async for frame in call:
            frames.append(frame)
    except grpc.aio.AioRpcError as exc:
        error = exc
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)
    return frames, error


def has_error(response: Any) -> bool:
    return "error" in response.DESCRIPTOR.fields_by_name and response.HasField("error")


def body_of(frames: list[hooks_pb2.HTTPResponseFrame]) -> bytes:
    return b"".join(f.body for f in frames if f.WhichOneof("frame") == "body")


def kinds(frames: list[hooks_pb2.HTTPResponseFrame]) -> list[str]:
    return [str(f.WhichOneof("frame")) for f in frames]


def header_values(frame: hooks_pb2.HTTPResponseFrame) -> dict[str, list[str]]:
    return {h.name: list(h.values) for h in frame.init.headers}


async def open_http(plugin: LaunchedPlugin, path: str, query: str = "") -> Any:
    """A ServeHTTP call with its init written; the test writes the rest and reads."""
    call = hooks(plugin).ServeHTTP(timeout=30)
    init = hooks_pb2.HTTPRequestInit(method="POST", path=path, raw_query=query)
    await call.write(hooks_pb2.HTTPRequestFrame(init=init))
    return call


async def read_all(call: Any) -> list[tuple[hooks_pb2.HTTPResponseFrame, float]]:
    """The response frames with the (monotonic) time each arrived."""
    frames = []
    while (frame := await call.read()) is not EOF:
        frames.append((frame, time.monotonic()))
    return frames


def run_fake(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FAKE), *args], capture_output=True, text=True, timeout=30
    )
