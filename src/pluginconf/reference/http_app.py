"""The reference plugin's ServeHTTP routes, as a plain ASGI application."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl

from pluginconf.plugin.base import ASGIReceive, ASGIScope, ASGISend
from pluginconf.reference.generator import iter_bytes

MAX_PIECE = 4 * 1024 * 1024
HOLD_LIMIT_S = 300.0

Handler = Callable[[ASGIScope, ASGIReceive, ASGISend], Coroutine[Any, Any, None]]


class BadRequest(Exception):
    pass


def _int_param(params: dict[str, str], name: str, default: int | None, low: int, high: int) -> int:
    text = params.get(name)
    if text is None:
        if default is None:
            raise BadRequest(f"query parameter {name} is required")
        return default
    if not text.isdigit():
        raise BadRequest(f"query parameter {name}={text!r} is not a non-negative integer")
    value = int(text)
    if not low <= value <= high:
        raise BadRequest(f"query parameter {name}={value} is outside {low}..{high}")
    return value


async def _respond(
    send: ASGISend, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    all_headers = [(b"content-type", b"text/plain; charset=utf-8"), *(headers or [])]
    if status not in (204, 304):
        all_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": b"" if status in (204, 304) else body})


class ReferenceApp:
    def __init__(self) -> None:
        self.disconnects: list[str] = []
        self._routes: dict[str, Handler] = {
            "/echo": self.echo,
            "/sha256": self.sha256,
            "/bytes": self.bytes,
            "/delay": self.delay,
            "/flush": self.flush,
            "/headers": self.headers,
            "/hold": self.hold,
            "/disconnects": self.list_disconnects,
            "/error": self.error,
        }

    async def __call__(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] != "http":
            return  # no lifespan work to do
        path: str = scope["path"]
        try:
            if path.startswith("/status/"):
                await self.status(scope, receive, send)
                return
            handler = self._routes.get(path)
            if handler is None:
                await _respond(send, 404, f"no route for {path}\n".encode())
                return
            await handler(scope, receive, send)
        except BadRequest as exc:
            await _respond(send, 400, f"{exc}\n".encode())

    @staticmethod
    def _params(scope: ASGIScope) -> dict[str, str]:
        return dict(
            parse_qsl(scope["query_string"].decode("utf-8", "replace"), keep_blank_values=True)
        )

    async def echo(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        headers = [(b"content-type", b"application/octet-stream")]
        headers += [(b"x-echo-" + name, value) for name, value in scope["headers"]]
        headers += [
            (b"x-echo-method", scope["method"].encode()),
            (b"x-echo-path", scope["raw_path"]),
            (b"x-echo-query", scope["query_string"]),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if body or not more:
                await send({"type": "http.response.body", "body": body, "more_body": more})
            if not more:
                return

    async def sha256(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        digest = hashlib.sha256()
        length = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            digest.update(body)
            length += len(body)
            if not message.get("more_body", False):
                break
        await _respond(send, 200, f"{length} {digest.hexdigest()}\n".encode())

    async def bytes(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        params = self._params(scope)
        n = _int_param(params, "n", None, 0, 1 << 62)
        piece = _int_param(params, "chunk", 65536, 1, MAX_PIECE)
        seed = _int_param(params, "seed", 0, 0, (1 << 64) - 1)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/octet-stream"),
                    (b"content-length", str(n).encode()),
                ],
            }
        )
        for data in iter_bytes(n, seed, piece):
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def status(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        text = scope["path"][len("/status/") :]
        if not text.isdigit() or not 200 <= int(text) <= 599:
            raise BadRequest(f"status {text!r} is not an integer in 200..599")
        code = int(text)
        await _respond(send, code, f"status {code}\n".encode())

    async def delay(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        ms = _int_param(self._params(scope), "ms", None, 0, 60000)
        await asyncio.sleep(ms / 1000)
        await _respond(send, 200, f"delayed {ms} ms\n".encode())

    async def flush(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        params = self._params(scope)
        count = _int_param(params, "n", 3, 0, 1000)
        pause = _int_param(params, "ms", 100, 0, 10000)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        for i in range(count):
            await send(
                {"type": "http.response.body", "body": f"chunk {i}\n".encode(), "more_body": True}
            )
            await send({"type": "http.response.body", "body": b"", "more_body": True})
            if i < count - 1:
                await asyncio.sleep(pause / 1000)
        await send({"type": "http.response.body", "body": b""})

    async def headers(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        extra = parse_qsl(scope["query_string"].decode("utf-8", "replace"), keep_blank_values=True)
        headers = [
            (b"x-multi", b"a"),
            (b"x-multi", b"b"),
            (b"x-multi", b"c"),
            (b"set-cookie", b"a=1"),
            (b"set-cookie", b"b=2"),
            *[(k.lower().encode(), v.encode()) for k, v in extra],
        ]
        await _respond(send, 200, b"headers\n", headers)

    async def hold(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        hold_id = self._params(scope).get("id", "")
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send(
                {
                    "type": "http.response.body",
                    "body": f"holding {hold_id}\n".encode(),
                    "more_body": True,
                }
            )
            await send({"type": "http.response.body", "body": b"", "more_body": True})
        except OSError:
            # The client left while we were still sending: ASGI says so by failing send.
            self.disconnects.append(hold_id)
            return
        async with asyncio.timeout(HOLD_LIMIT_S):
            while (await receive())["type"] != "http.disconnect":
                pass
        self.disconnects.append(hold_id)

    async def list_disconnects(
        self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend
    ) -> None:
        await _respond(send, 200, "".join(f"{d}\n" for d in self.disconnects).encode())

    async def error(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        after = _int_param(self._params(scope), "after", 0, 0, 1 << 32)
        if after:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")],
                }
            )
            for data in iter_bytes(after):
                await send({"type": "http.response.body", "body": data, "more_body": True})
        raise RuntimeError(f"requested failure after {after} bytes")
