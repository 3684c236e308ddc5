"""The suite's side of ServeHTTP: one exchange, full duplex, with everything it saw recorded.

A :class:`ServeHTTPCall` writes request frames when told to, while a reader task takes every
response frame as it arrives and records its kind, its size on the wire and its arrival time,
checks the framing rules of SH-12 as it goes, and compares the body with what was expected
without keeping large bodies in memory. :func:`exchange` is the common case: send a whole
request while reading the whole response.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import grpc

from pluginconf._grpc_compat import EOF
from pluginconf.protocol.constants import GRPC_MAX_MESSAGE_BYTES
from pluginconf.v1 import hooks_pb2, hooks_pb2_grpc

REQUEST_CHUNK = 64 * 1024
# Bodies up to this size are kept for the case to look at; larger ones are only compared.
KEEP_BODY_BYTES = 32 * 1024 * 1024

RequestCall = grpc.aio.StreamStreamCall[hooks_pb2.HTTPRequestFrame, hooks_pb2.HTTPResponseFrame]


@dataclass(frozen=True)
class FrameSeen:
    kind: str  # "init", "body", "flush", "end", or "unset"
    wire_bytes: int  # the serialized message size
    at: float  # time.monotonic() of arrival
    body_bytes: int = 0


class BodyComparison:
    """Compares a body, piece by piece as it arrives, with an expected byte stream."""

    def __init__(self, expected: Iterable[bytes]) -> None:
        self._expected: Iterator[bytes] = iter(expected)
        # A view, so that taking a piece of a large expected block does not copy the rest.
        self._pending = memoryview(b"")
        self.offset = 0
        self.first_difference: str | None = None
        self._exhausted = False

    def _take(self, n: int) -> bytes:
        if len(self._pending) >= n:
            out, self._pending = self._pending[:n], self._pending[n:]
            return out.tobytes()
        parts = bytearray()
        while len(parts) < n:
            if not self._pending:
                try:
                    self._pending = memoryview(next(self._expected))
                except StopIteration:
                    self._exhausted = True
                    break
            want = n - len(parts)
            parts += self._pending[:want]
            self._pending = self._pending[want:]
        return bytes(parts)

    def feed(self, data: bytes) -> None:
        if self.first_difference is not None:
            self.offset += len(data)
            return
        want = self._take(len(data))
        if want != data:
            at = next(
                (i for i, (a, b) in enumerate(zip(want, data, strict=False)) if a != b),
                len(want),
            )
            if at >= len(want):
                self.first_difference = (
                    f"the body is longer than expected: {self.offset + at} bytes expected, "
                    f"more arrived (byte {self.offset + at} is 0x{data[at]:02x})"
                )
            else:
                self.first_difference = (
                    f"first difference at offset {self.offset + at}: expected "
                    f"0x{want[at]:02x}, got 0x{data[at]:02x}"
                )
        self.offset += len(data)

    def finish(self) -> str | None:
        """None when the whole expected stream arrived exactly, else what was wrong."""
        if self.first_difference is not None:
            return self.first_difference
        rest = self._take(1)
        if rest:
            return f"the body ended after {self.offset} bytes; more were expected"
        return None


@dataclass
class HTTPResponse:
    """What came back: the response as the frames said, and how the frames behaved."""

    status: int | None = None
    headers: list[tuple[str, list[str]]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    body_length: int = 0
    body_kept: bool = True
    end_error: str | None = None  # HTTPResponseEnd.error; None if no end frame came
    frames: list[FrameSeen] = field(default_factory=list)
    code: grpc.StatusCode | None = None
    details: str = ""
    violations: list[str] = field(default_factory=list)
    comparison: str | None = None  # set when an expected body was given: None means exact
    started_at: float = 0.0

    @property
    def ended(self) -> bool:
        return any(f.kind == "end" for f in self.frames)

    @property
    def max_wire_bytes(self) -> int:
        return max((f.wire_bytes for f in self.frames), default=0)

    @property
    def kinds(self) -> list[str]:
        return [f.kind for f in self.frames]

    def header(self, name: str) -> list[str] | None:
        """All values of ``name`` (case-insensitive), or None when absent."""
        values = [v for n, vs in self.headers if n.lower() == name.lower() for v in vs]
        return values if any(n.lower() == name.lower() for n, _ in self.headers) else None

    def first_body_at(self) -> float | None:
        return next((f.at for f in self.frames if f.kind == "body" and f.body_bytes), None)

    def describe(self) -> str:
        """A short account for evidence: status, frames, call status."""
        counts: dict[str, int] = {}
        for kind in self.kinds:
            counts[kind] = counts.get(kind, 0) + 1
        frames = ", ".join(f"{n} {k}" for k, n in counts.items()) or "no frames"
        code = self.code.name if self.code is not None else "not finished"
        return (
            f"status {self.status}, {self.body_length} body bytes, frames: {frames}; "
            f"call ended {code}{': ' + self.details if self.details else ''}"
        )


def _init_frame(
    method: str,
    path: str,
    query: str,
    headers: Sequence[tuple[str, Sequence[str]]],
    content_length: int,
    remote_addr: str,
) -> hooks_pb2.HTTPRequestFrame:
    return hooks_pb2.HTTPRequestFrame(
        init=hooks_pb2.HTTPRequestInit(
            method=method,
            path=path,
            raw_query=query,
            headers=[hooks_pb2.HTTPHeader(name=n, values=list(v)) for n, v in headers],
            content_length=content_length,
            remote_addr=remote_addr,
        )
    )


class ServeHTTPCall:
    """One ServeHTTP call, driven step by step; the response is read all along."""

    def __init__(
        self,
        stub: hooks_pb2_grpc.HooksAsyncStub,
        expected_body: Iterable[bytes] | None = None,
        keep_body: bool = True,
        timeout_s: float | None = None,
    ) -> None:
        self._call: RequestCall = stub.ServeHTTP(None, timeout=timeout_s)
        self.response = HTTPResponse(body_kept=keep_body, started_at=time.monotonic())
        self._compare = BodyComparison(expected_body) if expected_body is not None else None
        self._changed = asyncio.Condition()
        self._reader = asyncio.ensure_future(self._read())
        self.sent_bytes = 0

    # -- writing ---------------------------------------------------------------------------

    async def send_init(
        self,
        method: str = "GET",
        path: str = "/",
        query: str = "",
        headers: Sequence[tuple[str, Sequence[str]]] = (),
        content_length: int = 0,
        remote_addr: str = "127.0.0.1:40000",
    ) -> None:
        await self._call.write(
            _init_frame(method, path, query, headers, content_length, remote_addr)
        )

    async def send_body(self, data: bytes) -> None:
        await self._call.write(hooks_pb2.HTTPRequestFrame(body=data))
        self.sent_bytes += len(data)

    async def send_end(self) -> None:
        await self._call.write(hooks_pb2.HTTPRequestFrame(end=hooks_pb2.HTTPRequestEnd()))

    async def half_close(self) -> None:
        await self._call.done_writing()

    def cancel(self) -> None:
        self._call.cancel()

    # -- reading ---------------------------------------------------------------------------

    async def _read(self) -> None:
        r = self.response
        try:
            while True:
                frame = await self._call.read()
                if frame is EOF:
                    break
                assert isinstance(frame, hooks_pb2.HTTPResponseFrame)
                self._record(frame)
                async with self._changed:
                    self._changed.notify_all()
        except grpc.aio.AioRpcError as exc:
            r.code, r.details = exc.code(), exc.details() or ""
        except asyncio.CancelledError:
            r.code, r.details = grpc.StatusCode.CANCELLED, "cancelled by the suite"
        else:
            r.code = await self._call.code()
            r.details = await self._call.details() or ""
        if self._compare is not None:
            r.comparison = self._compare.finish()
        if r.code == grpc.StatusCode.OK:
            self._check_complete()
        async with self._changed:
            self._changed.notify_all()

    def _record(self, frame: hooks_pb2.HTTPResponseFrame) -> None:
        r = self.response
        kind = frame.WhichOneof("frame") or "unset"
        size = frame.ByteSize()
        already_ended = r.ended
        r.frames.append(FrameSeen(kind, size, time.monotonic(), len(frame.body)))
        n = len(r.frames)
        if size > GRPC_MAX_MESSAGE_BYTES:
            r.violations.append(
                f"response frame {n} ({kind}) is {size} bytes on the wire, over the "
                f"{GRPC_MAX_MESSAGE_BYTES}-byte message limit (TR-11)"
            )
        if already_ended:
            r.violations.append(f"response frame {n} ({kind}) came after end (SH-12)")
        if kind == "init":
            if n != 1:
                r.violations.append(f"init arrived as frame {n}; it must be the first, once")
            r.status = frame.init.status
            if not 200 <= frame.init.status <= 599:
                r.violations.append(f"init status {frame.init.status} is outside 200..599")
            names = [h.name.lower() for h in frame.init.headers]
            repeated = sorted({x for x in names if names.count(x) > 1})
            if repeated:
                r.violations.append(
                    "init repeats header names (each name once, with all its values, "
                    f"SH-13): {', '.join(repeated)}"
                )
            r.headers = [(h.name, list(h.values)) for h in frame.init.headers]
        elif n == 1:
            r.violations.append(f"the first response frame is {kind}, not init (SH-12)")
        if kind == "body":
            r.body_length += len(frame.body)
            if self._compare is not None:
                self._compare.feed(frame.body)
            if r.body_kept:
                if len(r.body) + len(frame.body) <= KEEP_BODY_BYTES:
                    r.body += frame.body
                else:
                    r.body_kept = False
                    r.body.clear()
        elif kind == "end":
            r.end_error = frame.end.error
        elif kind == "unset":
            r.violations.append(f"response frame {n} has no frame set")

    def _check_complete(self) -> None:
        r = self.response
        if not r.frames:
            r.violations.append("the call completed OK without any response frame (SH-12)")
        elif not r.ended:
            r.violations.append("the call completed OK without an end frame (SH-12)")

    async def wait_for(self, predicate: str, timeout_s: float) -> bool:
        """Wait until ``predicate`` holds: "init", "body" (some body bytes), "flush" (a flush
        frame after some body), "end" (the response's end frame), or "done"."""
        checks = {
            "init": lambda: self.response.status is not None or self._reader.done(),
            "body": lambda: self.response.body_length > 0 or self._reader.done(),
            "flush": lambda: "flush" in self.response.kinds or self._reader.done(),
            "end": lambda: self.response.ended or self._reader.done(),
            "done": self._reader.done,
        }
        check = checks[predicate]
        try:
            async with asyncio.timeout(timeout_s):
                async with self._changed:
                    await self._changed.wait_for(check)
        except TimeoutError:
            return False
        return predicate == "done" or not self._reader.done() or check()

    async def finish(self, timeout_s: float) -> HTTPResponse:
        """Wait (bounded) for the response to complete; cancel the call if it does not."""
        done = await self.wait_for("done", timeout_s)
        if not done:
            self.cancel()
            await asyncio.wait({self._reader}, timeout=5)
            self.response.violations.append(f"the response did not complete within {timeout_s:g}s")
        return self.response

    async def close(self) -> None:
        self.cancel()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


def pieces(data: bytes, size: int = REQUEST_CHUNK) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start : start + size])


