"""ServeHTTP through the SDK's ASGI bridge: byte-exact bodies, full duplex, statuses and errors.

Against real plugin processes over real gRPC, the reference plugin (docs/reference-plugin.md);
request bodies go out in 64 KiB frames while the response is read, as a host does.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from serve_http_support import (
    CALL_TIMEOUT_S,
    CHUNK,
    ECHO_HEADERS,
    END,
    SIZES,
    Response,
    body_frame,
    check_echo_headers,
    exchange,
    hooks,
    pieces,
    read_all,
    request_init,
    write_all,
)

from pluginconf.reference.generator import generate_bytes

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
