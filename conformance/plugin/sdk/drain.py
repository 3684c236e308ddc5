"""SH-25: a handler that answers before reading the whole request leaves the rest drained."""

from __future__ import annotations

from asyncio import InvalidStateError

import grpc

from pluginconf.runner import Level, Profile, case, check, expect
from pluginconf.runner.plugin.http import ServeHTTPCall
from pluginconf.runner.plugin.target import PluginTarget

from ._helpers import FRAME_GUARD_S

# Deadlock guards, not SPEC bounds.
_FINISH_GUARD_S = 15.0
# Enough request left over to outgrow gRPC's flow-control windows: a plugin that stops
# reading makes the host's writes wait, and fail once the call has ended.
_PIECE = b"\x5a" * (64 * 1024)
_PIECES = 64  # 4 MiB


@case(
    "plugin/sdk/streaming/unread-request-drained",
    requirements=["SH-25"],
    profile=Profile.SDK,
    level=Level.SHOULD,
)
async def unread_request_drained(t: PluginTarget) -> None:
    """
    Purpose: A handler may answer before it has read the request; the host's writes of the
      rest of the body still succeed.
    Procedure: POST to /status/200 (which never reads its body) announcing 4 MiB and 64 KiB
      more; send only the init and wait for the whole response (15 s at most); then send
      the 4 MiB in 64 KiB frames, end, and half-close.
    Asserts: The call is still open when the response has ended, every later write
      succeeds, and the call ends OK once the request's end has been sent.
    """
    shared = await t.shared()
    call = ServeHTTPCall(shared.hooks)
    problems: list[str] = []
    try:
        await call.send_init("POST", "/status/200", content_length=len(_PIECE) * _PIECES)
        expect(
            await call.wait_for("end", FRAME_GUARD_S) and call.response.ended,
            f"/status/200 did not complete its response: {call.response.describe()}",
            requirement="SH-25",
        )
        sent = 0
        # How the call ended, if it had before the request's end was sent. Once the end is on
        # its way the plugin may complete the call at once, and its status may arrive while
        # the half-close is still awaited (sooner under load): an end after that is no sign.
        ended_early: grpc.StatusCode | None = None
        try:
            for _ in range(_PIECES):
                if call.response.code is not None:
                    break
                await call.send_body(_PIECE)
                sent += len(_PIECE)
            ended_early = call.response.code
            if ended_early is None:
                await call.send_end()
                await call.half_close()
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, RuntimeError, InvalidStateError) as exc:
            # InvalidStateError: grpc's "RPC already finished", when the plugin ended the call.
            problems.append(f"a write failed after {sent} body bytes: {exc!r}")
        if ended_early is not None:
            problems.append(
                f"the call ended ({ended_early.name}) after {sent} of "
                f"{len(_PIECE) * _PIECES} body bytes, before the request's end was sent"
            )
        response = await call.finish(_FINISH_GUARD_S)
    finally:
        await call.close()
    check(
        not problems,
        "the plugin did not read the rest of the request after its response: "
        + "; ".join(problems),
    )
    check(
        response.code == grpc.StatusCode.OK,
        f"the call ended {response.describe()} after the request's end",
    )
