"""fake_interpreters/fakeplugin: each scenario behaviour, observed from the host's side.

The fake runs as ``python fakeplugin SCENARIO.json`` (and once directly through its #! line),
launched by the project's launcher. Tests synchronise on what they can observe: call results,
process exits, and lines of the fake's record file, which it writes and flushes per event.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import psutil
import pytest
from google.protobuf.json_format import ParseDict
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pluginconf.goplugin import grpc_controller_pb2, grpc_controller_pb2_grpc
from pluginconf.host import errors
from pluginconf.host.launcher import LaunchedPlugin, LaunchSpec, launch, spawn
from pluginconf.reference.generator import generate_bytes
from pluginconf.v1 import hooks_pb2, hooks_pb2_grpc

FAKE = Path(__file__).resolve().parent.parent / "fake_interpreters" / "fakeplugin"
ALL_HOOKS = [
    "OnConfigurationChange",
    "OnActivate",
    "OnDeactivate",
    "MessageHasBeenPosted",
    "MessageWillBePosted",
    "ExecuteCommand",
    "ServeHTTP",
]
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


def _scenario_module() -> Any:
    """fake_interpreters/fakeplugin_scenario.py, imported from its file (stdlib only)."""
    name = "fakeplugin_scenario"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, FAKE.parent / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while it loads
        spec.loader.exec_module(module)
    return sys.modules[name]


def run_fake(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FAKE), *args], capture_output=True, text=True, timeout=30
    )


# -- well-behaved -------------------------------------------------------------------------


async def test_well_behaved_answers_every_hook_and_serves_http(launch_plugin, tmp_path):
    plugin = await launch_plugin(fake(scenario(tmp_path, {})))
    stub = hooks(plugin)
    assert list((await stub.Implemented(hooks_pb2.ImplementedRequest())).hooks) == ALL_HOOKS
    for name, request in UNARY_REQUESTS.items():
        response = await getattr(stub, name)(request, timeout=5)
        assert not has_error(response), name
    answer = await stub.ExecuteCommand(hooks_pb2.ExecuteCommandRequest(command="/hi 🧩"))
    assert (answer.text, answer.response_type) == ("/hi 🧩", "ephemeral")
    assert await check(plugin) == SERVING

    body = generate_bytes(200_000, seed=7)
    frames, error = await http(plugin, "/echo", body=body)
    assert error is None
    assert kinds(frames)[0] == "init" and frames[0].init.status == 200
    assert kinds(frames)[-1] == "end" and not frames[-1].end.error
    assert body_of(frames) == body
    frames, error = await http(plugin, "/bytes", "n=300000&seed=3")
    assert error is None and kinds(frames)[-1] == "end"
    assert body_of(frames) == generate_bytes(300_000, seed=3)
    frames, _ = await http(plugin, "/nowhere")
    assert frames[0].init.status == 404

    report = await plugin.stop()
    assert (report.ended_by, report.exit_status) == ("shutdown", 0)


async def test_runs_directly_like_an_interpreter_and_stops_on_sigterm(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {})
    # As a host would run it: the file itself, through its #! line; python3 on PATH is ours.
    path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"
    plugin = await launch_plugin([str(FAKE), argv[-1]], env={"PATH": path})
    assert await check(plugin) == SERVING
    plugin.process.send_signal(signal.SIGTERM)
    assert await exit_status(plugin) == 0
    assert record.events("signal")[0]["signal"] == "SIGTERM"
    exiting = record.events("exiting")[-1]
    assert (exiting["reason"], exiting["status"]) == ("SIGTERM", 0)


@pytest.mark.parametrize("transport", ["tcp", "auto-mtls"])
async def test_well_behaved_over_tcp_and_with_auto_mtls(launch_plugin, tmp_path, transport):
    data = {"network": "tcp"} if transport == "tcp" else {}
    plugin = await launch_plugin(fake(scenario(tmp_path, data)), auto_mtls=transport != "tcp")
    assert plugin.handshake.network == ("tcp" if transport == "tcp" else "unix")
    assert (plugin.handshake.server_cert_der is not None) == (transport == "auto-mtls")
    answer = await hooks(plugin).ExecuteCommand(hooks_pb2.ExecuteCommandRequest(command="/t"))
    assert answer.text == "/t"


def test_well_behaved_passes_the_cli_checks(tmp_path):
    path = scenario(tmp_path, {"comment": "a minimal correct plugin"})
    result = subprocess.run(
        [sys.executable, "-m", "pluginconf", "plugin", "-n", "2", "--", *fake(path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout


# -- before and instead of the handshake --------------------------------------------------


async def _start_timeout_after(record: Record, argv: list[str], name: str) -> LaunchedPlugin:
    """Spawn, wait until the fake records ``name``, then read the handshake; the start timeout
    (counted from the spawn, long enough for the fake to start) must expire."""
    plugin = await spawn(LaunchSpec(argv=argv, start_timeout_s=2.0))
    try:
        await record.wait_for(event(name))
        with pytest.raises(errors.StartTimeout):
            await plugin.read_handshake()
    finally:
        await plugin.close()
    return plugin


async def test_never_handshake_times_out(tmp_path):
    argv, record = recorded(tmp_path, {"never_handshake": True})
    plugin = await _start_timeout_after(record, argv, "started")
    assert plugin.noise_lines == []
    assert [e["event"] for e in record.lines()] == ["started"]


async def test_empty_handshake_line_is_noise_then_start_timeout(tmp_path):
    argv, record = recorded(tmp_path, {"handshake": {"line": ""}})
    plugin = await _start_timeout_after(record, argv, "handshake")
    assert plugin.noise_lines == [""]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("2|1|unix|/x|grpc", errors.CoreVersionMismatch),
        ("1|7|unix|/x|grpc", errors.AppVersionUnsupported),
        ("1|1|udp|/x|grpc", errors.UnknownNetwork),
        ("1|1|unix|/x|netrpc", errors.UnsupportedProtocol),
        ("garbage|", errors.MalformedHandshake),
        ("1|1|unix|/nonexistent/fake.sock|grpc", errors.AddressUnreachable),
    ],
    ids=["core-version", "app-version", "network", "protocol", "garbage", "unreachable"],
)
async def test_bad_handshake_line_gives_its_typed_error(tmp_path, line, error):
    path = scenario(tmp_path, {"handshake": {"line": line}})
    exc = await launch_fails(fake(path), connect_timeout_s=0.5)
    assert type(exc) is error
    assert exc.line == line


async def test_exit_before_handshake_carries_status_and_stderr(tmp_path):
    path = scenario(tmp_path, {"handshake": {"exit_before": 3}})
    exc = await launch_fails(fake(path))
    assert type(exc) is errors.ExitedBeforeHandshake
    assert exc.exit_status == 3
    assert "exiting with status 3 before the handshake" in exc.stderr_tail


async def test_closed_stdout_is_no_handshake(tmp_path):
    path = scenario(tmp_path, {"handshake": {"close_stdout": True}})
    assert type(await launch_fails(fake(path))) is errors.NoHandshake


async def test_noise_before_handshake_is_recorded_by_the_launcher(launch_plugin, tmp_path):
    plugin = await launch_plugin(fake(scenario(tmp_path, {"noise_before_handshake": 3})))
    assert plugin.noise_lines == [f"fakeplugin noise line {i} of 3" for i in (1, 2, 3)]
    lines = ["starting up", "loading config ✓"]
    plugin = await launch_plugin(fake(scenario(tmp_path, {"noise_before_handshake": lines})))
    assert plugin.noise_lines == lines
    assert await check(plugin) == SERVING


async def test_too_much_noise_is_rejected(tmp_path):
    path = scenario(tmp_path, {"noise_before_handshake": 65})
    assert type(await launch_fails(fake(path))) is errors.TooMuchNoise


async def test_slow_start_beyond_the_start_timeout(tmp_path):
    argv, record = recorded(tmp_path, {"slow_start": 60})
    exc = await launch_fails(argv, start_timeout_s=1.0)
    assert type(exc) is errors.StartTimeout
    assert not record.events("handshake")


async def test_slow_start_within_the_start_timeout(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {"slow_start": 0.5})
    await launch_plugin(argv)
    started, handshake = record.events("started")[0], record.events("handshake")[0]
    assert handshake["monotonic"] - started["monotonic"] >= 0.5


# -- crashes ------------------------------------------------------------------------------


async def test_crash_on_activate(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {"crash": {"on": "activate"}})
    plugin = await launch_plugin(argv)
    stub = hooks(plugin)
    await stub.OnConfigurationChange(hooks_pb2.OnConfigurationChangeRequest(), timeout=5)
    exc = await rpc_error(stub.OnActivate(hooks_pb2.OnActivateRequest(), timeout=5))
    assert exc.code() == grpc.StatusCode.UNAVAILABLE
    assert await exit_status(plugin) == 3
    assert record.events("exiting")[-1]["reason"] == "crash.on: OnActivate"


async def test_crash_after_hook_calls(launch_plugin, tmp_path):
    path = scenario(tmp_path, {"crash": {"after_hook_calls": 2, "exit_code": 5}})
    plugin = await launch_plugin(fake(path))
    stub = hooks(plugin)
    await stub.Implemented(hooks_pb2.ImplementedRequest(), timeout=5)  # not counted
    for i in (1, 2):
        answer = await stub.ExecuteCommand(hooks_pb2.ExecuteCommandRequest(command=f"/{i}"))
        assert answer.text == f"/{i}"
    assert await exit_status(plugin) == 5
    exc = await rpc_error(stub.ExecuteCommand(hooks_pb2.ExecuteCommandRequest(), timeout=5))
    assert exc.code() == grpc.StatusCode.UNAVAILABLE


async def test_crash_during_http_response(launch_plugin, tmp_path):
    path = scenario(tmp_path, {"crash": {"during_http_after_bytes": 100_000}})
    plugin = await launch_plugin(fake(path))
    frames, error = await http(plugin, "/bytes", "n=1000000")
    assert error is not None
    assert kinds(frames)[0] == "init" and "end" not in kinds(frames)
    assert body_of(frames) == generate_bytes(100_000)
    assert await exit_status(plugin) == 3


# -- hangs, health ------------------------------------------------------------------------


async def test_hung_hook_exceeds_its_deadline(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {"hang": {"hook": "ExecuteCommand"}})
    plugin = await launch_plugin(argv)
    stub = hooks(plugin)
    exc = await rpc_error(stub.ExecuteCommand(hooks_pb2.ExecuteCommandRequest(), timeout=0.5))
    assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert not (await stub.OnActivate(hooks_pb2.OnActivateRequest(), timeout=5)).HasField("error")
    call = record.events("call")[-2]
    assert (call["hook"], record.events("hanging")[0]["call"]) == ("ExecuteCommand", call["call"])
    end = await record.wait_for(event("call_end", call=call["call"]))
    assert end["outcome"] == "cancelled"  # the fake saw the host give up


@pytest.mark.parametrize(
    "when", [True, {"after_checks": 1}, {"after_s": 0.3}], ids=["always", "after-1", "after-0.3s"]
)
async def test_hung_health_exceeds_its_deadline(launch_plugin, tmp_path, when):
    plugin = await launch_plugin(fake(scenario(tmp_path, {"hang": {"health": when}})))
    answered: list[int] = []
    failure = None
    deadline = time.monotonic() + 10
    while failure is None:  # SERVING until the scenario's point, then no answer in time
        assert time.monotonic() < deadline, f"health still answers: {answered}"
        try:
            answered.append(await check(plugin, timeout=0.5))
        except grpc.aio.AioRpcError as exc:
            failure = exc.code()
        await asyncio.sleep(0.05)  # after_s is a time: sample it
    assert failure == grpc.StatusCode.DEADLINE_EXCEEDED
    assert set(answered) <= {SERVING}
    if when == {"after_checks": 1}:
        assert answered == [SERVING]
    if when is True:
        assert answered == []
    answer = await hooks(plugin).ExecuteCommand(hooks_pb2.ExecuteCommandRequest(command="/ok"))
    assert answer.text == "/ok"


async def test_not_serving(launch_plugin, tmp_path):
    plugin = await launch_plugin(fake(scenario(tmp_path, {"health": "NOT_SERVING"})))
    assert await check(plugin) == NOT_SERVING
    assert await check(plugin, service="") == NOT_SERVING
    exc = await rpc_error(check(plugin, service="other"))
    assert exc.code() == grpc.StatusCode.NOT_FOUND


async def test_flapping_health_shows_both_states(launch_plugin, tmp_path):
    plugin = await launch_plugin(fake(scenario(tmp_path, {"health": {"flap_every_s": 0.2}})))
    seen = set()
    deadline = time.monotonic() + 10
    while seen != {SERVING, NOT_SERVING} and time.monotonic() < deadline:
        seen.add(await check(plugin))
        await asyncio.sleep(0.05)  # sampling a time-driven status
    assert seen == {SERVING, NOT_SERVING}
    # Watch reports each change as it happens.
    request = health_pb2.HealthCheckRequest(service="plugin")
    watch = health_pb2_grpc.HealthStub(plugin.channel).Watch(request, timeout=10)
    statuses = [(await watch.read()).status for _ in range(3)]
    watch.cancel()
    assert statuses[0] != statuses[1] != statuses[2]


# -- hooks --------------------------------------------------------------------------------


async def test_activation_error(launch_plugin, tmp_path):
    error = {"code": "license_missing", "message": "no licence for 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🧩"}
    plugin = await launch_plugin(fake(scenario(tmp_path, {"activation_error": error})))
    answer = await hooks(plugin).OnActivate(hooks_pb2.OnActivateRequest(), timeout=5)
    assert (answer.error.code, answer.error.message) == (error["code"], error["message"])


async def test_hook_subset(launch_plugin, tmp_path):
    subset = ["ExecuteCommand", "OnActivate"]
    plugin = await launch_plugin(fake(scenario(tmp_path, {"hooks": subset})))
    stub = hooks(plugin)
    listed = list((await stub.Implemented(hooks_pb2.ImplementedRequest())).hooks)
    assert listed == ["OnActivate", "ExecuteCommand"]  # in the SDK's order
    for name, request in UNARY_REQUESTS.items():
        if name in subset:
            await getattr(stub, name)(request, timeout=5)
        else:
            exc = await rpc_error(getattr(stub, name)(request, timeout=5))
            assert exc.code() == grpc.StatusCode.UNIMPLEMENTED, name
    # UNIMPLEMENTED at once, before any request frame (as the SDK answers).
    exc = await rpc_error(stub.ServeHTTP(timeout=5).read())
    assert exc.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_hook_delay(launch_plugin, tmp_path):
    plugin = await launch_plugin(fake(scenario(tmp_path, {"hook_delay_ms": 300})))
    stub = hooks(plugin)
    start = time.monotonic()
    await stub.ExecuteCommand(hooks_pb2.ExecuteCommandRequest(command="/slow"), timeout=10)
    assert time.monotonic() - start >= 0.3
    exc = await rpc_error(stub.ExecuteCommand(hooks_pb2.ExecuteCommandRequest(), timeout=0.1))
    assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED


# -- stopping and leftovers ---------------------------------------------------------------


async def test_ignore_shutdown_needs_sigkill(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {"ignore_shutdown": True})
    plugin = await launch_plugin(argv)
    report = await plugin.stop(grace_s=0.3, term_grace_s=0.3)
    assert (report.ended_by, report.shutdown_answer) == ("sigkill", "ok")
    assert report.exit_status == -signal.SIGKILL
    assert record.events("shutdown_requested")[0]["ignored"] is True
    assert [(e["signal"], e["ignored"]) for e in record.events("signal")] == [("SIGTERM", True)]
    assert not record.events("exiting")


def _gone(pid: int) -> bool:
    """Not running: no such process, or a zombie (an init that does not reap leaves those)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_grandchild_outlives_the_plugin_until_the_group_is_killed(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {"spawn_grandchild": {"seconds": 60}})
    plugin = await launch_plugin(argv)
    grandchild = record.events("grandchild")[0]["grandchild_pid"]
    assert os.getpgid(grandchild) == plugin.pid
    controller = grpc_controller_pb2_grpc.GRPCControllerStub(plugin.channel)
    await controller.Shutdown(grpc_controller_pb2.Empty(), timeout=5)
    assert await exit_status(plugin) == 0
    assert not _gone(grandchild)  # the fake did not end its child (a CT-9 violation)
    await plugin.stop()  # the launcher kills what is left of the group
    for _ in range(250):  # SIGKILL is delivered asynchronously: up to 5 s
        if _gone(grandchild):
            break
        await asyncio.sleep(0.02)
    assert _gone(grandchild)


