"""ServeHTTP through the SDK's ASGI bridge: an unchanged Starlette application, and memory
that stays bounded under large transfers."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from collections.abc import Iterator

import grpc
import psutil
import pytest
from conftest import test_plugin
from serve_http_support import (
    CHUNK,
    END,
    MAX_BODY_FRAME,
    Frame,
    body_frame,
    exchange,
    hooks,
    request_init,
    write_all,
)

from pluginconf.reference.generator import generate_bytes, iter_bytes

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
