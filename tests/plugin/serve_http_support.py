"""What the SDK ServeHTTP tests share: frames, a response read whole, exchanges with a plugin."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import grpc

from pluginconf.v1 import hooks_pb2, hooks_pb2_grpc

CHUNK = 64 * 1024
MAX_BODY_FRAME = 64 * 1024
MAX_MESSAGE = 4 * 1024 * 1024
CALL_TIMEOUT_S = 60.0
SIZES = [0, 1, 65535, 65536, 65537, 271828, 16 * 1024 * 1024]
ECHO_HEADERS = [
    ("X-Trace", ["t1", "t2", "t3"]),
    ("Accept", ["application/octet-stream"]),
]

Frame = hooks_pb2.HTTPResponseFrame

# -- helpers ------------------------------------------------------------------------------


def request_init(
    method: str,
    path: str,
    query: str = "",
    headers: Sequence[tuple[str, Sequence[str]]] = (),
    content_length: int = -1,
) -> hooks_pb2.HTTPRequestFrame:
    return hooks_pb2.HTTPRequestFrame(
        init=hooks_pb2.HTTPRequestInit(
            method=method,
            path=path,
            raw_query=query,
            headers=[hooks_pb2.HTTPHeader(name=n, values=list(v)) for n, v in headers],
            content_length=content_length,
            remote_addr="127.0.0.1:54321",
        )
    )


def body_frame(data: bytes) -> hooks_pb2.HTTPRequestFrame:
    return hooks_pb2.HTTPRequestFrame(body=data)


END = hooks_pb2.HTTPRequestFrame(end=hooks_pb2.HTTPRequestEnd())


def pieces(data: bytes, size: int = CHUNK) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start : start + size])


@dataclass
class Response:
    frames: list[Frame] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() of each frame

    @property
    def kinds(self) -> list[str]:
        return [f.WhichOneof("frame") or "" for f in self.frames]

    @property
    def init(self) -> hooks_pb2.HTTPResponseInit:
        assert self.frames, "no response frames at all"
        assert self.kinds[0] == "init", f"first response frame is not init: {self.kinds[:3]}"
        return self.frames[0].init

    @property
    def status(self) -> int:
        return self.init.status

    @property
    def headers(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for header in self.init.headers:
            assert header.name not in found, f"header {header.name!r} split over HTTPHeaders"
            found[header.name] = list(header.values)
        return found

    @property
    def body(self) -> bytes:
        return b"".join(f.body for f in self.frames if f.WhichOneof("frame") == "body")

    def check_clean_end(self) -> None:
        assert self.end is not None, f"no end frame: {self.kinds[-3:]}"
        assert self.end.error == ""

    @property
    def end(self) -> hooks_pb2.HTTPResponseEnd | None:
        if self.frames and self.kinds[-1] == "end":
            return self.frames[-1].end
        return None

    def check_well_formed(self, complete: bool = True) -> None:
        """init first, then only body/flush, then one end, last (required when ``complete``)."""
        kinds = self.kinds
        assert kinds[:1] == ["init"], kinds[:3]
        ended = kinds[-1] == "end"
        middle = kinds[1:-1] if ended else kinds[1:]
        assert set(middle) <= {"body", "flush"}, f"unexpected frames: {sorted(set(middle))}"
        if complete:
            assert ended, f"response did not end with an end frame: {kinds[-3:]}"
        for frame in self.frames:
            assert frame.ByteSize() < MAX_MESSAGE
            if frame.WhichOneof("frame") == "body":
                assert 0 < len(frame.body) <= MAX_BODY_FRAME, len(frame.body)


def hooks(plugin) -> hooks_pb2_grpc.HooksStub:
    return hooks_pb2_grpc.HooksStub(plugin.channel)


async def read_all(call) -> Response:
    """Read response frames until the stream ends."""
    response = Response()
    while True:
        frame = await call.read()
        if frame is grpc.aio.EOF:
            return response
        response.frames.append(frame)
        response.arrivals.append(time.monotonic())


async def write_all(call, frames: Iterable[hooks_pb2.HTTPRequestFrame]) -> None:
    """Write request frames, then half-close."""
    for frame in frames:
        await call.write(frame)
    await call.done_writing()


async def exchange(
    plugin,
    method: str,
    path: str,
    query: str = "",
    body: bytes = b"",
    headers: Sequence[tuple[str, Sequence[str]]] = (),
    limit_s: float = CALL_TIMEOUT_S,
    frame_size: int = CHUNK,
) -> Response:
    """One complete exchange: the request is written while the response is read."""
    frames = [
        request_init(method, path, query, headers, len(body)),
        *map(body_frame, pieces(body, frame_size)),
        END,
    ]
    call = hooks(plugin).ServeHTTP(timeout=limit_s)
    try:
        _, response = await asyncio.wait_for(
            asyncio.gather(write_all(call, frames), read_all(call)), limit_s
        )
    except BaseException:
        call.cancel()
        raise
    return response


async def poll_disconnects(plugin, wanted: str, within_s: float = 5.0) -> list[str]:
    """GET /disconnects until ``wanted`` is listed; the recorded ids."""
    deadline = time.monotonic() + within_s
    while True:
        response = await exchange(plugin, "GET", "/disconnects", limit_s=10)
        ids = response.body.decode().splitlines()
        if wanted in ids or time.monotonic() > deadline:
            return ids
        await asyncio.sleep(0.05)


def check_echo_headers(response: Response, method: str, path: str, query: str) -> None:
    headers = response.headers
    for name, values in ECHO_HEADERS:
        assert headers[f"x-echo-{name.lower()}"] == values
    assert headers["x-echo-method"] == [method]
    assert headers["x-echo-path"] == [path]
    assert headers["x-echo-query"] == [query]
    assert headers["content-type"] == ["application/octet-stream"]
