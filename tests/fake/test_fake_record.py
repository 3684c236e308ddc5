"""The fake plugin's record: the record file and the reports to the suite's Observer."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from fake_support import (
    SERVING,
    MiB,
    Record,
    body_of,
    check,
    exit_status,
    fake,
    hooks,
    http,
    recorded,
    rpc_error,
    run_fake,
    scenario,
)
from google.protobuf.json_format import ParseDict

from pluginconf.control import control_pb2, control_pb2_grpc
from pluginconf.v1 import hooks_pb2

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
