"""The conformance plugin streams: both directions at once, flushes, cancellation."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
import uuid

from pluginconf.reference.generator import iter_bytes
from pluginconf.runner import Profile, case, expect, fail
from pluginconf.runner.http import ServeHTTPCall, exchange
from pluginconf.runner.shared import SharedPlugin
from pluginconf.runner.target import PluginTarget

_FLUSH_PAUSE_MS = 500


async def disconnects(shared: SharedPlugin) -> list[str]:
    response = await exchange(shared.hooks, "GET", "/disconnects")
    return bytes(response.body).decode("utf-8", "replace").splitlines()


async def wait_recorded(shared: SharedPlugin, *ids: str, timeout_s: float = 2.0) -> list[str]:
    """Poll /disconnects (bounded) until every id is recorded; the ids still missing."""
    deadline = time.monotonic() + timeout_s
    while True:
        recorded = set(await disconnects(shared))
        missing = [i for i in ids if i not in recorded]
        if not missing or time.monotonic() >= deadline:
            return missing
        await asyncio.sleep(0.05)  # polling the plugin's own record; there is no event


async def start_hold(shared: SharedPlugin, hold_id: str) -> ServeHTTPCall:
    """A /hold exchange whose handler is waiting for its client to go away: its first line
    and the flush after it have arrived (RB-7), so it no longer sends."""
    call = ServeHTTPCall(shared.hooks)
    await call.send_init("GET", "/hold", f"id={hold_id}")
    if not await call.wait_for("flush", 5):
        await call.close()
        fail(f"/hold?id={hold_id} sent no line and flush within 5 s: {call.response.describe()}")
    return call


@case(
    "plugin/sdk/streaming/response-before-request-end",
    requirements=["RB-2", "SH-17"],
    profile=Profile.SDK,
)
async def response_before_request_end(t: PluginTarget) -> None:
    """
    Purpose: The response streams while the request is still coming, in both directions at
      once (full duplex), rather than after the whole body has been read.
    Procedure: POST to /echo announcing 1 MiB; send only the first 64 KiB and wait (up to
      5 s) for response body bytes; then send the rest and end.
    Asserts: Echoed bytes arrive before the rest of the request is sent; the whole echo is
      exact.
    """
    shared = await t.shared()
    n = 1024 * 1024
    pieces = list(iter_bytes(n, seed=11))
    call = ServeHTTPCall(shared.hooks, expected_body=iter_bytes(n, seed=11))
    try:
        await call.send_init("POST", "/echo", content_length=n)
        await call.send_body(pieces[0])
        t.step("waiting for echoed bytes before sending the rest of the request")
        arrived = await call.wait_for("body", 5)
        expect(
            arrived and call.response.body_length > 0,
            f"no response body within 5 s of sending the first {len(pieces[0])} bytes; "
            f"{call.response.describe()}",
        )
        for piece in pieces[1:]:
            await call.send_body(piece)
        await call.send_end()
        await call.half_close()
        response = await call.finish(30)
    finally:
        await call.close()
    expect(response.comparison is None, f"the echo differs: {response.comparison}")


@case("plugin/sdk/streaming/flush", requirements=["RB-6", "SH-14"], profile=Profile.SDK)
async def flush(t: PluginTarget) -> None:
    """
    Purpose: What the handler flushes reaches the host at once, not when the response ends.
    Procedure: GET /flush?n=3&ms=500 on the shared process, noting when each frame arrives.
    Asserts: The frames are init, then "chunk 0\\n", flush, "chunk 1\\n", flush, "chunk 2\\n",
      flush, then end; each chunk arrives at least 250 ms after the one before (half the
      pause, for a busy machine; a buffered response brings them together).
    """
    shared = await t.shared()
    response = await exchange(shared.hooks, "GET", "/flush", query=f"n=3&ms={_FLUSH_PAUSE_MS}")
    expected = ["init", "body", "flush", "body", "flush", "body", "flush", "end"]
    expect(response.kinds == expected, f"frames {response.kinds}, expected {expected}")
    expect(
        bytes(response.body) == b"chunk 0\nchunk 1\nchunk 2\n",
        f"body {bytes(response.body)!r}",
    )
    times = [f.at for f in response.frames if f.kind == "body"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    expect(
        all(g >= 0.25 for g in gaps),
        "the chunks arrived together instead of as they were flushed: gaps of "
        + ", ".join(f"{g * 1000:.0f} ms" for g in gaps),
    )


@case(
    "plugin/sdk/cancel/reaches-handler",
    requirements=["RB-7", "SH-21", "HK-12"],
    profile=Profile.SDK,
)
async def cancel_reaches_handler(t: PluginTarget) -> None:
    """
    Purpose: When the host cancels an exchange (its client went away), the handler learns
      it and stops.
    Procedure: Start GET /hold?id=X on the shared process; once "holding X" has arrived,
      cancel the call; then read /disconnects.
    Asserts: X is recorded in /disconnects within 2 s.
    """
    shared = await t.shared()
    hold_id = f"cancel-{uuid.uuid4().hex[:8]}"
    call = await start_hold(shared, hold_id)
    call.cancel()
    await call.close()
    t.step("waiting for the handler to record the disconnect")
    expect(
        not await wait_recorded(shared, hold_id),
        f"/disconnects does not list {hold_id} 2 s after the call was cancelled "
        f"(it lists {await disconnects(shared)})",
    )


@case(
    "plugin/sdk/cancel/half-close-without-end",
    requirements=["RB-7", "RB-8", "SH-11", "SH-21"],
    profile=Profile.SDK,
)
async def half_close_without_end(t: PluginTarget) -> None:
    """
    Purpose: A request stream that stops without its end frame is a client that went away,
      never a complete body.
    Procedure: Start GET /hold?id=Y and half-close the request without end; then POST
      1000 bytes to /sha256 and half-close without end.
    Asserts: Y is recorded in /disconnects within 2 s; /sha256 does not answer the digest of
      the 1000 bytes as if they were the whole body.
    """
    shared = await t.shared()
    hold_id = f"halfclose-{uuid.uuid4().hex[:8]}"
    call = await start_hold(shared, hold_id)
    try:
        await call.half_close()
        t.step("waiting for the handler to record the disconnect")
        missing = await wait_recorded(shared, hold_id)
    finally:
        await call.close()
    expect(not missing, f"/disconnects does not list {hold_id} 2 s after a half-close without end")
    body = b"\x42" * 1000
    call = ServeHTTPCall(shared.hooks)
    try:
        await call.send_init("POST", "/sha256", content_length=len(body))
        await call.send_body(body)
        await call.half_close()
        response = await call.finish(10)
    finally:
        await call.close()
    digest = f"{len(body)} {hashlib.sha256(body).hexdigest()}\n".encode()
    expect(
        not (response.status == 200 and bytes(response.body) == digest),
        "/sha256 answered the digest of a body that never ended: a half-close without end "
        "was taken for a complete request",
    )
