"""ServeHTTP <-> ASGI: one gRPC stream becomes one ASGI HTTP exchange, streamed both ways.

Request frames are read only when the application calls ``receive()``, and response frames
are written as the application calls ``send()``, each write awaiting gRPC flow control: no
side buffers a whole body, and backpressure reaches the peer in both directions.

Exchange states, request side:  receiving -> complete (HTTPRequestEnd) | disconnected
                  response side: not started -> started (init sent) -> ended (end sent)
A stream that ends without HTTPRequestEnd, or an RPC cancelled by the host, is a disconnect:
the application's next (or pending) ``receive()`` returns ``http.disconnect`` and ``send()``
raises OSError, as under an ASGI server whose client went away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import unquote

import grpc

from pluginconf._grpc_compat import EOF
from pluginconf.plugin.base import ASGIApp, ASGIMessage, ASGIScope
from pluginconf.protocol.constants import HTTP_CHUNK_BYTES
from pluginconf.protocol.text import wire_text
from pluginconf.v1 import hooks_pb2

log = logging.getLogger("pluginconf.plugin.http")

Context = grpc.aio.ServicerContext[hooks_pb2.HTTPRequestFrame, hooks_pb2.HTTPResponseFrame]

# How long an application may run on after its client went away before it is cancelled.
DISCONNECT_GRACE_S = 1.0
# After the response, unread request frames are drained (SH-25) while they keep coming.
DRAIN_IDLE_S = 10.0

_DISCONNECT: ASGIMessage = {"type": "http.disconnect"}
_FLUSH = hooks_pb2.HTTPResponseFrame(flush=hooks_pb2.HTTPFlush())
_END = hooks_pb2.HTTPResponseFrame(end=hooks_pb2.HTTPResponseEnd())


# How a read or write on the stream fails once the host cancelled it (its client went away):
# an RpcError, a RuntimeError, or one of grpc.aio's own errors (a write after the cancel
# fails its batch with ExecuteBatchError, a grpc.aio.BaseError).
_STREAM_GONE = (grpc.RpcError, grpc.aio.BaseError, RuntimeError)


class ClientDisconnected(OSError):
    """Raised by ``send()`` once the HTTP client has gone away."""


def _to_bytes(text: str) -> bytes:
    return text.encode("utf-8")


def _client(remote_addr: str) -> tuple[str, int] | None:
    host, sep, port = remote_addr.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def build_scope(init: hooks_pb2.HTTPRequestInit, state: dict[str, Any]) -> ASGIScope:
    raw_path = init.path or "/"
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": init.method.upper(),
        "scheme": "http",
        "path": unquote(raw_path),
        "raw_path": _to_bytes(raw_path),
        "query_string": _to_bytes(init.raw_query),
        "root_path": "",
        "headers": [
            (_to_bytes(h.name.lower()), _to_bytes(v)) for h in init.headers for v in h.values
        ],
        "client": _client(init.remote_addr),
        "server": None,
        "extensions": {},
        "state": dict(state),
    }


def group_headers(raw: Any) -> list[hooks_pb2.HTTPHeader]:
    """ASGI (name, value) pairs -> one HTTPHeader per name, values in order."""
    grouped: dict[str, list[str]] = {}
    for name, value in raw or ():
        grouped.setdefault(wire_text(bytes(name)).lower(), []).append(wire_text(bytes(value)))
    return [hooks_pb2.HTTPHeader(name=n, values=v) for n, v in grouped.items()]


class Exchange:
    """One ServeHTTP call: the ASGI receive/send pair over the gRPC stream."""

    def __init__(self, context: Context, chunk_bytes: int = HTTP_CHUNK_BYTES) -> None:
        self._context = context
        self._chunk = chunk_bytes
        self.request_complete = False
        self.disconnected = False
        self.response_started = False
        self.response_ended = False
        self._gone = asyncio.Event()  # set once no further request events can come
        self._in_read = False
        self._interrupting = False
        self._app_task: asyncio.Task[None] | None = None

    # -- ASGI side -------------------------------------------------------------------------

    async def receive(self) -> ASGIMessage:
        if self.disconnected:
            return _DISCONNECT
        if self.request_complete:
            await self._gone.wait()
            return _DISCONNECT
        self._in_read = True
        try:
            frame = await self._context.read()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._interrupting and task is not None:
                # We cancelled the app to end a read its client will never complete.
                self._interrupting = False
                task.uncancel()
                return _DISCONNECT
            raise
        except _STREAM_GONE:
            self.mark_disconnected()
            return _DISCONNECT
        finally:
            self._in_read = False
        if frame is EOF:
            self.mark_disconnected()
            return _DISCONNECT
        assert isinstance(frame, hooks_pb2.HTTPRequestFrame)
        kind = frame.WhichOneof("frame")
        if kind == "body":
            return {"type": "http.request", "body": frame.body, "more_body": True}
        if kind == "end":
            self.request_complete = True
            return {"type": "http.request", "body": b"", "more_body": False}
        log.warning(
            "ServeHTTP: unexpected %r frame in the request body; treating as disconnect", kind
        )
        self.mark_disconnected()
        return _DISCONNECT

    async def send(self, message: ASGIMessage) -> None:
        if self.disconnected:
            raise ClientDisconnected("the HTTP client went away")
        kind = message["type"]
        if kind == "http.response.start":
            if self.response_started:
                raise RuntimeError("ASGI: http.response.start sent twice")
            status = int(message["status"])
            if not 200 <= status <= 599:
                raise RuntimeError(f"ASGI: status {status} is outside 200..599 (SH-12)")
            init = hooks_pb2.HTTPResponseInit(
                status=status, headers=group_headers(message.get("headers"))
            )
            await self._write(hooks_pb2.HTTPResponseFrame(init=init))
            self.response_started = True
        elif kind == "http.response.body":
            if not self.response_started:
                raise RuntimeError("ASGI: http.response.body sent before http.response.start")
            if self.response_ended:
                raise RuntimeError("ASGI: http.response.body sent after the response ended")
            body = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if len(body) <= self._chunk:
                if body:
                    await self._write(hooks_pb2.HTTPResponseFrame(body=body))
            else:
                view = memoryview(body)
                for start in range(0, len(body), self._chunk):
                    piece = bytes(view[start : start + self._chunk])
                    await self._write(hooks_pb2.HTTPResponseFrame(body=piece))
            if not more:
                await self._write(_END)
                self.response_ended = True
                self._gone.set()
            elif not body:
                # An empty non-final body message is the application asking for a flush.
                await self._write(_FLUSH)
        else:
            raise RuntimeError(f"ASGI: unexpected message type {kind!r} for an HTTP exchange")

    # -- gRPC side -------------------------------------------------------------------------

    async def _write(self, frame: hooks_pb2.HTTPResponseFrame) -> None:
        try:
            await self._context.write(frame)
        except _STREAM_GONE as exc:
            self.mark_disconnected()
            raise ClientDisconnected(f"the HTTP client went away: {exc}") from None

    def mark_disconnected(self) -> None:
        self.disconnected = True
        self._gone.set()

    def _interrupt(self) -> None:
        """The RPC was cancelled: wake the application with http.disconnect."""
        self.mark_disconnected()
        if self._in_read and self._app_task is not None:
            self._interrupting = True
            self._app_task.cancel()

    async def _fail(self, error: str) -> None:
        if self.disconnected:
            return
        if not self.response_started:
            await self.send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await self.send({"type": "http.response.body", "body": b"Internal Server Error\n"})
        elif not self.response_ended:
            await self._write(
                hooks_pb2.HTTPResponseFrame(end=hooks_pb2.HTTPResponseEnd(error=error))
            )
            self.response_ended = True

    async def _call_app(self, app: ASGIApp, scope: ASGIScope) -> None:
        try:
            await app(scope, self.receive, self.send)
        except ClientDisconnected:
            return
        except Exception as exc:
            if self.disconnected:
                log.debug("ServeHTTP handler failed after disconnect: %r", exc)
                return
            log.exception("ServeHTTP handler raised")
            with contextlib.suppress(ClientDisconnected):
                await self._fail(f"handler raised {type(exc).__name__}: {exc}")
            return
        try:
            if not self.response_started:
                await self._fail("application returned without starting a response")
            elif not self.response_ended:
                await self._fail("application returned before completing the response body")
        except ClientDisconnected:
            pass

    async def _drain_request(self) -> None:
        """Read and discard what is left of the request, so the host's writes succeed (SH-25)."""
        while not (self.request_complete or self.disconnected):
            try:
                frame = await asyncio.wait_for(self._context.read(), DRAIN_IDLE_S)
            except (TimeoutError, *_STREAM_GONE):
                return
            if frame is EOF:
                return
            assert isinstance(frame, hooks_pb2.HTTPRequestFrame)
            self.request_complete = frame.WhichOneof("frame") == "end"

    async def run(self, app: ASGIApp, scope: ASGIScope) -> None:
        self._app_task = asyncio.ensure_future(self._call_app(app, scope))
        try:
            await asyncio.shield(self._app_task)
            if self.response_ended:
                await self._drain_request()
        except asyncio.CancelledError:
            self._interrupt()
            done, _ = await asyncio.wait({self._app_task}, timeout=DISCONNECT_GRACE_S)
            if not done:
                self._app_task.cancel()
                await asyncio.wait({self._app_task}, timeout=DISCONNECT_GRACE_S)
            raise


async def serve_http(app: ASGIApp, context: Context, state: dict[str, Any]) -> None:
    """Handle one ServeHTTP stream with ``app``."""
    first = await context.read()
    if first is EOF or not (
        isinstance(first, hooks_pb2.HTTPRequestFrame) and first.WhichOneof("frame") == "init"
    ):
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            "the first ServeHTTP request frame must be HTTPRequestInit",
        )
        return
    exchange = Exchange(context)
    await exchange.run(app, build_scope(first.init, state))
