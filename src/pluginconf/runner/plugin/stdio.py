"""The suite's GRPCStdio subscriber: what the plugin printed, per channel, as it arrives."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
from google.protobuf import empty_pb2

from pluginconf.goplugin import grpc_stdio_pb2, grpc_stdio_pb2_grpc

STDOUT = grpc_stdio_pb2.StdioData.STDOUT
STDERR = grpc_stdio_pb2.StdioData.STDERR
_KEEP = 1024 * 1024


class StdioCollector:
    """Holds one StreamStdio call open and keeps (the last MiB of) each channel."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = grpc_stdio_pb2_grpc.GRPCStdioStub(channel)
        self.data: dict[int, bytearray] = {STDOUT: bytearray(), STDERR: bytearray()}
        self.violations: list[str] = []  # IO-4: INVALID channels, empty data
        self.error: str | None = None  # how the stream ended, when it did
        self.ended = False
        self._changed = asyncio.Condition()
        self._call = self._stub.StreamStdio(empty_pb2.Empty())
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            async for item in self._call:
                assert isinstance(item, grpc_stdio_pb2.StdioData)
                if item.channel not in self.data:
                    self.violations.append(f"StdioData with channel {item.channel} (IO-4)")
                elif not item.data:
                    self.violations.append("StdioData with empty data (IO-4)")
                else:
                    buffer = self.data[item.channel]
                    buffer += item.data
                    del buffer[:-_KEEP]
                async with self._changed:
                    self._changed.notify_all()
        except grpc.aio.AioRpcError as exc:
            self.error = f"{exc.code().name}: {exc.details()}"
        except asyncio.CancelledError:
            self.error = "cancelled"
        self.ended = True
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, channel: int, needle: bytes, timeout_s: float) -> bool:
        """Wait until ``needle`` has arrived on ``channel``; False after ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                async with self._changed:
                    await self._changed.wait_for(lambda: needle in self.data[channel] or self.ended)
        except TimeoutError:
            return False
        return needle in self.data[channel]

    async def wait_ended(self, timeout_s: float) -> bool:
        """Wait until the stream has ended (e.g. UNIMPLEMENTED); False while it stays open."""
        done, _ = await asyncio.wait({self._task}, timeout=timeout_s)
        return bool(done)

    def tail(self, channel: int, lines: int = 20) -> str:
        text = self.data[channel].decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])

    async def close(self) -> None:
        self._call.cancel()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
