"""The fake's ServeHTTP app: the ASGI routes the suite sends HTTP requests to."""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import parse_qsl

from pluginconf.fake.record import Recorder
from pluginconf.plugin.base import ASGIMessage, ASGIReceive, ASGIScope, ASGISend
from pluginconf.reference.generator import iter_bytes

if TYPE_CHECKING:
    from pluginconf.fake.hooks import _ReplayContext

log = logging.getLogger("fakeplugin")

HOP_BY_HOP_RESPONSE = [
    (b"connection", b"x-hop-secret"),
    (b"x-hop-secret", b"1"),
    (b"keep-alive", b"timeout=99"),
    (b"proxy-connection", b"keep-alive"),
]

# After sending what a crash scenario wants the host to see, the bytes get this long to leave
# gRPC's buffers before the process dies.
CRASH_FLUSH_S = 0.1

# -- HTTP ---------------------------------------------------------------------------------

# The ServeHTTP call id of the exchange being served: set by FakeHooks.ServeHTTP, and seen by
# the ASGI app because the SDK runs it in a task, which copies the context it starts in.
HTTP_CALL: contextvars.ContextVar[int] = contextvars.ContextVar("fakeplugin_http_call", default=0)
# The call's request stream, for /early, which stops reading it.
HTTP_REPLAY: contextvars.ContextVar[_ReplayContext | None] = contextvars.ContextVar(
    "fakeplugin_http_replay", default=None
)

TEXT_PLAIN = b"text/plain; charset=utf-8"
NO_BODY_STATUSES = (204, 304)
MAX_DRIP_PIECES = 100_000
MAX_DRIP_MS = 60_000
ROUTES_HELP = "/echo, /bytes, /headers, /status/CODE, /drip, /hold, /sink, /early"

Route = Callable[[ASGIScope, ASGIReceive, ASGISend], Awaitable[None]]


class BadRequest(Exception):
    """The request's path or query is unusable; the message (a 400 body) says why."""


def _params(scope: ASGIScope) -> dict[str, str]:
    return dict(parse_qsl(scope["query_string"].decode("latin-1")))


def _int_param(params: dict[str, str], name: str, default: int, high: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) > high:
        raise BadRequest(f"{name}={text!r}: expected an integer from 0 to {high}")
    return int(text)