async def exchange(
    stub: hooks_pb2_grpc.HooksAsyncStub,
    method: str = "GET",
    path: str = "/",
    *,
    query: str = "",
    headers: Sequence[tuple[str, Sequence[str]]] = (),
    body: bytes | Iterable[bytes] | AsyncIterable[bytes] = b"",
    content_length: int | None = None,
    expected_body: Iterable[bytes] | None = None,
    keep_body: bool = True,
    timeout_s: float = 60.0,
) -> HTTPResponse:
    """Send a whole request while reading the whole response (full duplex). An async
    ``body`` paces the frames as it yields them.

    A plugin may complete its response before reading the whole request (SH-26): a write that
    fails once the response is complete is not an error.
    """
    if content_length is None:
        content_length = len(body) if isinstance(body, bytes) else -1
    call = ServeHTTPCall(stub, expected_body, keep_body)

    async def write() -> None:
        await call.send_init(method, path, query, headers, content_length)
        if isinstance(body, AsyncIterable):
            async for chunk in body:
                await call.send_body(chunk)
        else:
            for chunk in pieces(body) if isinstance(body, bytes) else body:
                await call.send_body(chunk)
        await call.send_end()
        await call.half_close()

    writer = asyncio.ensure_future(write())
    try:
        response = await call.finish(timeout_s)
    finally:
        if not writer.done():
            writer.cancel()
        await asyncio.wait({writer}, timeout=5)
        if writer.done() and not writer.cancelled():
            writer.exception()  # retrieved: a late write failure is not an error (SH-26)
        await call.close()
    return response
