"""ServeHTTP through the SDK's ASGI bridge: a cancelled or half-closed call reaches the app as
a disconnect, and an unread request is drained."""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import pytest
from conftest import test_plugin
from serve_http_support import (
    CALL_TIMEOUT_S,
    CHUNK,
    END,
    Response,
    body_frame,
    exchange,
    hooks,
    pieces,
    poll_disconnects,
    read_all,
    request_init,
    write_all,
)

from pluginconf.reference.generator import generate_bytes

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
