"""ServeHTTP through the SDK's ASGI bridge, against real plugin processes over real gRPC.

Most tests drive the reference plugin (docs/reference-plugin.md); one drives an unchanged
Starlette application (tests/plugins/starlette_plugin.py). Request bodies go out in 64 KiB
frames while the response is read concurrently, as a host does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import grpc
import psutil
import pytest
from conftest import test_plugin

from pluginconf.reference.generator import generate_bytes, iter_bytes
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


# -- byte-exact bodies ------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_echo_and_bytes_are_byte_exact(launch_plugin, size):
    plugin = await launch_plugin()

    payload = generate_bytes(size, seed=size)
    query = f"size={size}&tag=a%20b"
    response = await exchange(plugin, "POST", "/echo", query, payload, ECHO_HEADERS)
    response.check_well_formed()
    assert response.status == 200
    response.check_clean_end()
    assert len(response.body) == size
    assert response.body == payload
    check_echo_headers(response, "POST", "/echo", query)

    response = await exchange(plugin, "GET", "/bytes", f"n={size}&seed=7")
    response.check_well_formed()
    assert response.status == 200
    assert response.headers["content-length"] == [str(size)]
    response.check_clean_end()
    assert len(response.body) == size
    assert response.body == generate_bytes(size, seed=7)


async def test_echo_reports_the_raw_path_and_lower_cased_multi_valued_headers(launch_plugin):
    plugin = await launch_plugin()
    headers = [("X-Trace", ["t1", "t2", "t3"]), ("Accept", ["application/octet-stream"])]
    response = await exchange(plugin, "PUT", "/ech%6F", "q=%2F&q=2", b"hi", headers)
    assert response.status == 200
    assert response.body == b"hi"
    check_echo_headers(response, "PUT", "/ech%6F", "q=%2F&q=2")


async def test_large_pieces_are_split_into_64k_frames(launch_plugin):
    plugin = await launch_plugin()
    size = 3 * 1024 * 1024 + 5
    # The application sends 4 MiB pieces.
    response = await exchange(plugin, "GET", "/bytes", f"n={size}&chunk=4194304&seed=3")
    response.check_well_formed()
    assert response.body == generate_bytes(size, seed=3)
    # The request arrives in 1 MiB frames, and the application echoes each one whole.
    payload = generate_bytes(size, seed=4)
    response = await exchange(plugin, "POST", "/echo", body=payload, frame_size=1024 * 1024)
    response.check_well_formed()
    assert response.body == payload


async def test_32_concurrent_echo_streams_are_each_exact(launch_plugin):
    plugin = await launch_plugin()
    payloads = [generate_bytes(300_000, seed=1000 + i) for i in range(32)]
    responses = await asyncio.gather(
        *(exchange(plugin, "POST", "/echo", f"i={i}", p) for i, p in enumerate(payloads))
    )
    for i, (payload, response) in enumerate(zip(payloads, responses, strict=True)):
        response.check_well_formed()
        assert response.headers["x-echo-query"] == [f"i={i}"]
        assert response.body == payload, f"stream {i} differs"


# -- streaming behaviour ----------------------------------------------------------------


async def test_echo_is_full_duplex(launch_plugin):
    """The first echoed frame arrives while the request body is still open."""
    plugin = await launch_plugin()
    payload = generate_bytes(5 * CHUNK, seed=11)
    parts = list(pieces(payload))
    call = hooks(plugin).ServeHTTP(timeout=CALL_TIMEOUT_S)
    try:
        await call.write(request_init("POST", "/echo"))
        await call.write(body_frame(parts[0]))
        first = await asyncio.wait_for(call.read(), 10)
        assert first.WhichOneof("frame") == "init"
        assert first.init.status == 200
        second = await asyncio.wait_for(call.read(), 10)
        assert second.WhichOneof("frame") == "body", "no echo before the request body ended"
        got = second.body
        assert parts[0].startswith(got)
        writer = asyncio.ensure_future(write_all(call, [*map(body_frame, parts[1:]), END]))
        rest = await asyncio.wait_for(read_all(call), 20)
        await writer
    except BaseException:
        call.cancel()
        raise
    response = Response([first, second, *rest.frames])
    response.check_well_formed()
    response.check_clean_end()
    assert got + rest.body == payload


async def test_flush_frames_are_streamed_as_they_happen(launch_plugin):
    plugin = await launch_plugin()
    response = await exchange(plugin, "GET", "/flush", "n=3&ms=300", limit_s=20)
    response.check_well_formed()
    assert response.status == 200
    kinds = response.kinds
    assert kinds == ["init", "body", "flush", "body", "flush", "body", "flush", "end"], kinds
    assert response.body == b"chunk 0\nchunk 1\nchunk 2\n"
    body_at = [t for t, k in zip(response.arrivals, kinds, strict=True) if k == "body"]
    # Chunk 1 is sent 300 ms after chunk 0: it must reach us then, not buffered to the end.
    assert body_at[1] - body_at[0] >= 0.25, body_at
    assert body_at[2] - body_at[1] >= 0.25, body_at


# -- disconnects ------------------------------------------------------------------------


@pytest.mark.parametrize("request_complete", [True, False], ids=["after-end", "mid-body"])
async def test_cancelled_call_reaches_the_app_as_a_disconnect(launch_plugin, request_complete):
    plugin = await launch_plugin()
    hold_id = f"hold-{uuid.uuid4().hex}"
    call = hooks(plugin).ServeHTTP(timeout=CALL_TIMEOUT_S)
    try:
        await call.write(request_init("GET", "/hold", f"id={hold_id}"))
        if request_complete:
            await call.write(END)
        init = await asyncio.wait_for(call.read(), 10)
        assert init.WhichOneof("frame") == "init"
        assert init.init.status == 200
        body = await asyncio.wait_for(call.read(), 10)
        assert body.body == f"holding {hold_id}\n".encode()
        assert hold_id not in await poll_disconnects(plugin, hold_id, within_s=0)
    finally:
        call.cancel()
    assert hold_id in await poll_disconnects(plugin, hold_id)


async def test_a_send_blocked_when_the_call_is_cancelled_fails_as_an_oserror(launch_plugin):
    # The client stops reading, so the app's next send waits on flow control; the cancel
    # then fails that send inside grpc. ASGI says a send to a client that has gone raises
    # OSError (ClientDisconnected), whatever grpc raised beneath it.
    plugin = await launch_plugin(argv=test_plugin("blocked_writer"))
    flood_id = uuid.uuid4().hex
    call = hooks(plugin).ServeHTTP(timeout=CALL_TIMEOUT_S)
    try:
        await call.write(request_init("GET", "/flood", f"id={flood_id}"))
        await call.write(END)
        assert (await asyncio.wait_for(call.read(), 10)).WhichOneof("frame") == "init"
        assert (await asyncio.wait_for(call.read(), 10)).body == b"ready\n"
    finally:
        call.cancel()
    deadline = time.monotonic() + 10
    while True:
        ended = (await exchange(plugin, "GET", "/ended", f"id={flood_id}", limit_s=10)).body
        if ended or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)  # the app's record is in another process: poll, bounded
    assert ended == b"ClientDisconnected oserror=True"


async def test_half_close_without_end_is_a_disconnect(launch_plugin):
    plugin = await launch_plugin()
    call = hooks(plugin).ServeHTTP(timeout=CALL_TIMEOUT_S)
    payload = generate_bytes(100_000, seed=5)
    try:
        # The request body is cut short: no HTTPRequestEnd before the half-close.
        await write_all(call, [request_init("POST", "/echo"), *map(body_frame, pieces(payload))])
        response = await asyncio.wait_for(read_all(call), 10)
    except BaseException:
        call.cancel()
        raise
    response.check_well_formed(complete=False)
    assert response.status == 200
    assert payload.startswith(response.body)
    # A response to a request whose client went away must not claim to be complete.
    assert response.end is None or response.end.error != ""
    # The plugin is unharmed.
    again = await exchange(plugin, "POST", "/echo", body=b"still here")
    assert again.body == b"still here"


@pytest.mark.parametrize("finish", ["end", "half-close"])
async def test_unread_request_is_drained_before_the_call_completes(launch_plugin, finish):
    """/status answers without reading the body; the call stays open until the request ends.

    So the host's writes after the response (more body, ``end``) succeed (SH-25).
    """
    plugin = await launch_plugin()
    parts = list(pieces(generate_bytes(4 * CHUNK, seed=8)))
    call = hooks(plugin).ServeHTTP(timeout=CALL_TIMEOUT_S)
    try:
        await call.write(request_init("POST", "/status/201", content_length=4 * CHUNK))
        await call.write(body_frame(parts[0]))
        response = Response()
        while response.kinds[-1:] != ["end"]:
            frame = await asyncio.wait_for(call.read(), 10)
            assert frame is not grpc.aio.EOF, f"stream ended after {response.kinds}"
            response.frames.append(frame)
        response.check_well_formed()
        assert response.status == 201
        code = asyncio.ensure_future(call.code())
        done, _ = await asyncio.wait({code}, timeout=0.3)
        assert not done, "the call completed while the request was still being sent"
        for part in parts[1:]:
            await call.write(body_frame(part))
        await write_all(call, [END] if finish == "end" else [])
        assert await asyncio.wait_for(call.read(), 10) is grpc.aio.EOF
        assert await asyncio.wait_for(code, 10) == grpc.StatusCode.OK
    except BaseException:
        call.cancel()
        raise


# -- statuses, headers, errors ----------------------------------------------------------


async def test_status_codes(launch_plugin):
    plugin = await launch_plugin()
    for code in [200, 201, 204, 404, 418, 500, 503]:
        response = await exchange(plugin, "GET", f"/status/{code}")
        response.check_well_formed()
        assert response.status == code
        assert response.body == (b"" if code == 204 else f"status {code}\n".encode())
        response.check_clean_end()
    # Out of range for the route: a bad request.
    response = await exchange(plugin, "GET", "/status/99")
    response.check_well_formed()
    assert response.status == 400


async def test_unknown_route_is_404(launch_plugin):
    plugin = await launch_plugin()
    response = await exchange(plugin, "GET", "/no/such/route")
    response.check_well_formed()
    assert response.status == 404
    assert response.body == b"no route for /no/such/route\n"


async def test_multi_valued_response_headers(launch_plugin):
    plugin = await launch_plugin()
    response = await exchange(plugin, "GET", "/headers", "x-extra=1&x-extra=2")
    response.check_well_formed()
    assert response.status == 200
    headers = response.headers
    assert headers["x-multi"] == ["a", "b", "c"]
    assert headers["set-cookie"] == ["a=1", "b=2"]
    assert headers["x-extra"] == ["1", "2"]
    assert response.body == b"headers\n"


async def test_handler_error_before_start_is_a_500_and_the_plugin_survives(launch_plugin):
    plugin = await launch_plugin()
    response = await exchange(plugin, "GET", "/error", "after=0")
    response.check_well_formed()
    assert response.status == 500
    response.check_clean_end()
    again = await exchange(plugin, "POST", "/echo", body=b"after the error")
    assert again.status == 200
    assert again.body == b"after the error"


async def test_handler_error_after_start_sets_end_error(launch_plugin):
    plugin = await launch_plugin()
    response = await exchange(plugin, "GET", "/error", "after=100000")
    response.check_well_formed()
    assert response.status == 200
    assert response.body == generate_bytes(100_000)
    assert response.end is not None
    assert response.end.error != ""


async def test_first_frame_must_be_init(launch_plugin):
    plugin = await launch_plugin()
    for first in ([body_frame(b"early")], [END], []):
        call = hooks(plugin).ServeHTTP(iter(first), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await asyncio.wait_for(read_all(call), 10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, first
    # The plugin is unharmed.
    assert (await exchange(plugin, "POST", "/echo", body=b"ok")).body == b"ok"


# -- an unchanged Starlette application -------------------------------------------------


async def test_starlette_app_served_unchanged(launch_plugin):
    plugin = await launch_plugin(argv=test_plugin("starlette_plugin"))

    upload = generate_bytes(5_000_000, seed=42)
    response = await exchange(plugin, "POST", "/upload", body=upload)
    response.check_well_formed()
    assert response.status == 200
    result = json.loads(response.body)
    assert result["bytes"] == len(upload)
    assert result["sha256"] == hashlib.sha256(upload).hexdigest()
    # The body was streamed to the application in pieces, not gathered first.
    assert result["pieces"] > 1

    response = await exchange(plugin, "GET", "/stream")
    response.check_well_formed()
    assert response.status == 200
    assert response.headers["content-type"][0].startswith("text/plain")
    assert response.body == b"".join(f"part {i}\n".encode() for i in range(5))
    assert sum(k == "body" for k in response.kinds) == 5

    response = await exchange(plugin, "GET", "/items/1234", "q=x%20y")
    response.check_well_formed()
    assert response.status == 200
    assert json.loads(response.body) == {"item_id": 1234, "q": "x y"}

    response = await exchange(plugin, "GET", "/items/not-an-int")
    assert response.status == 404
    response = await exchange(plugin, "GET", "/upload")
    assert response.status == 405


# -- memory under large transfers -------------------------------------------------------

HEAVY_BYTES = int(os.environ.get("PLUGINCONF_HEAVY_BYTES", str(256 * 1024 * 1024)))
RSS_GROWTH_LIMIT = 64 * 1024 * 1024


class RSSSampler:
    """Samples a process's RSS every ``interval_s`` while in use; ``peak`` is the maximum."""

    def __init__(self, pid: int, interval_s: float = 0.02) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval_s
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> int:
        rss = self._process.memory_info().rss
        self.peak = max(self.peak, rss)
        return rss

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self._interval)

    async def __aenter__(self) -> RSSSampler:
        self._task = asyncio.ensure_future(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.sample()


def counted_blocks(total: int, base: bytes) -> Iterator[bytes]:
    """``total`` bytes of ``base`` repeated, each block stamped with its index."""
    index = 0
    sent = 0
    while sent < total:
        block = (index.to_bytes(8, "big") + base[8:])[: total - sent]
        yield block
        sent += len(block)
        index += 1


@pytest.mark.heavy
async def test_echo_memory_stays_bounded(launch_plugin):
    plugin = await launch_plugin()
    await exchange(plugin, "POST", "/echo", body=generate_bytes(4 * CHUNK))  # warm up
    base = generate_bytes(CHUNK, seed=99)
    sent_hash, got_hash = hashlib.sha256(), hashlib.sha256()
    sent = got = 0
    call = hooks(plugin).ServeHTTP(timeout=300)

    async def writer() -> None:
        nonlocal sent
        await call.write(request_init("POST", "/echo", content_length=HEAVY_BYTES))
        for block in counted_blocks(HEAVY_BYTES, base):
            sent_hash.update(block)
            sent += len(block)
            await call.write(body_frame(block))
        await write_all(call, [END])

    async def reader() -> Frame | None:
        nonlocal got
        last = None
        while (frame := await call.read()) is not grpc.aio.EOF:
            if frame.WhichOneof("frame") == "body":
                assert len(frame.body) <= MAX_BODY_FRAME
                got_hash.update(frame.body)
                got += len(frame.body)
            last = frame
        return last

    sampler = RSSSampler(plugin.pid)
    before = sampler.sample()
    try:
        async with sampler:
            _, last = await asyncio.wait_for(asyncio.gather(writer(), reader()), 280)
    except BaseException:
        call.cancel()
        raise
    assert last is not None
    assert last.WhichOneof("frame") == "end"
    assert last.end.error == ""
    assert (sent, got) == (HEAVY_BYTES, HEAVY_BYTES)
    assert got_hash.hexdigest() == sent_hash.hexdigest()
    growth = sampler.peak - before
    assert growth <= RSS_GROWTH_LIMIT, f"plugin RSS grew by {growth / 2**20:.1f} MiB"


@pytest.mark.heavy
async def test_bytes_download_memory_stays_bounded(launch_plugin):
    plugin = await launch_plugin()
    await exchange(plugin, "GET", "/bytes", f"n={4 * CHUNK}")  # warm up
    got_hash = hashlib.sha256()
    got = 0
    last = None
    call = hooks(plugin).ServeHTTP(timeout=300)
    sampler = RSSSampler(plugin.pid)
    before = sampler.sample()
    try:
        async with sampler:
            await write_all(call, [request_init("GET", "/bytes", f"n={HEAVY_BYTES}&seed=5"), END])
            while (frame := await asyncio.wait_for(call.read(), 30)) is not grpc.aio.EOF:
                if frame.WhichOneof("frame") == "body":
                    assert len(frame.body) <= MAX_BODY_FRAME
                    got_hash.update(frame.body)
                    got += len(frame.body)
                last = frame
    except BaseException:
        call.cancel()
        raise
    assert last is not None
    assert last.WhichOneof("frame") == "end"
    assert last.end.error == ""
    assert got == HEAVY_BYTES
    want_hash = hashlib.sha256()
    for piece in iter_bytes(HEAVY_BYTES, seed=5, piece=16 * CHUNK):
        want_hash.update(piece)
    assert got_hash.hexdigest() == want_hash.hexdigest()
    growth = sampler.peak - before
    assert growth <= RSS_GROWTH_LIMIT, f"plugin RSS grew by {growth / 2**20:.1f} MiB"
