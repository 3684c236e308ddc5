"""The HTTP front through a real server (uvicorn) and a real HTTP client (httpx)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from conftest import REFERENCE, test_plugin

from pluginconf.host.environment import Environment
from pluginconf.host.http.front import HTTPFront
from pluginconf.host.launcher import LaunchSpec
from pluginconf.reference.generator import generate_bytes

MAX_BODY = 32 * 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def serving(env: Environment, max_body: int | None = None) -> AsyncIterator[str]:
    """The front over ``env`` under a real uvicorn server; yields its base URL."""
    config = uvicorn.Config(
        HTTPFront(env, max_body_bytes=max_body),
        host="127.0.0.1",
        port=free_port(),
        lifespan="on",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:  # uvicorn offers a flag, not an event: poll it
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@pytest.fixture
async def front(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, Environment]]:
    """A real uvicorn server with the front; indirect parameter: the body limit."""
    env = Environment()
    env.add("ref", LaunchSpec(argv=REFERENCE))
    env.add("nohttp", LaunchSpec(argv=test_plugin("configurable", "--hooks", "ExecuteCommand")))
    async with serving(env, getattr(request, "param", MAX_BODY)) as base:
        yield base, env


@pytest.mark.parametrize("size", [0, 1, 65537, 16 * 1024 * 1024])
async def test_uploads_and_downloads_are_byte_exact(front, size):
    base, _ = front
    body = generate_bytes(size, seed=size)
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        # httpx sends the whole body before reading, so large uploads go to /sha256: /echo
        # answers as it reads and would fill both directions, as with any streaming server.
        if size <= 65537:
            echo = await http.post("/plugins/ref/echo", content=body)
            assert echo.status_code == 200
            assert echo.content == body
        sink = await http.post("/plugins/ref/sha256", content=body)
        assert sink.text == f"{size} {hashlib.sha256(body).hexdigest()}\n"
        got = await http.get("/plugins/ref/bytes", params={"n": size, "seed": 5})
        assert got.status_code == 200
        assert got.content == generate_bytes(size, seed=5)


async def test_64_concurrent_streams(front):
    base, _ = front
    bodies = [generate_bytes(100_000 + i, seed=i) for i in range(64)]
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        replies = await asyncio.gather(*(http.post("/plugins/ref/echo", content=b) for b in bodies))
    assert [r.content for r in replies] == bodies


async def test_streaming_upload_of_unknown_length(front):
    base, _ = front

    async def chunks():
        for i in range(50):
            yield generate_bytes(10_000, seed=i)

    expected = b"".join(generate_bytes(10_000, seed=i) for i in range(50))
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        reply = await http.post("/plugins/ref/echo", content=chunks())
    assert hashlib.sha256(reply.content).digest() == hashlib.sha256(expected).digest()


async def test_headers_both_ways_and_hop_by_hop_dropped(front):
    base, _ = front
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        reply = await http.get("/plugins/ref/headers", params=[("x-extra", "1"), ("x-extra", "2")])
        assert reply.headers.get_list("x-multi") == ["a", "b", "c"]
        assert reply.headers.get_list("set-cookie") == ["a=1", "b=2"]
        assert reply.headers.get_list("x-extra") == ["1", "2"]
        echo = await http.post(
            "/plugins/ref/echo?q=%20x&r=%2F",
            headers=[
                ("x-multi", "1"),
                ("x-multi", "2"),
                ("connection", "x-private"),
                ("x-private", "secret"),
            ],
            content=b"",
        )
        assert echo.headers.get_list("x-echo-x-multi") == ["1", "2"]
        assert echo.headers["x-echo-path"] == "/echo"
        assert echo.headers["x-echo-query"] == "q=%20x&r=%2F"  # raw, as the client sent it
        assert "x-echo-x-private" not in echo.headers  # named in Connection: hop-by-hop
        assert "x-echo-connection" not in echo.headers


async def test_paths_are_relative_to_the_mount_point(front):
    base, _ = front
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        reply = await http.get("/plugins/ref/status/418")
        assert reply.status_code == 418
        assert reply.content == b"status 418\n"


async def test_error_mapping(front):
    base, env = front
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        assert (await http.get("/plugins/nosuch/x")).status_code == 404
        assert (await http.get("/elsewhere")).status_code == 404
        nohttp = await http.get("/plugins/nohttp/x")
        assert nohttp.status_code == 404
        assert "does not serve HTTP" in nohttp.text
        too_big = await http.post("/plugins/ref/echo", content=b"x" * (MAX_BODY + 1))
        assert too_big.status_code == 413

        async def unknown_length():
            for _ in range(MAX_BODY // 65536 + 2):
                yield b"x" * 65536

        streamed = await http.post("/plugins/ref/sha256", content=unknown_length())
        assert streamed.status_code == 413  # counted as it streams, without a content-length
        await env.get("nohttp").disable()
        inactive = await http.get("/plugins/nohttp/x")
        assert inactive.status_code == 503
        assert inactive.headers["retry-after"] == "5"


async def test_plugin_crash_before_the_response_is_502(front):
    base, env = front
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        pending = asyncio.ensure_future(http.get("/plugins/ref/delay", params={"ms": 10000}))
        await asyncio.sleep(0.3)  # the request is on its way to the plugin
        os.kill(env.get("ref").process.pid, signal.SIGKILL)
        reply = await asyncio.wait_for(pending, 10)
    assert reply.status_code == 502
    assert "plugin 'ref' failed" in reply.text


async def test_failure_after_the_response_started_truncates(front):
    base, _ = front
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/plugins/ref/error", params={"after": 100000})
        # The plugin itself is fine.
        assert (await http.post("/plugins/ref/echo", content=b"ok")).content == b"ok"


async def test_response_streams_before_the_plugin_finishes(front):
    base, _ = front
    arrivals: list[float] = []
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as http,
        http.stream("GET", "/plugins/ref/flush", params={"n": 3, "ms": 300}) as reply,
    ):
        async for _ in reply.aiter_raw():
            arrivals.append(time.monotonic())
    assert len(arrivals) >= 3
    assert arrivals[-1] - arrivals[0] >= 0.5  # pieces arrived as sent, not all at the end


async def test_client_disconnect_reaches_the_plugin(front):
    base, _ = front
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        async with http.stream("GET", "/plugins/ref/hold", params={"id": "gone-1"}) as reply:
            async for piece in reply.aiter_raw():
                assert piece == b"holding gone-1\n"
                break
        async with asyncio.timeout(10):
            # The plugin's record lives in another process: poll it, bounded.
            while "gone-1" not in (await http.get("/plugins/ref/disconnects")).text:  # noqa: ASYNC110
                await asyncio.sleep(0.05)


def test_serve_command_serves_a_plugin_directory_and_stops_cleanly(tmp_path: Path):
    plugin_dir = tmp_path / "plugins"
    (plugin_dir / "ref").mkdir(parents=True)
    (plugin_dir / "ref" / "plugin.toml").write_text(
        f'id = "ref"\nexecutable = "{sys.executable}"\nargs = ["-m", "pluginconf", "reference-plugin"]\n'
    )
    (plugin_dir / "broken").mkdir()
    (plugin_dir / "broken" / "plugin.toml").write_text(
        f'id = "broken"\nexecutable = "{sys.executable}"\nargs = "not a list"\n'
    )
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pluginconf",
            "serve",
            "--plugins",
            str(plugin_dir),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                reply = httpx.post(
                    f"http://127.0.0.1:{port}/plugins/ref/echo", content=b"hi", timeout=5
                )
                if reply.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.1)  # waiting for another process's port: nothing to wait on but time
        assert reply.content == b"hi"
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
        assert server.returncode == 0
        assert "broken/plugin.toml: args: expected a list of strings" in output
        assert "ref: active -> stopped" in output
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate(timeout=10)


HEAVY_BYTES = int(os.environ.get("PLUGINCONF_HEAVY_BYTES", str(256 * 1024 * 1024)))
RSS_BOUND = 64 * 1024 * 1024


async def _peak_rss_growth(work) -> tuple[int, object]:
    """Run ``work`` while sampling this process's RSS: the host (and the client) live here."""
    import psutil

    me = psutil.Process()
    before = me.memory_info().rss
    peak = before
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, me.memory_info().rss)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.05)

    sampler = asyncio.ensure_future(sample())
    try:
        result = await work
    finally:
        done.set()
        await sampler
    return peak - before, result


