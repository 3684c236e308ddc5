"""Stdout/stderr capture after the handshake, served through plugin.GRPCStdio.

File descriptors 1 and 2 are pointed at pipes, so output from plugin code, C extensions and
child processes is captured alike. One pump thread drains both pipes at all times, so a
writer never blocks on a full pipe, even while the event loop is busy in plugin code.
Captured data waits in a buffer bounded per channel (oldest dropped first, IO-6) until a
subscriber reads it: a burst on one channel never pushes out the other's output.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import selectors
import sys
import threading
from collections import deque
from collections.abc import AsyncIterator

import grpc
from google.protobuf import empty_pb2

from pluginconf.goplugin import grpc_stdio_pb2, grpc_stdio_pb2_grpc

log = logging.getLogger("pluginconf.plugin.stdio")

STDOUT = grpc_stdio_pb2.StdioData.STDOUT
STDERR = grpc_stdio_pb2.StdioData.STDERR
_READ_BYTES = 64 * 1024


class StdioCapture:
    """Owns the redirection of fds 1 and 2 and the buffer of what was written to them."""

    def __init__(self, limit_bytes: int) -> None:
        self._limit = limit_bytes
        self._chunks: deque[tuple[int, bytes]] = deque()
        self._buffered: dict[int, int] = {STDOUT: 0, STDERR: 0}
        self.dropped_bytes = 0
        self._changed = asyncio.Event()
        self._eof = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._saved: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> tuple[int, int]:
        """Redirect fds 1 and 2; return duplicates of the original stdout and stderr."""
        self._loop = asyncio.get_running_loop()
        sys.stdout.flush()
        sys.stderr.flush()
        saved_out, saved_err = os.dup(1), os.dup(2)
        self._saved = (saved_out, saved_err)
        pipes: list[tuple[int, int]] = []
        for fd in (1, 2):
            r, w = os.pipe()
            os.dup2(w, fd)
            os.close(w)
            pipes.append((r, STDOUT if fd == 1 else STDERR))
        for stream in (sys.stdout, sys.stderr):
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(line_buffering=True)
        self._thread = threading.Thread(
            target=self._pump, args=(pipes,), name="pluginconf-stdio", daemon=True
        )
        self._thread.start()
        return os.dup(saved_out), os.dup(saved_err)

    def _pump(self, pipes: list[tuple[int, int]]) -> None:
        assert self._loop is not None
        sel = selectors.DefaultSelector()
        for fd, channel in pipes:
            sel.register(fd, selectors.EVENT_READ, channel)
        open_fds = len(pipes)
        try:
            while open_fds:
                for key, _ in sel.select():
                    data = os.read(key.fd, _READ_BYTES)
                    if not data:
                        sel.unregister(key.fd)
                        os.close(key.fd)
                        open_fds -= 1
                        continue
                    self._loop.call_soon_threadsafe(self._push, key.data, data)
        except RuntimeError:
            return  # the loop closed under us: the process is exiting
        finally:
            sel.close()
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._eof.set)

    def _push(self, channel: int, data: bytes) -> None:
        self._chunks.append((channel, data))
        self._buffered[channel] += len(data)
        while self._buffered[channel] > self._limit:
            # The channel's oldest chunk; its newest (just appended) is always kept.
            index = next(i for i, (c, _) in enumerate(self._chunks) if c == channel)
            if index == len(self._chunks) - 1:
                break
            _, old = self._chunks[index]
            del self._chunks[index]
            self._buffered[channel] -= len(old)
            self.dropped_bytes += len(old)
        self._changed.set()

    async def drain(self) -> AsyncIterator[tuple[int, bytes]]:
        """Yield captured chunks as they arrive, until the capture has stopped."""
        while True:
            while self._chunks:
                channel, data = self._chunks.popleft()
                self._buffered[channel] -= len(data)
                yield channel, data
            if self._eof.is_set():
                return
            self._changed.clear()
            eof_wait = asyncio.ensure_future(self._eof.wait())
            changed_wait = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait({eof_wait, changed_wait}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                eof_wait.cancel()
                changed_wait.cancel()

    async def stop(self, timeout_s: float) -> None:
        """Put the original fds back and wait (bounded) for the pump to read what is left."""
        if self._saved is None:
            return
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        saved_out, saved_err = self._saved
        self._saved = None
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)
        try:
            await asyncio.wait_for(self._eof.wait(), timeout_s)
        except TimeoutError:
            # A child process still holds the pipe; stop waiting for it.
            self._eof.set()


class StdioService(grpc_stdio_pb2_grpc.GRPCStdioServicer):
    """Serves StreamStdio: one subscriber; data is sent once."""

    def __init__(self, capture: StdioCapture) -> None:
        self._capture = capture
        self._subscribed = False

    async def StreamStdio(
        self, request: empty_pb2.Empty, context: grpc.aio.ServicerContext[object, object]
    ) -> AsyncIterator[grpc_stdio_pb2.StdioData]:
        if self._subscribed:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "StreamStdio was already called; go-plugin sends stdio data to one subscriber",
            )
        self._subscribed = True
        if self._capture.dropped_bytes:
            log.warning(
                "%d bytes of stdio were dropped before a subscriber connected",
                self._capture.dropped_bytes,
            )
        async for channel, data in self._capture.drain():
            yield grpc_stdio_pb2.StdioData(channel=channel, data=data)  # type: ignore[arg-type]
