"""The fake plugin (pluginconf.fake): each scenario behaviour, observed from the host's side.

The fake runs as ``python fake_interpreters/fakeplugin SCENARIO.json`` (once directly through
its #! line, once as ``python -m pluginconf.fake``), launched by the project's launcher. Tests
synchronise on what they can observe: call results, process exits, lines of the fake's record
file, which it writes and flushes per event, and the reports of its Observer client.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import psutil
import pytest
from google.protobuf.json_format import ParseDict
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pluginconf._grpc_compat import EOF
from pluginconf.control import control_pb2, control_pb2_grpc
from pluginconf.fake import scenario as fake_scenario
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


async def test_runs_as_python_m_pluginconf_fake(launch_plugin, tmp_path):
    path = scenario(tmp_path, {"command_response": {"text": "via -m"}})
    plugin = await launch_plugin([sys.executable, "-m", "pluginconf.fake", str(path)])
    answer = await hooks(plugin).ExecuteCommand(hooks_pb2.ExecuteCommandRequest(command="/m"))
    assert answer.text == "via -m"


def test_python_m_checks_the_scenario_first(tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "pluginconf.fake", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30)

    result = run("--check", str(scenario(tmp_path, {"filter": {"action": "reject"}})))
    assert (result.returncode, result.stderr) == (0, "")
    assert "is valid" in result.stdout
    result = run(str(scenario(tmp_path, {"filter": {"action": "drop"}}, "bad.json")))
    assert (result.returncode, result.stdout) == (2, "")
    assert 'filter.action: expected "keep", "modify" or "reject", got "drop"' in result.stderr


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


async def test_serving_after_a_delay(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {"health": {"serving_after_s": 1.5}})
    plugin = await launch_plugin(argv)
    assert await check(plugin) == NOT_SERVING
    request = health_pb2.HealthCheckRequest(service="plugin")
    watch = health_pb2_grpc.HealthStub(plugin.channel).Watch(request, timeout=10)
    statuses = [(await watch.read()).status for _ in range(2)]  # the change is pushed
    watch.cancel()
    assert statuses == [NOT_SERVING, SERVING]
    assert await check(plugin) == SERVING

    handshake, serving = record.events("handshake")[0], record.events("health_serving")[0]
    assert serving["monotonic"] - handshake["monotonic"] >= 1.5 - 0.01
    answers = [
        (e["method"].rsplit("/", 1)[1], e["service"], e["answer"], e["seq"] > serving["seq"])
        for e in record.events("health_answer")
    ]
    assert answers == [
        ("Check", "plugin", "NOT_SERVING", False),
        ("Watch", "plugin", "NOT_SERVING", False),
        ("Watch", "plugin", "SERVING", True),
        ("Check", "plugin", "SERVING", True),
    ]


# -- hooks --------------------------------------------------------------------------------


async def test_activation_error(launch_plugin, tmp_path):
    error = {"code": "license_missing", "message": "no licence for 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🧩"}
    plugin = await launch_plugin(fake(scenario(tmp_path, {"activation_error": error})))
    answer = await hooks(plugin).OnActivate(hooks_pb2.OnActivateRequest(), timeout=5)
    assert (answer.error.code, answer.error.message) == (error["code"], error["message"])


async def test_hook_errors(launch_plugin, tmp_path):
    wanted = {
        hook: {"code": f"{hook.lower()}_failed", "message": f"{hook} says no 🧩"}
        for hook in fake_scenario.HOOKS_WITH_ERROR
    }
    argv, record = recorded(tmp_path, {"hook_errors": wanted})
    plugin = await launch_plugin(argv)
    stub = hooks(plugin)
    for name, request in UNARY_REQUESTS.items():
        answer = await getattr(stub, name)(request, timeout=5)
        if name in wanted:
            assert (answer.error.code, answer.error.message) == tuple(wanted[name].values())
        else:
            assert not has_error(answer), name
    outcomes = {e["hook"]: e["outcome"] for e in record.events("call_end")}
    assert outcomes == {n: "app_error" if n in wanted else "ok" for n in UNARY_REQUESTS}


POST = hooks_pb2.Post(
    id="p1", channel_id="c1", user_id="u1", message="hello 🧩", props={"k": "v"}, create_at=2**40
)


@pytest.mark.parametrize(
    ("spec", "action", "message", "reason"),
    [
        ({}, hooks_pb2.FILTER_ACTION_KEEP, None, ""),
        (
            {"action": "modify", "append": " [checked ✓]"},
            hooks_pb2.FILTER_ACTION_MODIFY,
            "hello 🧩 [checked ✓]",
            "",
        ),
        ({"action": "reject", "reason": "spam"}, hooks_pb2.FILTER_ACTION_REJECT, None, "spam"),
        ({"action": "reject"}, hooks_pb2.FILTER_ACTION_REJECT, None, "rejected by fakeplugin"),
    ],
    ids=["keep", "modify", "reject", "reject-default-reason"],
)
async def test_filter(launch_plugin, tmp_path, spec, action, message, reason):
    plugin = await launch_plugin(fake(scenario(tmp_path, {"filter": spec})))
    request = hooks_pb2.MessageWillBePostedRequest(post=POST)
    answer = await hooks(plugin).MessageWillBePosted(request, timeout=5)
    assert (answer.action, answer.rejection_reason) == (action, reason)
    assert not has_error(answer)
    if message is None:
        assert not answer.HasField("post")
    else:
        expected = hooks_pb2.Post()
        expected.CopyFrom(POST)
        expected.message = message
        assert answer.post == expected  # every other field kept


@pytest.mark.parametrize(
    ("spec", "text", "response_type"),
    [
        ({"text": "done ✓", "response_type": "in_channel"}, "done ✓", "in_channel"),
        ({"response_type": "in_channel"}, "/cmd arg", "in_channel"),
        ({"text": ""}, "", "ephemeral"),
    ],
    ids=["both", "type-only", "empty-text"],
)
async def test_command_response(launch_plugin, tmp_path, spec, text, response_type):
    plugin = await launch_plugin(fake(scenario(tmp_path, {"command_response": spec})))
    request = hooks_pb2.ExecuteCommandRequest(command="/cmd arg")
    answer = await hooks(plugin).ExecuteCommand(request, timeout=5)
    assert (answer.text, answer.response_type) == (text, response_type)


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


# -- HTTP routes --------------------------------------------------------------------------


async def test_http_headers_statuses_and_bytes_length(launch_plugin, tmp_path):
    plugin = await launch_plugin(fake(scenario(tmp_path, {})))
    frames, error = await http(plugin, "/headers")
    assert error is None and frames[0].init.status == 200
    headers = header_values(frames[0])
    assert (headers["x-multi"], headers["set-cookie"]) == (["a", "b", "c"], ["a=1", "b=2"])
    assert body_of(frames) == b"headers\n"
    assert "connection" not in headers and "x-hop-secret" not in headers
    frames, _ = await http(plugin, "/headers", "hop=1")
    hop = header_values(frames[0])
    assert (hop["connection"], hop["x-hop-secret"]) == (["x-hop-secret"], ["1"])
    assert (hop["keep-alive"], hop["proxy-connection"]) == (["timeout=99"], ["keep-alive"])
    for code in (200, 201, 404, 418, 503, 599):
        frames, _ = await http(plugin, f"/status/{code}")
        body = f"status {code}\n".encode()
        assert (frames[0].init.status, body_of(frames)) == (code, body)
        assert header_values(frames[0])["content-length"] == [str(len(body))]
    for code in (204, 304):
        frames, _ = await http(plugin, f"/status/{code}")
        assert (frames[0].init.status, body_of(frames)) == (code, b"")
        assert "content-length" not in header_values(frames[0])
    for bad in ("99", "600", "abc"):
        frames, _ = await http(plugin, f"/status/{bad}")
        assert frames[0].init.status == 400
        assert b"expected /status/CODE with CODE from 200 to 599" in body_of(frames)
    frames, _ = await http(plugin, "/bytes", "n=1000")
    assert header_values(frames[0])["content-length"] == ["1000"]


async def test_http_drip_flushes_each_piece(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {})
    plugin = await launch_plugin(argv)
    call = await open_http(plugin, "/drip", "n=3&ms=300")
    await call.write(hooks_pb2.HTTPRequestFrame(end=hooks_pb2.HTTPRequestEnd()))
    frames = await read_all(call)
    assert kinds([f for f, _ in frames]) == ["init"] + ["body", "flush"] * 3 + ["end"]
    bodies = [(f.body, t) for f, t in frames if f.WhichOneof("frame") == "body"]
    assert [b for b, _ in bodies] == [b"piece 1\n", b"piece 2\n", b"piece 3\n"]
    call_id = record.events("call")[-1]["call"]
    sent = record.events("http_piece_sent")
    assert [(e["call"], e["index"]) for e in sent] == [(call_id, 1), (call_id, 2), (call_id, 3)]
    for (_, arrived), next_sent in zip(bodies, sent[1:], strict=False):
        assert arrived < next_sent["monotonic"]  # each piece came before the next was sent
    assert sent[2]["monotonic"] - sent[1]["monotonic"] >= 0.3 - 0.01


async def test_http_hold_records_the_client_leaving(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {})
    plugin = await launch_plugin(argv)
    call = await open_http(plugin, "/hold")
    frames = [await call.read() for _ in range(3)]
    assert kinds(frames) == ["init", "body", "flush"] and frames[1].body == b"holding\n"
    call_id = record.events("call")[-1]["call"]
    reader = asyncio.ensure_future(call.read())
    done, _ = await asyncio.wait({reader}, timeout=0.3)
    assert not done, "/hold answered more"
    call.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    gone = await record.wait_for(event("http_disconnect", call=call_id))
    assert gone["path"] == "/hold"
    request_end = await record.wait_for(event("http_request_end", call=call_id))
    assert request_end["complete"] is False  # the request never ended: the client left


async def test_http_sink_reports_progress_and_answers_at_the_end(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {})
    plugin = await launch_plugin(argv)
    call = await open_http(plugin, "/sink")
    reader = asyncio.ensure_future(call.read())
    body = generate_bytes(3 * 65536 + 5, seed=11)
    sent = 0
    for start in range(0, len(body), 65536):
        piece = body[start : start + 65536]
        await call.write(hooks_pb2.HTTPRequestFrame(body=piece))
        sent += len(piece)
        progress = await record.wait_for(event("http_body_progress", bytes=sent))
        assert progress["call"] == record.events("call")[-1]["call"]
    done, _ = await asyncio.wait({reader}, timeout=0.3)
    assert not done, "/sink answered before the end of the request"
    await call.write(hooks_pb2.HTTPRequestFrame(end=hooks_pb2.HTTPRequestEnd()))
    await call.done_writing()
    frames = [await reader] + [f for f, _ in await read_all(call)]
    assert frames[0].init.status == 200 and kinds(frames)[-1] == "end"
    assert body_of(frames) == f"{len(body)} {hashlib.sha256(body).hexdigest()}\n".encode()
    steps = [e["bytes"] for e in record.events("http_body_progress")]
    assert steps == [65536, 131072, 196608, len(body)]


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


# -- the observer -------------------------------------------------------------------------


class Observer(control_pb2_grpc.ObserverServicer):
    """The suite's side of record.observer: reports kept in arrival order. The ack of an event
    named in ``hold`` waits until that gate is set."""

    def __init__(self) -> None:
        # A short directory: a unix socket path must fit in 107 bytes, tmp_path may not.
        self.directory = tempfile.mkdtemp(prefix="obs-")
        self.target = f"unix:{self.directory}/observer.sock"
        self.events: list[control_pb2.ObservedEvent] = []
        self.hold: dict[str, asyncio.Event] = {}
        self._arrived = asyncio.Condition()
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        self._server = grpc.aio.server()
        control_pb2_grpc.add_ObserverServicer_to_server(self, self._server)
        self._server.add_insecure_port(self.target)
        await self._server.start()

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(None)
            self._server = None
        shutil.rmtree(self.directory, ignore_errors=True)

    async def Report(self, request, context):
        async with self._arrived:
            self.events.append(request)
            self._arrived.notify_all()
        gate = self.hold.get(request.event)
        if gate is not None:
            await asyncio.wait_for(gate.wait(), 10)
        return control_pb2.ReportAck()

    async def wait_for(self, name: str, timeout: float = 10) -> control_pb2.ObservedEvent:
        def found() -> control_pb2.ObservedEvent | None:
            return next((e for e in self.events if e.event == name), None)

        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: found() is not None)
        event = found()
        assert event is not None
        return event


@pytest.fixture
async def observer() -> AsyncIterator[Observer]:
    servicer = Observer()
    await servicer.start()
    yield servicer
    await servicer.stop()


NOT_FIELDS = ("event", "seq", "pid", "monotonic", "wall")


async def test_observer_sees_every_event_before_the_fake_acts(launch_plugin, tmp_path, observer):
    record = Record(tmp_path / "calls.jsonl")
    label = "fake-a 🧩"
    watched = {"file": record.path.name, "observer": observer.target, "label": label}
    # The flood thread records too: its events must keep their place in the seq order.
    data = {"flood_stderr": 4 * MiB, "record": watched}
    plugin = await launch_plugin(fake(scenario(tmp_path, data)))
    await observer.wait_for("flood_done")
    gate = observer.hold["call"] = asyncio.Event()
    request = hooks_pb2.ExecuteCommandRequest(command="/observed")
    answer = asyncio.ensure_future(hooks(plugin).ExecuteCommand(request, timeout=10))
    call = await observer.wait_for("call")
    done, _ = await asyncio.wait({answer}, timeout=0.3)
    assert not done, "the host got its answer before the observer acknowledged the call"
    gate.set()
    assert (await answer).text == "/observed"
    await plugin.stop()

    events = observer.events
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert {(e.label, e.pid) for e in events} == {(label, plugin.pid)}
    assert json.loads(call.fields_json)["request"]["command"] == "/observed"
    names = [e.event for e in events]
    assert names[:2] == ["started", "handshake"] and names[-1] == "exiting"
    assert {"flood_started", "flood_done", "call", "call_end"} <= set(names)
    lines = record.lines()  # the file holds the same events, with the same seq
    assert [(e.event, e.seq, e.pid, e.monotonic, e.wall) for e in events] == [
        tuple(line[k] for k in NOT_FIELDS) for line in lines
    ]
    for reported, line in zip(events, lines, strict=True):
        assert json.loads(reported.fields_json) == {
            k: v for k, v in line.items() if k not in NOT_FIELDS
        }


async def test_observer_hears_a_crash_before_the_exit(launch_plugin, tmp_path, observer):
    data = {"crash": {"on": "OnActivate"}, "record": {"observer": observer.target}}
    plugin = await launch_plugin(fake(scenario(tmp_path, data)))
    exc = await rpc_error(hooks(plugin).OnActivate(hooks_pb2.OnActivateRequest(), timeout=5))
    assert exc.code() == grpc.StatusCode.UNAVAILABLE
    assert await exit_status(plugin) == 3
    last = observer.events[-1]
    assert (last.event, last.label) == ("exiting", "")
    assert json.loads(last.fields_json) == {"reason": "crash.on: OnActivate", "status": 3}


async def test_observer_gone_later_costs_one_warning(launch_plugin, tmp_path, observer):
    data = {"record": {"observer": observer.target}}
    plugin = await launch_plugin(fake(scenario(tmp_path, data)))
    await observer.stop()
    stub = hooks(plugin)
    for i in range(3):
        request = hooks_pb2.ExecuteCommandRequest(command=f"/after {i}")
        assert (await stub.ExecuteCommand(request, timeout=10)).text == f"/after {i}"

    def warnings() -> list[str]:
        return [line for line in plugin.stderr_tail if "record.observer" in line]

    deadline = time.monotonic() + 10
    while not warnings():
        assert time.monotonic() < deadline, f"no warning on stderr: {plugin.stderr_tail}"
        await asyncio.sleep(0.02)  # the launcher drains stderr on its own; poll it, bounded
    assert len(warnings()) == 1
    assert "no further events are reported to it" in warnings()[0]
    assert await check(plugin) == SERVING


@pytest.mark.parametrize("where", ["unix", "tcp"])
def test_unreachable_observer_exits_2(tmp_path, where):
    target = f"unix:{tmp_path}/nobody.sock" if where == "unix" else "127.0.0.1:1"
    record = tmp_path / "calls.jsonl"
    data = {"record": {"observer": target, "file": record.name}}
    result = run_fake(str(scenario(tmp_path, data)))
    assert (result.returncode, result.stdout) == (2, "")
    assert f"record.observer: cannot report to {target!r}" in result.stderr, result.stderr
    assert "start it before the plugin, or fix the address" in result.stderr
    assert not record.exists() or record.read_text() == ""


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
            {"record": {}},
            "record: expected the key file (a path, relative to the scenario), the key observer",
        ),
        ({"record": {"observer": 5}}, "record.observer: expected a string, got 5"),
        ({"record": {"observer": ""}}, 'record.observer: expected a non-empty string, got ""'),
        (
            {"record": {"file": "r.jsonl", "label": "a"}},
            "record.label: only goes with record.observer",
        ),
        ({"record": {"observer": "unix:/x", "label": 3}}, "record.label: expected a string, got 3"),
        (
            {"record": {"observer": "unix:/x", "lable": "a"}},
            "record.lable: unknown key; did you mean 'label'?",
        ),
        (
            {"health": {"serving_after_s": -1}},
            "health.serving_after_s: expected a number of seconds >= 0, got -1",
        ),
        (
            {"health": {"serving_after_s": 1, "flap_every_s": 1}},
            "health: expected exactly one of flap_every_s, serving_after_s, got serving_after_s, flap_every_s",
        ),
        (
            {"hook_errors": []},
            "hook_errors: expected an object {HOOK: {code: C, message: M}, ...}, got []",
        ),
        (
            {"hook_errors": {"MessageHasBeenPosted": {"code": "x"}}},
            "hook_errors.MessageHasBeenPosted: MessageHasBeenPosted has no error in its response; expected one of",
        ),
        ({"hook_errors": {"Frob": {"code": "x"}}}, "hook_errors.Frob: expected a hook name"),
        (
            {"hook_errors": {"OnDeactivate": {"message": "m"}}},
            "hook_errors.OnDeactivate: expected the key code",
        ),
        (
            {"hook_errors": {"OnDeactivate": {"code": ""}}},
            'hook_errors.OnDeactivate.code: expected a non-empty string, got ""',
        ),
        (
            {"hook_errors": {"activate": {"code": "a"}, "OnActivate": {"code": "b"}}},
            "hook_errors.OnActivate: OnActivate is given more than once",
        ),
        (
            {"activation_error": {"code": "a"}, "hook_errors": {"OnActivate": {"code": "b"}}},
            "activation_error: OnActivate also has hook_errors; give one of the two",
        ),
        (
            {"hook_errors": {"ExecuteCommand": {"code": "x"}}, "hooks": ["OnActivate"]},
            "hook_errors.ExecuteCommand: needs ExecuteCommand in hooks",
        ),
        (
            {"filter": {"action": "drop"}},
            'filter.action: expected "keep", "modify" or "reject", got "drop"',
        ),
        ({"filter": {"append": "x"}}, 'filter.append: only goes with filter.action "modify"'),
        (
            {"filter": {"action": "keep", "reason": "r"}},
            'filter.reason: only goes with filter.action "reject"',
        ),
        ({"filter": {"action": "modify", "append": 1}}, "filter.append: expected a string, got 1"),
        ({"filter": {}, "hooks": ["OnActivate"]}, "filter: needs MessageWillBePosted in hooks"),
        (
            {"filter": {"action": "reject"}, "hook_errors": {"MessageWillBePosted": {"code": "x"}}},
            "filter: hook_errors.MessageWillBePosted makes MessageWillBePosted answer an error instead",
        ),
        (
            {"command_response": {"response_type": "public"}},
            'command_response.response_type: expected "ephemeral" or "in_channel", got "public"',
        ),
        ({"command_response": {"text": 5}}, "command_response.text: expected a string, got 5"),
        ({"command_response": {}, "hooks": []}, "command_response: needs ExecuteCommand in hooks"),
        ({"never_handshake": True, "filter": {}}, "filter: applies only to a plugin that serves"),
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
    for i, text in enumerate(scenarios):
        fake_scenario.load(str(scenario(tmp_path, text, f"example{i}.json")))  # raises if invalid


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