@pytest.mark.heavy
@pytest.mark.parametrize("front", [None], indirect=True, ids=["no-limit"])
async def test_host_memory_stays_bounded_both_ways(front):
    base, _ = front
    block = generate_bytes(65536, seed=9)

    async def upload_body():
        for _ in range(HEAVY_BYTES // len(block)):
            yield block

    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        growth, reply = await _peak_rss_growth(
            http.post("/plugins/ref/sha256", content=upload_body())
        )
        expected = hashlib.sha256(block * (HEAVY_BYTES // len(block))).hexdigest()
        assert reply.text == f"{HEAVY_BYTES // len(block) * len(block)} {expected}\n"
        assert growth <= RSS_BOUND, (
            f"host RSS grew {growth / 2**20:.1f} MiB on a {HEAVY_BYTES >> 20} MiB upload"
        )

        async def download() -> int:
            total = 0
            async with http.stream("GET", "/plugins/ref/bytes", params={"n": HEAVY_BYTES}) as r:
                async for piece in r.aiter_raw():
                    total += len(piece)
            return total

        growth, total = await _peak_rss_growth(download())
        assert total == HEAVY_BYTES
        assert growth <= RSS_BOUND, (
            f"host RSS grew {growth / 2**20:.1f} MiB on a {HEAVY_BYTES >> 20} MiB download"
        )


async def test_plugin_crash_after_the_response_started_truncates(tmp_path):
    """The process dies mid-response (no end frame): the client must see a truncated body."""
    import json

    scenario = tmp_path / "crash.json"
    scenario.write_text(json.dumps({"crash": {"during_http_after_bytes": 100_000}}))
    fake = Path(__file__).resolve().parents[3] / "fake_interpreters" / "fakeplugin"
    env = Environment()
    env.add("fake", LaunchSpec(argv=[sys.executable, str(fake), str(scenario)]))
    received = bytearray()

    async def download(base: str) -> None:
        async with (
            httpx.AsyncClient(base_url=base, timeout=30) as http,
            http.stream("GET", "/plugins/fake/bytes", params={"n": 1_000_000}) as reply,
        ):
            assert reply.status_code == 200
            async for piece in reply.aiter_raw():
                received.extend(piece)

    async with serving(env) as base:
        with pytest.raises(httpx.RemoteProtocolError):
            await download(base)
    assert len(received) == 100_000  # every byte sent before the crash, and no more
    assert received == generate_bytes(100_000)
