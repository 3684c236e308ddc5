"""Host faults of the HTTP front (SE, SH).

Bodies and their limits, hop-by-hop fields, statuses, and a plugin that is not there.
"""

from __future__ import annotations

from typing import Any

from host_faults.common import exchange_streams, fault, forever, patch

from pluginconf.host.client import PluginClient
from pluginconf.host.environment import Environment
from pluginconf.host.http import front as http_front
from pluginconf.host.http.front import HTTPFront, _Exchange
from pluginconf.units import MIB

# -- the HTTP front -------------------------------------------------------------------------


@fault("content-length-dropped", "sends content_length -1 (unknown) for every request (SH-7)")
def _() -> None:
    patch(http_front, "_content_length", lambda headers: None)
    patch(http_front, "_unknown_length", lambda headers: -1)


@fault("default-body-limit", "refuses bodies over 100 MiB though no limit is configured (SE-7)")
def _() -> None:
    init, plain = HTTPFront.__init__, http_front._plain

    def limited(self: HTTPFront, env: Environment, max_body_bytes: int | None = None) -> None:
        init(self, env, 100 * MIB if max_body_bytes is None else max_body_bytes)

    async def closing(send: Any, status: int, text: str, extra: Any = None) -> None:
        # As servers do after refusing a body: the connection closes, the client stops sending.
        await plain(send, status, text, [*(extra or []), (b"connection", b"close")])

    patch(HTTPFront, "__init__", limited)
    patch(http_front, "_plain", closing)


@fault("hop-by-hop-forwarded", "forwards the client's hop-by-hop fields (SE-8)")
def _() -> None:
    patch(http_front, "_hop_by_hop", lambda headers: set())


@fault("response-hop-by-hop-forwarded", "passes the plugin's hop-by-hop fields on (SE-8)")
def _() -> None:
    def every_field(headers: Any) -> list[tuple[bytes, bytes]]:
        return [(h.name.lower().encode("latin-1"), v.encode()) for h in headers for v in h.values]

    patch(http_front, "response_headers", every_field)


@fault("response-headers-joined", "joins a response header's values into one line (SE-9)")
def _() -> None:
    def joined(headers: Any) -> list[tuple[bytes, bytes]]:
        return [(h.name.lower().encode(), ", ".join(h.values).encode()) for h in headers]

    patch(http_front, "response_headers", joined)


@fault("status-always-200", "answers 200 whatever status the plugin sent (SE-1)")
def _() -> None:
    def wrap(exchange: _Exchange) -> None:
        send = exchange.send

        async def ok(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "status": 200}
            await send(message)

        exchange.send = ok

    exchange_streams(wrap)


@fault("last-body-frame-lost", "holds each body frame until the next, dropping the last (SE-10)")
def _() -> None:
    def wrap(exchange: _Exchange) -> None:
        send, held = exchange.send, list[Any]()

        async def lookahead(message: Any) -> None:
            if message["type"] == "http.response.body":
                if held and message.get("more_body", False):
                    await send(held.pop())
                held.clear()  # at the end, the held piece is forgotten
                if message.get("more_body", False):
                    held.append(message)
                    return
            await send(message)

        exchange.send = lookahead

    exchange_streams(wrap)


@fault(
    "buffers-bodies",
    "reads whole request bodies, and whole responses, before passing them on (SH-15, SH-17, SH-19)",
)
def _() -> None:
    def wrap(exchange: _Exchange) -> None:
        receive, send = exchange.receive, exchange.send
        held: list[Any] = []

        async def whole_request() -> Any:
            message, pieces = await receive(), []
            while message["type"] == "http.request" and message.get("more_body", False):
                pieces.append(message.get("body", b""))
                message = await receive()
            if message["type"] == "http.request":
                pieces.append(message.get("body", b""))
                message = {**message, "body": b"".join(pieces)}
            return message

        async def whole_response(message: Any) -> None:
            if message["type"] == "http.response.start" or message.get("more_body", False):
                held.append(message)
                return
            start, *pieces = [*held, message]
            held.clear()
            await send(start)
            await send({"type": "http.response.body", "body": b"".join(p["body"] for p in pieces)})

        exchange.receive, exchange.send = whole_request, whole_response

    exchange_streams(wrap)


@fault("client-disconnect-ignored", "stops listening to the client once its body is in (SH-20)")
def _() -> None:
    def wrap(exchange: _Exchange) -> None:
        receive = exchange.receive

        async def deaf() -> Any:
            message = await receive()
            if message["type"] == "http.disconnect":
                await forever()
            return message

        exchange.receive = deaf

    exchange_streams(wrap)


@fault("502-becomes-500", "answers 500 when the plugin fails before its response (SE-5)")
def _() -> None:
    plain = http_front._plain

    async def internal(send: Any, status: int, text: str, extra: Any = None) -> None:
        await plain(send, 500 if status == 502 else status, text, extra)

    patch(http_front, "_plain", internal)


@fault(
    "truncated-as-complete", "relays responses chunked and ends a cut one normally (SE-6, SE-11)"
)
def _() -> None:
    response_headers = http_front.response_headers
    fail = _Exchange._fail

    def chunked(headers: Any) -> list[tuple[bytes, bytes]]:
        return [(n, v) for n, v in response_headers(headers) if n != b"content-length"]

    async def complete(self: _Exchange, exc: BaseException) -> None:
        if self.started and not self.client_gone:
            self.call.cancel()
            await self.send({"type": "http.response.body", "body": b""})
            return
        await fail(self, exc)

    patch(http_front, "response_headers", chunked)
    patch(_Exchange, "_fail", complete)


@fault("inactive-404", "answers 404 for a plugin that is not running (SE-3)")
def _() -> None:
    plain = http_front._plain

    async def not_found(send: Any, status: int, text: str, extra: Any = None) -> None:
        await (plain(send, 404, text) if status == 503 else plain(send, status, text, extra))

    patch(http_front, "_plain", not_found)


@fault("serve-http-unlisted", "routes HTTP to every plugin, listed ServeHTTP or not (SE-2)")
def _() -> None:
    load = PluginClient.load_implemented

    async def assumed(self: PluginClient) -> frozenset[str]:
        self.implemented = await load(self) | {"ServeHTTP"}
        return self.implemented

    patch(PluginClient, "load_implemented", assumed)
