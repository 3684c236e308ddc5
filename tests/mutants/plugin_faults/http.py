"""Plugin faults of ServeHTTP (SH).

The conformance routes' bodies, frames, headers, statuses and disconnects; and the bugs
only fuzzing finds (HIDDEN).
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from plugin_faults.common import Mutant, fault, hidden, patch, replace_route

from pluginconf.plugin.http import asgi
from pluginconf.reference.generator import iter_bytes
from pluginconf.reference.http_app import ReferenceApp
from pluginconf.units import MIB
from pluginconf.v1 import hooks_pb2


@fault("echo-flip-65536", "flips the byte at offset 65536 of an echo")
def _(m: Mutant) -> None:
    async def echo(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        offset = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = bytearray(message.get("body", b""))
            if offset <= 65536 < offset + len(body):
                body[65536 - offset] ^= 0xFF
            offset += len(body)
            more = message.get("more_body", False)
            await send({"type": "http.response.body", "body": bytes(body), "more_body": more})
            if not more:
                return

    replace_route(m, "/echo", echo)


@fault("echo-appends-newline", "adds a newline at the end of an echo")
def _(m: Mutant) -> None:
    echo = m.plugin.app.echo

    async def appending(scope: Any, receive: Any, send: Any) -> None:
        async def send_more(message: Any) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                message = {**message, "body": bytes(message.get("body", b"")) + b"\n"}
            await send(message)

        await echo(scope, receive, send_more)

    replace_route(m, "/echo", appending)


@fault("bytes-extra-byte", "sends one byte more than /bytes asks for")
def _(m: Mutant) -> None:
    async def generated(scope: Any, receive: Any, send: Any) -> None:
        query = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if "=" in p)
        n, seed = int(query["n"]), int(query.get("seed", "0"))
        headers = [(b"content-length", str(n).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for piece in iter_bytes(n + 1, seed):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    replace_route(m, "/bytes", generated)


@fault("oversize-frames", "sends response bodies in 5 MiB frames")
def _(m: Mutant) -> None:
    init = asgi.Exchange.__init__

    def big(self: Any, context: Any, chunk_bytes: int = 5 * MIB) -> None:
        init(self, context, 5 * MIB)

    patch(asgi.Exchange, "__init__", big)


@fault("echo-buffers", "reads the whole request body before echoing any of it")
def _(m: Mutant) -> None:
    async def echo(scope: Any, receive: Any, send: Any) -> None:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": bytes(body)})

    replace_route(m, "/echo", echo)


@fault("flush-ignored", "holds flushed pieces back until the response ends")
def _(m: Mutant) -> None:
    send = asgi.Exchange.send

    async def holding(self: Any, message: Any) -> None:
        if message["type"] == "http.response.body" and message.get("more_body", False):
            self._held = getattr(self, "_held", b"") + bytes(message.get("body", b""))
            return
        if message["type"] == "http.response.body":
            message = {
                **message,
                "body": getattr(self, "_held", b"") + bytes(message.get("body", b"")),
            }
        await send(self, message)

    patch(asgi.Exchange, "send", holding)


@fault("disconnect-swallowed", "never gives the handler http.disconnect when the client leaves")
def _(m: Mutant) -> None:
    receive = asgi.Exchange.receive

    async def swallowing(self: Any) -> Any:
        message = await receive(self)
        if message["type"] == "http.disconnect":
            await asyncio.Event().wait()  # the bug: the handler waits until it is cancelled
        return message

    patch(asgi.Exchange, "receive", swallowing)


@fault("half-close-is-end", "takes a request stream that stops without end for a complete body")
def _(m: Mutant) -> None:
    receive = asgi.Exchange.receive

    async def lenient(self: Any) -> Any:
        message = await receive(self)
        if message["type"] == "http.disconnect" and not self.request_complete:
            self.disconnected = False
            self.request_complete = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return message

    patch(asgi.Exchange, "receive", lenient)


@fault("first-header-value", "passes only the first value of each request header")
def _(m: Mutant) -> None:
    build = asgi.build_scope

    def first_only(init: Any, state: Any) -> Any:
        scope = build(init, state)
        seen: set[bytes] = set()
        kept = []
        for name, value in scope["headers"]:
            if name not in seen:
                seen.add(name)
                kept.append((name, value))
        scope["headers"] = kept
        return scope

    patch(asgi, "build_scope", first_only)


@fault("path-decoded", "gives the handler a decoded raw_path and query")
def _(m: Mutant) -> None:
    from urllib.parse import unquote

    build = asgi.build_scope

    def decoded(init: Any, state: Any) -> Any:
        scope = build(init, state)
        scope["raw_path"] = scope["path"].encode()
        scope["query_string"] = unquote(scope["query_string"].decode()).encode()
        return scope

    patch(asgi, "build_scope", decoded)


@fault("headers-ungrouped", "sends one response header per value")
def _(m: Mutant) -> None:
    def ungrouped(raw: Any) -> Any:
        return [
            hooks_pb2.HTTPHeader(name=bytes(n).decode().lower(), values=[bytes(v).decode()])
            for n, v in raw or ()
        ]

    patch(asgi, "group_headers", ungrouped)


@fault("status-off-by-one", "answers /status/N with N + 1")
def _(m: Mutant) -> None:
    async def status(scope: Any, receive: Any, send: Any) -> None:
        code = int(scope["path"].rsplit("/", 1)[1]) + 1
        await send({"type": "http.response.start", "status": code, "headers": []})
        await send({"type": "http.response.body", "body": f"status {code}\n".encode()})

    patch(m.plugin.app, "status", status)


@fault("handler-error-as-status", "ends the call with INTERNAL when a handler fails early")
def _(m: Mutant) -> None:
    fail = asgi.Exchange._fail

    async def aborting(self: Any, error: str) -> None:
        if not self.response_started:
            await self._context.abort(grpc.StatusCode.INTERNAL, error)
        await fail(self, error)

    patch(asgi.Exchange, "_fail", aborting)


@fault("truncation-hidden", "ends a failed response as if it were complete")
def _(m: Mutant) -> None:
    fail = asgi.Exchange._fail

    async def hiding(self: Any, error: str) -> None:
        if self.response_started and not self.response_ended:
            await self._write(hooks_pb2.HTTPResponseFrame(end=hooks_pb2.HTTPResponseEnd()))
            self.response_ended = True
            return
        await fail(self, error)

    patch(asgi.Exchange, "_fail", hiding)


@fault("delay-ignored", "answers /delay at once")
def _(m: Mutant) -> None:
    async def delay(scope: Any, receive: Any, send: Any) -> None:
        ms = scope["query_string"].decode().partition("ms=")[2]
        body = f"delayed {ms} ms\n".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    replace_route(m, "/delay", delay)


@hidden(
    "query-requoted",
    "re-quotes the raw query as requests' requote_uri does: an escape of an unreserved "
    "character is decoded (%41 becomes A) and a '%' not followed by two hex digits becomes %25",
)
def _(m: Mutant) -> None:
    import re

    build = asgi.build_scope
    unreserved = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    escape = re.compile(rb"%([0-9A-Fa-f]{2})|%")

    def requote(match: Any) -> bytes:
        if match.group(1) is None:
            return b"%25"
        char = bytes([int(match.group(1), 16)])
        return char if char in unreserved else match.group(0)

    def requoted(init: Any, state: Any) -> Any:
        scope = build(init, state)
        scope["query_string"] = escape.sub(requote, scope["query_string"])
        return scope

    patch(asgi, "build_scope", requoted)


@hidden(
    "method-letters-only",
    "its routing answers 400 for a method that is not all letters (str.isalpha), stricter "
    "than RFC 9110's token: M-SEARCH is refused",
)
def _(m: Mutant) -> None:
    route = ReferenceApp.__call__

    async def letters_only(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope["method"].isalpha():
            await send({"type": "http.response.start", "status": 400, "headers": []})
            await send({"type": "http.response.body", "body": b"invalid method\n"})
            return
        await route(self, scope, receive, send)

    patch(ReferenceApp, "__call__", letters_only)
