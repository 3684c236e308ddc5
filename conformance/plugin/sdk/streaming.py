"""The conformance plugin streams: both directions at once, flushes, cancellation."""

from __future__ import annotations

import hashlib
import itertools
import time
import uuid

from pluginconf.reference.generator import iter_bytes
from pluginconf.runner import Profile, case, check, expect
from pluginconf.runner.plugin.http import ServeHTTPCall, exchange
from pluginconf.runner.plugin.shared import SharedPlugin
from pluginconf.runner.plugin.target import PluginTarget
from pluginconf.runner.timing import Yardstick

from .._helpers import judge_bound
from ._helpers import FRAME_GUARD_S, disconnects, start_hold, wait_recorded

_FLUSH_PAUSE_MS = 500
# SH-21: the handler learns of the cancellation or the half-close within 1 s.
_SH21_BOUND_S = 1.0


async def time_to_record(shared: SharedPlugin, hold_id: str, sent: float) -> float | None:
    """Seconds from ``sent`` until /disconnects lists ``hold_id``; None if it never does
    within the guard."""
    if await wait_recorded(shared, hold_id):
        return None
    return time.monotonic() - sent


@case(
    "plugin/sdk/streaming/response-before-request-end",
    requirements=["RB-2", "SH-17"],
    profile=Profile.SDK,
)
async def response_before_request_end(t: PluginTarget) -> None:
    """
    Purpose: The response streams while the request is still coming, in both directions at
      once (full duplex), rather than after the whole body has been read.
    Procedure: POST to /echo announcing 1 MiB; send only the first 64 KiB and wait (15 s at
      most) for response body bytes; then send the rest and end.
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
        arrived = await call.wait_for("body", FRAME_GUARD_S)
        expect(
            arrived and call.response.body_length > 0,
            f"no response body within {FRAME_GUARD_S:g} s of sending the first "
            f"{len(pieces[0])} bytes; {call.response.describe()}",
            requirement="SH-17",
        )
        for piece in pieces[1:]:
            await call.send_body(piece)
        await call.send_end()
        await call.half_close()
        response = await call.finish(30)
    finally:
        await call.close()
    expect(
        response.comparison is None, f"the echo differs: {response.comparison}", requirement="RB-2"
    )


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
    check(
        response.kinds == expected,
        f"frames {response.kinds}, expected {expected}",
        requirement="RB-6",
    )
    check(
        bytes(response.body) == b"chunk 0\nchunk 1\nchunk 2\n",
        f"body {bytes(response.body)!r}",
        requirement="RB-6",
    )
    times = [f.at for f in response.frames if f.kind == "body"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    check(
        all(g >= 0.25 for g in gaps),
        "the chunks arrived together instead of as they were flushed: gaps of "
        + ", ".join(f"{g * 1000:.0f} ms" for g in gaps),
        requirement=["RB-6", "SH-14"],
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
      cancel the call; then poll /disconnects (10 s at most). A time over 1 s is set beside
      a health check of a minimal gRPC process timed just then, and measured again with a
      new exchange (up to three times).
      Then cancel two exchanges one after the other, each once the one before is recorded.
    Asserts: X is recorded in /disconnects within 1 s of the cancellation (SH-21, HK-12);
      /disconnects lists the two in the order they were cancelled (RB-7).
    """
    shared = await t.shared()

    async def cancel_once() -> float | None:
        hold_id = f"cancel-{uuid.uuid4().hex[:8]}"
        call = await start_hold(shared, hold_id)
        sent = time.monotonic()
        call.cancel()
        await call.close()
        t.step("waiting for the handler to record the disconnect")
        return await time_to_record(shared, hold_id, sent)

    verdict = await judge_bound(
        _SH21_BOUND_S, cancel_once, Yardstick.CALL, "the handler's record of the cancellation"
    )
    check(
        verdict.met,
        f"{verdict.evidence()} (/disconnects lists {await disconnects(shared)})",
        requirement=["SH-21", "HK-12"],
    )
    if not verdict.met:
        return  # a handler that does not record in time leaves no order to judge
    t.step("cancelling two exchanges one after the other")
    first, second = (f"order-{i}-{uuid.uuid4().hex[:8]}" for i in (1, 2))
    calls = [await start_hold(shared, first), await start_hold(shared, second)]
    for call, hold_id in zip(calls, (first, second), strict=True):
        call.cancel()
        await call.close()
        await wait_recorded(shared, hold_id)
    listed = await disconnects(shared)
    order = [i for i in listed if i in (first, second)]
    check(
        order == [first, second],
        f"cancelled {first} and then {second}; /disconnects lists {order} of them "
        f"({listed[-4:]} last)",
        requirement="RB-7",
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
    Procedure: Start GET /hold?id=Y and half-close the request without end, polling
      /disconnects (10 s at most; a time over 1 s is judged as in cancel/reaches-handler);
      then POST 1000 bytes to /sha256 and half-close without end.
    Asserts: Y is recorded in /disconnects within 1 s (SH-11, SH-21); /sha256 does not
      answer the digest of the 1000 bytes as if they were the whole body (SH-11).
    """
    shared = await t.shared()

    async def half_close_once() -> float | None:
        hold_id = f"halfclose-{uuid.uuid4().hex[:8]}"
        call = await start_hold(shared, hold_id)
        try:
            sent = time.monotonic()
            await call.half_close()
            t.step("waiting for the handler to record the disconnect")
            return await time_to_record(shared, hold_id, sent)
        finally:
            await call.close()

    verdict = await judge_bound(
        _SH21_BOUND_S, half_close_once, Yardstick.CALL, "the handler's record of a half-close"
    )
    check(
        verdict.met,
        f"after a half-close without end: {verdict.evidence()}",
        requirement=["SH-11", "SH-21"],
    )
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
        requirement="SH-11",
    )
