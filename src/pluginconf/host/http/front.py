"""The host's HTTP front: an ASGI app routing /plugins/{plugin_id}/... to that plugin's
ServeHTTP stream (SPEC SH, SE), served by a real ASGI server (uvicorn).

Both directions stream: request chunks are forwarded as the client sends them, response
frames as the plugin sends them, each step awaiting the other side (backpressure), so no
body is ever held whole. Error mapping: unknown plugin or no ServeHTTP 404; plugin not
active, or its circuit open, 503 with Retry-After; plugin failure before the response starts
502; after it started, the connection is aborted so the client sees a truncated body; a body
over the limit 413. A client that goes away cancels the plugin's stream.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any
from urllib.parse import quote

import grpc

from pluginconf._grpc_compat import EOF
from pluginconf.host.environment import Environment
from pluginconf.host.errors import HostError
from pluginconf.host.supervision.states import PluginState
from pluginconf.plugin.base import ASGIReceive, ASGIScope, ASGISend
from pluginconf.protocol.constants import HOP_BY_HOP_HEADERS, HTTP_CHUNK_BYTES
from pluginconf.protocol.text import wire_text
from pluginconf.v1 import hooks_pb2

log = logging.getLogger("pluginconf.host.http")

PREFIX = "/plugins/"


class AbortResponse(HostError):
    """Raised to the ASGI server after the response started: it must drop the connection."""


def _hop_by_hop(headers: list[tuple[bytes, bytes]]) -> set[str]:
    named = set(HOP_BY_HOP_HEADERS)
    for name, value in headers:
        if name.lower() == b"connection":
            named |= {v.strip().lower() for v in value.decode("latin-1").split(",") if v.strip()}
    return named


def request_headers(headers: list[tuple[bytes, bytes]]) -> list[hooks_pb2.HTTPHeader]:
    drop = _hop_by_hop(headers)
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        key = name.decode("latin-1").lower()
        if key not in drop:
            grouped.setdefault(key, []).append(wire_text(value))
    return [hooks_pb2.HTTPHeader(name=n, values=v) for n, v in grouped.items()]


def response_headers(headers: Any) -> list[tuple[bytes, bytes]]:
    pairs = [
        (h.name.lower().encode("latin-1"), v.encode("utf-8")) for h in headers for v in h.values
    ]
    drop = _hop_by_hop(pairs)
    return [(n, v) for n, v in pairs if n.decode("latin-1") not in drop]


async def _plain(
    send: ASGISend, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = text.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": body})


class HTTPFront:
    def __init__(
        self,
        env: Environment,
        max_body_bytes: int | None = None,
        retry_after_s: int = 5,
        chunk_bytes: int = HTTP_CHUNK_BYTES,
    ) -> None:
        self.env = env
        self.max_body = max_body_bytes
        self.retry_after_s = retry_after_s
        self.chunk = chunk_bytes

    async def __call__(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        raw_path = wire_text(scope.get("raw_path") or quote(scope["path"]).encode())
        if not raw_path.startswith(PREFIX):
            await _plain(send, 404, f"not found: plugins are served under {PREFIX}{{plugin_id}}/\n")
            return
        plugin_id, _, rest = raw_path[len(PREFIX) :].partition("/")
        supervisor = self.env.plugins.get(plugin_id)
        if supervisor is None:
            await _plain(send, 404, f"no plugin {plugin_id!r}\n")
            return
        client = supervisor.client
        if supervisor.state is not PluginState.ACTIVE or client is None:
            await _plain(
                send,
                503,
                f"plugin {plugin_id!r} is {supervisor.state or 'not enabled'}\n",
                [(b"retry-after", str(self.retry_after_s).encode())],
            )
            return
        if "ServeHTTP" not in client.implemented:
            await _plain(send, 404, f"plugin {plugin_id!r} does not serve HTTP\n")
            return
        open_for_s = client.breaker.open_for_s()
        if open_for_s > 0:  # SE-4: no call while the circuit is open
            await _plain(
                send,
                503,
                f"plugin {plugin_id!r}: circuit open after repeated failures\n",
                [(b"retry-after", str(max(1, math.ceil(open_for_s))).encode())],
            )
            return
        declared = _content_length(scope["headers"])
        limit = supervisor.config.max_body_bytes or self.max_body
        if self._refuses_declared(declared, limit):  # SE-7: before any call
            await _plain(
                send, 413, f"request body of {declared} bytes is over the limit of {limit}\n"
            )
            return
        init = hooks_pb2.HTTPRequestInit(
            method=scope["method"],
            path="/" + rest,
            raw_query=wire_text(scope.get("query_string", b"")),
            headers=request_headers(scope["headers"]),
            content_length=declared if declared is not None else _unknown_length(scope["headers"]),
            remote_addr=_remote(scope),
        )
        await _Exchange(self, plugin_id, client.hooks, init, receive, send, limit).run()

    def _refuses_declared(self, declared: int | None, limit: int | None) -> bool:
        return over_limit(declared, limit)

    async def _lifespan(self, receive: ASGIReceive, send: ASGISend) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.env.enable_all()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.env.stop_all()
                await send({"type": "lifespan.shutdown.complete"})
                return


def over_limit(size: int | None, limit: int | None) -> bool:
    """SE-7: a body over the limit; one of exactly the limit passes."""
    return limit is not None and size is not None and size > limit


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length" and value.strip().isdigit():
            return int(value)
    return None


def _unknown_length(headers: list[tuple[bytes, bytes]]) -> int:
    chunked = any(name.lower() == b"transfer-encoding" for name, _ in headers)
    return -1 if chunked else 0


def _remote(scope: ASGIScope) -> str:
    client = scope.get("client")
    if not client:
        return ""
    host, port = client[0], client[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _BodyTooLarge(HostError):
    pass


class _Exchange:
    """One HTTP exchange relayed over one ServeHTTP call."""

    def __init__(
        self,
        front: HTTPFront,
        plugin_id: str,
        hooks: Any,
        init: hooks_pb2.HTTPRequestInit,
        receive: ASGIReceive,
        send: ASGISend,
        max_body: int | None = None,
    ) -> None:
        self.front = front
        self.max_body = max_body
        self.plugin_id = plugin_id
        self.call = hooks.ServeHTTP(None)  # no deadline on an exchange (SH-23)
        self.init = init
        self.receive = receive
        self.send = send
        self.started = False
        self.client_gone = False
        self.too_large = False

    async def _write_request(self) -> None:
        await self.call.write(hooks_pb2.HTTPRequestFrame(init=self.init))
        received = 0
        request_done = False
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.client_gone = True
                self.call.cancel()  # SH-20: the plugin sees its client go
                return
            if request_done:
                continue  # after the body, receive() only tells of a disconnect
            body: bytes = message.get("body", b"")
            received += len(body)
            if over_limit(received, self.max_body):
                raise _BodyTooLarge(received)
            for start in range(0, len(body), self.front.chunk):
                piece = body[start : start + self.front.chunk]
                await self.call.write(hooks_pb2.HTTPRequestFrame(body=piece))
            if not message.get("more_body", False):
                await self.call.write(hooks_pb2.HTTPRequestFrame(end=hooks_pb2.HTTPRequestEnd()))
                await self.call.done_writing()
                request_done = True  # keep listening, for a client that goes away

    def _writer_done(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and isinstance(task.exception(), _BodyTooLarge):
            self.too_large = True
            self.call.cancel()
        # Any other write failure means the plugin finished early, which is fine (SH-26).

    async def _relay_response(self) -> None:
        while True:
            frame = await self.call.read()
            if frame is EOF:
                missing = "a response" if not self.started else "an end frame"
                raise ConnectionError(f"the plugin ended the stream without {missing}")
            kind = frame.WhichOneof("frame")
            if not self.started:
                if kind != "init":
                    raise ConnectionError(f"the plugin's first response frame was {kind}, not init")
                await self.send(
                    {
                        "type": "http.response.start",
                        "status": frame.init.status,
                        "headers": response_headers(frame.init.headers),
                    }
                )
                self.started = True
            elif kind == "body":
                await self.send(
                    {"type": "http.response.body", "body": frame.body, "more_body": True}
                )
            elif kind == "flush":
                continue  # each body message reaches the socket at once anyway
            elif kind == "end":
                if frame.end.error:
                    raise ConnectionError(f"the plugin failed mid-response: {frame.end.error}")
                await self.send({"type": "http.response.body", "body": b""})
                return
            else:
                raise ConnectionError(f"unexpected {kind} frame after the response started")

    async def run(self) -> None:
        writer = asyncio.ensure_future(self._write_request())
        writer.add_done_callback(self._writer_done)
        try:
            await self._relay_response()
        except (ConnectionError, grpc.aio.AioRpcError) as exc:
            await self._fail(exc)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                self.call.cancel()
                raise
            # grpc.aio raises CancelledError from a call we cancelled ourselves (client gone,
            # body too large): the call ended, this task goes on.
            await self._fail(ConnectionError("the ServeHTTP call was cancelled"))
        finally:
            writer.cancel()
            await asyncio.wait({writer})
            if not writer.cancelled():
                writer.exception()  # retrieved: handled in _writer_done

    async def _fail(self, exc: BaseException) -> None:
        self.call.cancel()
        if self.client_gone:
            return
        if not self.started:
            if self.too_large:
                await _plain(
                    self.send,
                    413,
                    f"request body is over the limit of {self.max_body} bytes\n",
                )
                return
            log.warning(
                "plugin %s: ServeHTTP failed before the response: %s",
                self.plugin_id,
                _describe(exc),
            )
            await _plain(self.send, 502, f"plugin {self.plugin_id!r} failed: {_describe(exc)}\n")
            return
        log.warning("plugin %s: ServeHTTP failed mid-response: %s", self.plugin_id, _describe(exc))
        raise AbortResponse(_describe(exc))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc) or type(exc).__name__