# -- stderr flood -------------------------------------------------------------------------


async def _calls_until_flood_done(plugin: LaunchedPlugin, record: Record) -> int:
    """Make calls until the fake records the end of the flood; return how many answered."""
    stub = hooks(plugin)
    answered = 0
    deadline = time.monotonic() + 60
    while not record.events("flood_done"):
        assert time.monotonic() < deadline, "the flood did not finish within 60 s"
        await stub.ExecuteCommand(hooks_pb2.ExecuteCommandRequest(command="/ping"), timeout=10)
        answered += 1
    return answered


async def test_flood_stderr_after_handshake(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {"flood_stderr": 100 * MiB})
    plugin = await launch_plugin(argv)
    await record.wait_for(event("flood_started"))
    assert await _calls_until_flood_done(plugin, record) >= 1
    done = record.events("flood_done")[0]
    assert done["bytes"] == 100 * MiB
    pings = [
        e
        for e in record.events("call")
        if e["request"] == {"command": "/ping", "user_id": "", "channel_id": ""}
    ]
    assert pings and pings[0]["monotonic"] < done["monotonic"], "no call answered during the flood"
    assert plugin.stderr_tail and set(plugin.stderr_tail[-1]) == {"x"}  # the launcher drained it


async def test_flood_stderr_before_handshake_does_not_delay_it(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {"flood_stderr": {"bytes": 100 * MiB, "when": "before"}})
    plugin = await launch_plugin(argv)
    await _calls_until_flood_done(plugin, record)
    handshake, done = record.events("handshake")[0], record.events("flood_done")[0]
    assert handshake["monotonic"] < done["monotonic"]


