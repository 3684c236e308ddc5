"""A gRPC server a benchmark calls: its Hooks stub and its process id."""

from __future__ import annotations

from dataclasses import dataclass

from pluginconf.v1 import hooks_pb2_grpc


@dataclass(frozen=True)
class Endpoint:
    """A gRPC server under test: its Hooks stub and its process."""

    stub: hooks_pb2_grpc.HooksAsyncStub
    pid: int
