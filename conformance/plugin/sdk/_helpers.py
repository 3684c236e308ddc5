"""Helpers the SDK profile's cases share."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import TYPE_CHECKING

import grpc

from pluginconf.runner import fail
from pluginconf.runner.plugin.fresh import FreshPlugin
from pluginconf.runner.plugin.http import ServeHTTPCall, exchange
from pluginconf.runner.plugin.shared import SharedPlugin
from pluginconf.v1 import hooks_pb2, hostapi_pb2_grpc

if TYPE_CHECKING:
    from pluginconf.v1.hooks_pb2_grpc import HooksAsyncStub  # in the type stubs only


def hostapi_server(
    fresh: FreshPlugin,
    servicer: hostapi_pb2_grpc.HostAPIServicer,
    name: str,
    credentials: grpc.ServerCredentials | None,
) -> tuple[grpc.aio.Server, str]:
    """A HostAPI server, not yet started, on the unix socket ``name``.sock in the plugin's
    socket directory: with ``credentials``, or plaintext when None; and that socket's path."""
    server = grpc.aio.server()
    hostapi_pb2_grpc.add_HostAPIServicer_to_server(servicer, server)
    path = os.path.join(fresh.launched.socket_dir, f"{name}.sock")
    if credentials is None:
        server.add_insecure_port(f"unix:{path}")
    else:
        server.add_secure_port(f"unix:{path}", credentials)
    return server, path


async def command(hooks: HooksAsyncStub, text: str) -> hooks_pb2.ExecuteCommandResponse:
    return await hooks.ExecuteCommand(
        hooks_pb2.ExecuteCommandRequest(command=text, user_id="u", channel_id="c"), timeout=30
    )


async def command_text(hooks: HooksAsyncStub, text: str) -> str:
    """The text of a command's answer; fails the case on an AppError."""
    answer = await command(hooks, text)
    if answer.HasField("error"):
        fail(f"{text!r} answered AppError {answer.error.code!r}: {answer.error.message}")
    return answer.text


def compact_json(mapping: dict[str, str]) -> str:
    return json.dumps(mapping, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# Deadlock guards: how long the suite waits for anything at all (SPEC bounds are judged).
RECORD_GUARD_S = 10.0
FRAME_GUARD_S = 15.0


async def disconnects(shared: SharedPlugin) -> list[str]:
    response = await exchange(shared.hooks, "GET", "/disconnects")
    return bytes(response.body).decode("utf-8", "replace").splitlines()


async def wait_recorded(
    shared: SharedPlugin, *ids: str, timeout_s: float = RECORD_GUARD_S
) -> list[str]:
    """Poll /disconnects (bounded) until every id is recorded; the ids still missing."""
    deadline = time.monotonic() + timeout_s
    while True:
        recorded = set(await disconnects(shared))
        missing = [i for i in ids if i not in recorded]
        if not missing or time.monotonic() >= deadline:
            return missing
        await asyncio.sleep(0.05)  # polling the plugin's own record; there is no event


async def start_hold(
    shared: SharedPlugin, hold_id: str, requirement: str = "RB-7"
) -> ServeHTTPCall:
    """A /hold exchange whose handler is waiting for its client to go away: its first line
    and the flush after it have arrived (RB-7), so it no longer sends."""
    call = ServeHTTPCall(shared.hooks)
    await call.send_init("GET", "/hold", f"id={hold_id}")
    if not await call.wait_for("flush", FRAME_GUARD_S):
        await call.close()
        fail(
            f"/hold?id={hold_id} sent no line and flush within {FRAME_GUARD_S:g} s: "
            f"{call.response.describe()}",
            requirement=requirement,
        )
    return call