# -- the record ---------------------------------------------------------------------------


async def test_record_holds_every_call_exactly(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {})
    plugin = await launch_plugin(argv)
    stub = hooks(plugin)
    unusual = '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 beyond the BMP 🧩, ünïcödé, and "quotes"\n'
    sent: list[tuple[str, Any]] = [
        (
            "OnConfigurationChange",
            hooks_pb2.OnConfigurationChangeRequest(configuration={"k": unusual, "empty": ""}),
        ),
        ("OnActivate", hooks_pb2.OnActivateRequest(plugin_id="fake-🧩", host_api_broker_id=0)),
        ("ExecuteCommand", hooks_pb2.ExecuteCommandRequest(command=unusual, user_id="u1")),
        (
            "MessageWillBePosted",
            hooks_pb2.MessageWillBePostedRequest(
                post=hooks_pb2.Post(id="p1", message=unusual, props={"a": "🧩"}, create_at=2**40)
            ),
        ),
    ]
    for name, request in sent:
        await getattr(stub, name)(request, timeout=5)
    body = unusual.encode() * 1000
    frames, _ = await http(plugin, "/echo", "q=🧩", body)
    assert body_of(frames) == body
    await plugin.stop()

    lines = record.lines()
    names = [e["event"] for e in lines]
    assert names[:2] == ["started", "handshake"]
    assert names[-3:] == ["shutdown_requested", "stopping", "exiting"]
    assert {e["pid"] for e in lines} == {plugin.pid}
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))
    times = [e["monotonic"] for e in lines]
    assert times == sorted(times)
    started = lines[0]
    assert started["env"]["PLUGIN_UNIX_SOCKET_DIR"] == plugin.socket_dir
    assert started["env"]["PLUGINCONF_MAGIC_COOKIE"] == "pluginconf"
    assert started["pgid"] == plugin.pid and started["stdio"]["0"] == "/dev/null"
    assert lines[1]["line"] == plugin.handshake.format()

    calls = [e for e in lines if e["event"] == "call"]
    assert [c["hook"] for c in calls] == [name for name, _ in sent] + ["ServeHTTP"]
    for call, (_, request) in zip(calls, sent, strict=False):
        assert ParseDict(call["request"], type(request)()) == request
    http_call = calls[-1]
    init = http_call["request"]["init"]
    assert (init["method"], init["path"], init["raw_query"]) == ("POST", "/echo", "q=🧩")
    request_end = record.events("http_request_end")[0]
    assert (request_end["call"], request_end["body_bytes"]) == (http_call["call"], len(body))
    assert request_end["complete"] is True
    ends = {e["call"]: e for e in record.events("call_end")}
    assert ends[http_call["call"]]["response_body_bytes"] == len(body)
    assert all(ends[c["call"]]["outcome"] == "ok" for c in calls)
    assert "𝔘𝔫𝔦𝔠𝔬𝔡𝔢" in record.path.read_text(encoding="utf-8")  # written as is, not escaped
    assert lines[-1]["status"] == 0 and lines[-1]["reason"] == "shutdown"