async def _respond(
    send: ASGISend, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A whole response; 204 and 304 have no body (and so no content-length)."""
    body = b"" if status in NO_BODY_STATUSES else text.encode()
    all_headers = [(b"content-type", TEXT_PLAIN), *(headers or [])]
    if status not in NO_BODY_STATUSES:
        all_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def _start(send: ASGISend, content_type: bytes = TEXT_PLAIN) -> None:
    headers = [(b"content-type", content_type)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})


async def _send_flushed(send: ASGISend, body: bytes) -> None:
    """A body piece, then an empty non-final body message: the SDK sends a flush frame."""
    await send({"type": "http.response.body", "body": body, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": True})


class FakeApp:
    """ServeHTTP routes (fake_interpreters/README.md): /echo, /bytes, /headers, /status/CODE,
    /drip, /hold, /sink; anything else is 404. With ``crash_after_bytes``, the process dies
    once that many response body bytes of an exchange have been sent."""

    def __init__(
        self, rec: Recorder, crash_after_bytes: int | None, crash: Callable[[str], NoReturn]
    ) -> None:
        self._rec = rec
        self._crash_after = crash_after_bytes
        self._crash = crash
        self._routes: dict[str, Route] = {
            "/echo": self._echo,
            "/bytes": self._bytes,
            "/headers": self._headers,
            "/drip": self._drip,
            "/hold": self._hold,
            "/sink": self._sink,
            "/early": self._early,
        }

    async def __call__(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] != "http":
            return
        if self._crash_after is not None:
            send = self._crashing(send, self._crash_after)
        path: str = scope["path"]
        route = self._status if path.startswith("/status/") else self._routes.get(path)
        if route is None:
            await _respond(send, 404, f"no route for {path}; try {ROUTES_HELP}\n")
            return
        try:
            await route(scope, receive, send)
        except BadRequest as exc:
            await _respond(send, 400, f"{path}: {exc}\n")

    def _disconnected(self, scope: ASGIScope) -> None:
        self._rec.event("http_disconnect", call=HTTP_CALL.get(), path=scope["path"])

    @staticmethod
    async def _echo(scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        await _start(send, b"application/octet-stream")
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body, more = message.get("body", b""), message.get("more_body", False)
            if body or not more:
                await send({"type": "http.response.body", "body": body, "more_body": more})
            if not more:
                return

    @staticmethod
    async def _bytes(scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        params = _params(scope)
        n, seed = params.get("n", ""), params.get("seed", "0")
        if not (n.isdigit() and seed.isdigit()):
            raise BadRequest("needs n=BYTES (and optionally seed=S), integers")
        headers = [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", n.encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for piece in iter_bytes(int(n), int(seed)):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _headers(scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        multi = [(b"x-multi", value) for value in (b"a", b"b", b"c")]
        cookies = [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
        # ?hop=1: fields about this connection, which a host must not pass on (SE-8).
        hop = HOP_BY_HOP_RESPONSE if _params(scope).get("hop") == "1" else []
        await _respond(send, 200, "headers\n", multi + cookies + hop)

    @staticmethod
    async def _status(scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        text = scope["path"][len("/status/") :]
        if not (text.isdigit() and 200 <= int(text) <= 599):
            # ServeHTTP carries only final statuses (SH-12).
            raise BadRequest(f"expected /status/CODE with CODE from 200 to 599, got {text!r}")
        await _respond(send, int(text), f"status {int(text)}\n")

    async def _drip(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        params = _params(scope)
        count = _int_param(params, "n", 3, MAX_DRIP_PIECES)
        pause_s = _int_param(params, "ms", 100, MAX_DRIP_MS) / 1000
        await _start(send)
        try:
            for index in range(1, count + 1):
                await _send_flushed(send, f"piece {index}\n".encode())
                self._rec.event("http_piece_sent", call=HTTP_CALL.get(), index=index)
                if index < count:
                    await asyncio.sleep(pause_s)
        except OSError:  # the SDK's send fails once the client has gone
            self._disconnected(scope)
            return
        await send({"type": "http.response.body", "body": b""})

    async def _hold(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        try:
            await _start(send)
            await _send_flushed(send, b"holding\n")
        except OSError:  # gone while we were still sending
            self._disconnected(scope)
            return
        # Reads (and drops) any request body; answers nothing more, whatever it receives.
        while (await receive())["type"] != "http.disconnect":
            pass
        self._disconnected(scope)

    async def _sink(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        digest, size = hashlib.sha256(), 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                self._disconnected(scope)
                return
            body = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if body:
                size += len(body)
                digest.update(body)
                self._rec.event("http_body_progress", call=HTTP_CALL.get(), bytes=size)
        await _respond(send, 200, f"{size} {digest.hexdigest()}\n")

    @staticmethod
    async def _early(scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        # The whole response before any of the request body, then the call ends unread. No
        # content-length: only the end of the response tells the client it is complete.
        await _start(send)
        await send({"type": "http.response.body", "body": b"early\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        replay = HTTP_REPLAY.get()
        if replay is not None:
            replay.stop_reading()

    def _crashing(self, send: ASGISend, limit: int) -> ASGISend:
        sent = 0

        async def die() -> NoReturn:
            await asyncio.sleep(CRASH_FLUSH_S)
            self._crash(f"crash.during_http_after_bytes: {limit} response body bytes sent")

        async def wrapped(message: ASGIMessage) -> None:
            nonlocal sent
            if message["type"] == "http.response.start":
                await send(message)
                if limit == 0:
                    await die()
                return
            if message["type"] == "http.response.body":
                body = bytes(message.get("body", b""))
                room = limit - sent
                if body and len(body) >= room:
                    if room:
                        piece = {"type": "http.response.body", "body": body[:room]}
                        await send({**piece, "more_body": True})
                    await die()
                sent += len(body)
            await send(message)

        return wrapped
