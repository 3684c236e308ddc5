"""The committed stubs match protos/, and the wire names are go-plugin's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pluginconf.goplugin import grpc_broker_pb2, grpc_controller_pb2, grpc_stdio_pb2
from pluginconf.v1 import hooks_pb2, hostapi_pb2

ROOT = Path(__file__).resolve().parents[2]


def test_regenerating_stubs_changes_nothing():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "genprotos.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _fields(descriptor):
    return {f.name: (f.number, f.type) for f in descriptor.fields}


def test_go_plugin_wire_names_and_field_numbers():
    d = grpc_broker_pb2.DESCRIPTOR
    assert d.package == "plugin"
    assert d.services_by_name["GRPCBroker"].full_name == "plugin.GRPCBroker"
    method = d.services_by_name["GRPCBroker"].methods_by_name["StartStream"]
    assert (method.client_streaming, method.server_streaming) == (True, True)
    conn = grpc_broker_pb2.ConnInfo.DESCRIPTOR
    assert conn.full_name == "plugin.ConnInfo"
    assert {k: v[0] for k, v in _fields(conn).items()} == {
        "service_id": 1,
        "network": 2,
        "address": 3,
        "knock": 4,
    }
    knock = grpc_broker_pb2.ConnInfo.Knock.DESCRIPTOR
    assert {k: v[0] for k, v in _fields(knock).items()} == {"knock": 1, "ack": 2, "error": 3}

    ctl = grpc_controller_pb2.DESCRIPTOR.services_by_name["GRPCController"]
    assert ctl.full_name == "plugin.GRPCController"
    assert ctl.methods_by_name["Shutdown"].input_type.full_name == "plugin.Empty"

    stdio = grpc_stdio_pb2.DESCRIPTOR.services_by_name["GRPCStdio"]
    assert stdio.full_name == "plugin.GRPCStdio"
    stream = stdio.methods_by_name["StreamStdio"]
    assert stream.input_type.full_name == "google.protobuf.Empty"
    assert stream.server_streaming and not stream.client_streaming
    data = grpc_stdio_pb2.StdioData.DESCRIPTOR
    assert {k: v[0] for k, v in _fields(data).items()} == {"channel": 1, "data": 2}
    assert dict(grpc_stdio_pb2.StdioData.Channel.items()) == {
        "INVALID": 0,
        "STDOUT": 1,
        "STDERR": 2,
    }


def test_hooks_service_shape():
    svc = hooks_pb2.DESCRIPTOR.services_by_name["Hooks"]
    assert svc.full_name == "pluginconf.v1.Hooks"
    assert [m.name for m in svc.methods] == [
        "Implemented",
        "OnConfigurationChange",
        "OnActivate",
        "OnDeactivate",
        "MessageHasBeenPosted",
        "MessageWillBePosted",
        "ExecuteCommand",
        "ServeHTTP",
    ]
    serve = svc.methods_by_name["ServeHTTP"]
    assert serve.client_streaming and serve.server_streaming
    api = hostapi_pb2.DESCRIPTOR.services_by_name["HostAPI"]
    assert [m.name for m in api.methods] == [
        "KVGet",
        "KVSet",
        "KVDelete",
        "KVCompareAndSet",
        "Log",
        "GetConfiguration",
    ]