# -- bad scenarios ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"crahs": {}}, "crahs: unknown key; did you mean 'crash'?"),
        (
            {"crash": {"after_hook_calls": "two"}},
            'crash.after_hook_calls: expected an integer >= 1, got "two"',
        ),
        ({"crash": {}}, "crash: expected at least one of on, after_hook_calls"),
        ({"hooks": ["OnActivate", "Frobnicate"]}, "hooks[1]: expected a hook name, one of"),
        ({"health": "SICK"}, 'health: expected "SERVING", "NOT_SERVING"'),
        ({"slow_start": -1}, "slow_start: expected a number of seconds >= 0, got -1"),
        ({"handshake": {"line": "a", "exit_before": 1}}, "handshake: expected exactly one of"),
        (
            {"record": {"file": "r.jsonl", "observer": "127.0.0.1:9"}},
            "record.observer: not supported yet",
        ),
        (
            {"never_handshake": True, "hang": {"hook": "OnActivate"}},
            "hang: applies only to a plugin that serves",
        ),
        (
            {"activation_error": {"code": "x"}, "hooks": ["ExecuteCommand"]},
            "activation_error: needs OnActivate in hooks",
        ),
        ({"flood_stderr": True}, "flood_stderr: expected a number of bytes or an object, got true"),
        ("[]", "the scenario: expected a JSON object, got []"),
        ("{not json", "not valid JSON: Expecting property name"),
        ('{"hooks": [], "hooks": []}', "hooks: appears twice"),
    ],
)
def test_bad_scenario_exits_2_naming_the_key(tmp_path, data, message):
    result = run_fake(str(scenario(tmp_path, data)))
    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr, result.stderr


