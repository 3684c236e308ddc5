"""Plugin faults in hooks (HK, RR).

Implemented, handlers' errors, answers, concurrency and resources.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import grpc
from plugin_faults.common import Mutant, fault, patch

from pluginconf.plugin import AppError, hooks
from pluginconf.plugin.http import asgi
from pluginconf.v1 import hooks_pb2

# -- hooks ------------------------------------------------------------------------------


@fault("implemented-lie", "does not list ExecuteCommand, which it answers")
def _(m: Mutant) -> None:
    answer = hooks.HooksService.Implemented

    async def lying(self: Any, request: Any, context: Any) -> Any:
        reply = await answer(self, request, context)
        return hooks_pb2.ImplementedResponse(
            hooks=[h for h in reply.hooks if h != "ExecuteCommand"]
        )

    patch(hooks.HooksService, "Implemented", lying)


@fault("implemented-duplicates", "lists ServeHTTP twice")
def _(m: Mutant) -> None:
    answer = hooks.HooksService.Implemented

    async def twice(self: Any, request: Any, context: Any) -> Any:
        reply = await answer(self, request, context)
        return hooks_pb2.ImplementedResponse(hooks=[*reply.hooks, "ServeHTTP"])

    patch(hooks.HooksService, "Implemented", twice)


@fault("exit-on-deactivate", "exits as soon as it is deactivated")
def _(m: Mutant) -> None:
    async def deactivate(request: Any) -> Any:
        os._exit(0)

    m.plugin.on_deactivate = deactivate  # type: ignore[method-assign]


@fault("exception-escapes", "lets a handler's exception escape (UNKNOWN) on an empty command")
def _(m: Mutant) -> None:
    execute = m.plugin.execute_command

    async def fragile(request: Any) -> Any:
        if not request.command:
            raise ValueError("empty command")
        return await execute(request)

    m.plugin.execute_command = fragile  # type: ignore[method-assign]

    async def call(self: Any, rpc: str, handler: Any, make_error: Any, context: Any) -> Any:
        try:
            return await handler()
        except AppError as exc:
            return make_error(exc)

    patch(hooks.HooksService, "_call", call)


@fault("crash-on-non-bmp", "dies on a post with characters outside the BMP")
def _(m: Mutant) -> None:
    filter_post = m.plugin.message_will_be_posted

    async def fragile(request: Any) -> Any:
        if any(ord(c) > 0xFFFF for c in request.post.message):
            os._exit(3)
        return await filter_post(request)

    m.plugin.message_will_be_posted = fragile  # type: ignore[method-assign]


@fault("oversize-answer", "answers a long command with twice its text (over 4 MiB)")
def _(m: Mutant) -> None:
    async def doubling(request: Any) -> Any:
        return hooks_pb2.ExecuteCommandResponse(text=request.command * 2, response_type="ephemeral")

    m.plugin.execute_command = doubling  # type: ignore[method-assign]


@fault("serialized-calls", "handles one hook call at a time, ServeHTTP included")
def _(m: Mutant) -> None:
    lock: list[asyncio.Lock] = []

    def the_lock() -> asyncio.Lock:
        if not lock:
            lock.append(asyncio.Lock())
        return lock[0]

    call = hooks.HooksService._call
    serve_http = hooks.HooksService.ServeHTTP

    async def one_call(self: Any, *args: Any) -> Any:
        async with the_lock():
            return await call(self, *args)

    async def one_stream(self: Any, request_iterator: Any, context: Any) -> None:
        async with the_lock():
            await serve_http(self, request_iterator, context)

    patch(hooks.HooksService, "_call", one_call)
    patch(hooks.HooksService, "ServeHTTP", one_stream)


@fault("rpc-limit", "caps its server at 12 concurrent calls, long-lived streams included")
def _(m: Mutant) -> None:
    make_server = grpc.aio.server
    patch(grpc.aio, "server", lambda *a, **k: make_server(*a, **k, maximum_concurrent_rpcs=12))


@fault("fd-leak", "opens a descriptor on every command and never closes it")
def _(m: Mutant) -> None:
    execute = m.plugin.execute_command
    leaked: list[int] = []

    async def leaking(request: Any) -> Any:
        leaked.append(os.open(os.devnull, os.O_RDONLY))
        return await execute(request)

    m.plugin.execute_command = leaking  # type: ignore[method-assign]


@fault("body-before-init", "sends a body frame before the response init")
def _(m: Mutant) -> None:
    send = asgi.Exchange.send

    async def early(self: Any, message: Any) -> None:
        if message["type"] == "http.response.start":
            await self._write(hooks_pb2.HTTPResponseFrame(body=b"!"))
        await send(self, message)

    patch(asgi.Exchange, "send", early)
