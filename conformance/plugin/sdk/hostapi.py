"""The conformance plugin's HostAPI commands, through the broker, announced late, or without one."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from pluginconf.goplugin import grpc_broker_pb2, grpc_broker_pb2_grpc
from pluginconf.host.hostapi import InMemoryHostAPI
from pluginconf.runner import Profile, case, expect
from pluginconf.runner.plugin.shared import SUITE_CONFIGURATION, SUITE_PLUGIN_ID, broker_credentials
from pluginconf.runner.plugin.target import PluginTarget
from pluginconf.v1 import hooks_pb2, hostapi_pb2

from .._helpers import NON_BMP, announce
from ._helpers import command, command_text, compact_json, hostapi_server


@case(
    "plugin/sdk/hostapi/kv",
    requirements=["RB-10", "HA-2", "BR-5", "BR-6"],
    profile=Profile.SDK,
)
async def hostapi_kv(t: PluginTarget) -> None:
    """
    Purpose: The plugin reaches the host's key-value store through the broker.
    Procedure: On the shared process (whose HostAPI was announced before OnActivate), run
      "/kv set K v1", "/kv get K", "/kv cas K v1 v2", "/kv cas K v1 v3", "/kv delete K",
      "/kv get K"; look at the suite's store after each step.
    Asserts: The answers are ok, v1, swapped, not swapped, deleted, (not found), and the
      suite's store holds what they say, when they say it.
    """
    shared = await t.shared()
    key = f"k-{uuid.uuid4().hex[:8]}"
    store = shared.hostapi.kv
    steps = [
        (f"/kv set {key} v1", "ok", b"v1"),
        (f"/kv get {key}", "v1", b"v1"),
        (f"/kv cas {key} v1 v2", "swapped", b"v2"),
        (f"/kv cas {key} v1 v3", "not swapped", b"v2"),
        (f"/kv delete {key}", "deleted", None),
        (f"/kv get {key}", "(not found)", None),
    ]
    for text, answer, stored in steps:
        got = await command_text(shared.hooks, text)
        expect(
            got == answer, f"{text!r} answered {got!r}, expected {answer!r}", requirement="RB-10"
        )
        expect(
            store.get(key) == stored,
            f"after {text!r} the host's store holds {store.get(key)!r}, expected {stored!r}",
            requirement=["HA-2", "RB-10"],
        )


@case("plugin/sdk/hostapi/log-and-config", requirements=["RB-10", "HA-2"], profile=Profile.SDK)
async def hostapi_log_and_config(t: PluginTarget) -> None:
    """
    Purpose: The plugin logs and reads its configuration through the host.
    Procedure: On the shared process, run "/log warn TEXT" and "/hostconfig".
    Asserts: The suite's HostAPI recorded TEXT at level warn; "/hostconfig" answers the
      configuration the suite serves, as compact JSON with sorted keys.
    """
    shared = await t.shared()
    text = f"log-{uuid.uuid4().hex[:6]} {NON_BMP}"
    expect(await command_text(shared.hooks, f"/log warn {text}") == "logged", "/log did not log")
    logged = [(r.level, r.message) for r in shared.hostapi.logs]
    expect(("warn", text) in logged, f"the host's log lacks (warn, {text!r}): {logged[-3:]}")
    got = await command_text(shared.hooks, "/hostconfig")
    want = compact_json(SUITE_CONFIGURATION)
    expect(got == want, f"/hostconfig answered {got!r}, expected {want!r}")


@case(
    "plugin/sdk/hostapi/late-announcement",
    requirements=["BR-5", "RB-10"],
    profile=Profile.SDK,
)
async def hostapi_late_announcement(t: PluginTarget) -> None:
    """
    Purpose: A dial waits for an announcement that comes after the id was passed on.
    Procedure: On a new process, open the broker stream and call OnActivate with broker id 7
      before announcing anything; 500 ms later announce HostAPI under id 7; then run
      "/kv set K v".
    Asserts: OnActivate and the command succeed, and the suite's store holds K.
    """
    fresh = await t.launch()
    hostapi = InMemoryHostAPI()
    server, path = hostapi_server(
        fresh, hostapi, "late-hostapi", broker_credentials(fresh.launched)
    )
    await server.start()
    stream = grpc_broker_pb2_grpc.GRPCBrokerStub(fresh.connection).StartStream(None)
    try:
        await fresh.hooks.Implemented(hooks_pb2.ImplementedRequest(), timeout=10)
        activate = asyncio.ensure_future(
            fresh.hooks.OnActivate(
                hooks_pb2.OnActivateRequest(plugin_id=SUITE_PLUGIN_ID, host_api_broker_id=7),
                timeout=30,
            )
        )
        # The stimulus: the announcement comes late on purpose.
        await asyncio.wait({activate}, timeout=0.5)
        await announce(
            stream,
            grpc_broker_pb2.ConnInfo(service_id=7, network="unix", address=path),
            why="before the late HostAPI announcement",
            requirement="BR-5",
        )
        answer = await activate
        expect(
            not answer.HasField("error"), f"OnActivate answered {answer.error}", requirement="BR-5"
        )
        got = await command_text(fresh.hooks, "/kv set late v")
        expect(got == "ok", f"/kv set answered {got!r}", requirement="BR-5")
        expect(
            hostapi.kv.get("late") == b"v",
            f"the host's store holds {hostapi.kv}",
            requirement="BR-5",
        )
    finally:
        stream.cancel()
        await server.stop(0)


# The id a broker's first server gets (go-plugin's and the suite's): a plugin that dials a
# fixed id instead of OnActivate's would most likely dial this one.
_TRAP_ID = 1


class _RecordingHostAPI(InMemoryHostAPI):
    """A HostAPI that notes the key lookups it serves."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def KVGet(self, request: hostapi_pb2.KVGetRequest, context: Any) -> Any:
        self.calls.append(f"KVGet({request.key!r})")
        return await super().KVGet(request, context)