def test_readme_examples_are_valid_scenarios(tmp_path):
    readme = (FAKE.parent / "README.md").read_text(encoding="utf-8")
    examples = [block for block in readme.split("```json\n")[1:]]
    scenarios = [e.split("```")[0] for e in examples if not e.startswith('{"event"')]
    assert len(scenarios) >= 20
    module = _scenario_module()
    for i, text in enumerate(scenarios):
        module.load(str(scenario(tmp_path, text, f"example{i}.json")))  # raises if invalid


def test_check_only_validates(tmp_path):
    result = run_fake("--check", str(scenario(tmp_path, {"never_handshake": True})))
    assert (result.returncode, result.stderr) == (0, "")
    assert "is valid" in result.stdout
    result = run_fake("--check", str(scenario(tmp_path, {"hooks": "ExecuteCommand"})))
    assert result.returncode == 2
    assert (
        'hooks: expected a list of hook names (may be empty), got "ExecuteCommand"' in result.stderr
    )


def test_bad_command_lines_exit_2(tmp_path):
    result = run_fake()
    assert (result.returncode, result.stdout) == (2, "")
    assert "expected exactly one argument, the scenario file" in result.stderr
    result = run_fake(str(tmp_path / "missing.json"))
    assert result.returncode == 2
    assert "cannot read the scenario file: No such file or directory" in result.stderr


def test_unopenable_record_file_exits_2(tmp_path):
    path = scenario(tmp_path, {"record": {"file": "no/such/dir/calls.jsonl"}})
    result = run_fake(str(path))
    assert (result.returncode, result.stdout) == (2, "")
    assert "record.file: cannot open" in result.stderr
