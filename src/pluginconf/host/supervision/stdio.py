"""Mirroring a plugin's stdout and stderr, as GRPCStdio serves them, into logging (IO-7, IO-8)."""

from __future__ import annotations

import logging
from collections import deque

import grpc
from google.protobuf import empty_pb2

from pluginconf.goplugin import grpc_stdio_pb2, grpc_stdio_pb2_grpc

_NAMES = {grpc_stdio_pb2.StdioData.STDOUT: "stdout", grpc_stdio_pb2.StdioData.STDERR: "stderr"}


class StdioMirror:
    """One plugin's stdio: logged line by line, the last lines kept in ``tail``."""

    def __init__(self, plugin_id: str, tail_lines: int = 200) -> None:
        self.log = logging.getLogger(f"pluginconf.host.plugin.{plugin_id}")
        # What the plugin printed after its handshake, as (channel name, line).
        self.tail: deque[tuple[str, str]] = deque(maxlen=tail_lines)

    async def mirror(self, channel: grpc.aio.Channel) -> None:
        """Until the plugin's StreamStdio ends: log what it writes to stdout/stderr."""
        # Chunks are not lines: a line may come in pieces, so each channel keeps its partial.
        partial: dict[str, bytes] = {}
        call = grpc_stdio_pb2_grpc.GRPCStdioStub(channel).StreamStdio(empty_pb2.Empty())
        try:
            async for data in call:
                name = _NAMES.get(data.channel, "stdio")
                *lines, rest = (partial.pop(name, b"") + data.data).split(b"\n")
                for raw in lines:
                    self._emit(name, raw)
                if rest:
                    partial[name] = rest
        except grpc.aio.AioRpcError as exc:
            # A plugin without GRPCStdio, or a stream that ends, is not a failure (IO-8).
            self.log.debug("GRPCStdio ended: %s", exc.code().name)
        finally:
            call.cancel()
            for name, raw in partial.items():
                self._emit(name, raw)

    def _emit(self, name: str, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        self.tail.append((name, line))
        self.log.info("%s: %s", name, line)