@case("plugin/sdk/hostapi/no-broker", requirements=["HA-2", "RB-10"], profile=Profile.SDK)
async def hostapi_no_broker(t: PluginTarget) -> None:
    """
    Purpose: A plugin that was offered no HostAPI says so instead of failing obscurely, and
      reaches no other server in its place.
    Procedure: On a new process, open the broker stream and announce a recording HostAPI
      under id 1 (a trap); OnActivate with host_api_broker_id 0, then "/kv get K".
    Asserts: The trap received no call (HA-2: broker id 0 means no HostAPI); the command
      answers AppError code "host_api_unavailable" (RB-10).
    """
    fresh = await t.launch()
    trap = _RecordingHostAPI()
    server, path = hostapi_server(fresh, trap, "trap-hostapi", broker_credentials(fresh.launched))
    await server.start()
    stream = grpc_broker_pb2_grpc.GRPCBrokerStub(fresh.connection).StartStream(None)
    try:
        await announce(
            stream,
            grpc_broker_pb2.ConnInfo(service_id=_TRAP_ID, network="unix", address=path),
            why="before the trap HostAPI was announced",
            requirement="HA-2",
        )
        await fresh.hooks.OnActivate(hooks_pb2.OnActivateRequest(plugin_id="p"), timeout=10)
        answer = await command(fresh.hooks, f"/kv get K-{uuid.uuid4().hex[:6]}")
    finally:
        stream.cancel()
        await server.stop(0)
    expect(
        not trap.calls,
        f"given broker id 0, the plugin called the HostAPI announced under id {_TRAP_ID}: "
        f"{trap.calls[:3]}",
        requirement="HA-2",
    )
    expect(
        answer.HasField("error") and answer.error.code == "host_api_unavailable",
        f"/kv get without HostAPI answered {answer}",
        requirement="RB-10",
    )
