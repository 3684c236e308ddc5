"""ServeHTTP through the host's HTTP front: the request as received, bodies exact and
streamed both ways at once, and what the client sees when something fails.

Most cases use the case's httpx client (``t.http()``). httpx sends a whole request body before
it reads the response, so a body echoed back while it is still being sent would stall once
both directions' buffers fill; the cases that stream both ways at once use ``_duplex``, a
minimal HTTP/1.1 client (h11 over an asyncio connection) that sends and receives together.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import h11
import httpx
import psutil

from pluginconf.protocol.text import wire_text
from pluginconf.reference.generator import iter_bytes
from pluginconf.runner import Level, Profile, case, case_each, expect, fail, skip
from pluginconf.runner.host_target import FakePlugin, HostTarget, describe_status
from pluginconf.runner.observer import Observed
from pluginconf.v1 import hooks_pb2

from ._helpers import NON_BMP, received

KIB = 1024
MIB = 1024 * KIB
# Around the reference host's 64 KiB frames and gRPC's 4 MiB message limit, then large.
SIZES = [0, 1, 65535, 65536, 65537, MIB + 1, 4 * MIB + 1, 16 * MIB, 256 * MIB]
STATUSES = [200, 201, 204, 301, 404, 418, 500, 503]
MEMORY_BOUND = 64 * MIB
HOP_BY_HOP = ("connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding")


# -- a full-duplex HTTP/1.1 client ----------------------------------------------------------


@dataclass
class Duplex:
    """One exchange as the client saw it: the response, and what it sent meanwhile."""

    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    received: int = 0
    received_sha256: str = ""
    complete: bool = False  # the response ended as HTTP framing says it should
    problem: str = ""  # how it ended otherwise
    sent: int = 0
    sent_sha256: str = ""
    send_problem: str = ""

    def header(self, name: str) -> list[str]:
        wanted = name.lower().encode()
        return [v.decode("latin-1") for n, v in self.headers if n.lower() == wanted]

    def describe(self) -> str:
        end = "complete" if self.complete else f"incomplete: {self.problem or 'no end'}"
        text = (
            f"status {self.status}, {self.received} body bytes received ({end}); "
            f"{self.sent} bytes sent"
        )
        return text + (f" (sending failed: {self.send_problem})" if self.send_problem else "")


async def _duplex(
    base_url: str,
    target: str,
    body: AsyncIterator[bytes],
    length: int,
    *,
    method: str = "POST",
    on_data: Callable[[int], None] | None = None,
    timeout_s: float = 30.0,
) -> Duplex:
    """Send ``length`` bytes from ``body`` while reading the response as it comes, hashing
    both; ``on_data`` is told the response body bytes received so far after each piece."""
    url = httpx.URL(base_url)
    host, port = url.host, url.port or 80
    result = Duplex()
    sent_digest, received_digest = hashlib.sha256(), hashlib.sha256()
    reader, writer = await asyncio.open_connection(host, port)
    connection = h11.Connection(h11.CLIENT)
    request = h11.Request(
        method=method,
        target=target,
        headers=[
            ("host", f"{host}:{port}"),
            ("content-type", "application/octet-stream"),
            ("content-length", str(length)),
        ],
    )

    def write(event: h11.Event) -> None:
        data = connection.send(event)
        if data:
            writer.write(data)

    async def send() -> None:
        try:
            write(request)
            async for piece in body:
                sent_digest.update(piece)
                result.sent += len(piece)
                write(h11.Data(data=piece))
                await writer.drain()
            write(h11.EndOfMessage())
            await writer.drain()
        except (OSError, h11.LocalProtocolError) as exc:
            result.send_problem = f"{type(exc).__name__}: {exc}"

    async def receive() -> None:
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await reader.read(MIB))
            elif isinstance(event, h11.Response):
                result.status = event.status_code
                result.headers = list(event.headers.raw_items())
            elif isinstance(event, h11.Data):
                received_digest.update(event.data)
                result.received += len(event.data)
                if on_data is not None:
                    on_data(result.received)
            elif isinstance(event, h11.EndOfMessage):
                result.complete = True
                return
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                result.problem = "the connection closed without a complete response"
                return

    sender = asyncio.ensure_future(send())
    try:
        async with asyncio.timeout(timeout_s):
            await receive()
            # The response is over; the request should be too (or be given up on).
            await asyncio.wait({sender}, timeout=10.0)
    except TimeoutError:
        result.problem = f"no complete response within {timeout_s:g}s"
    except (OSError, h11.RemoteProtocolError) as exc:
        result.problem = f"{type(exc).__name__}: {exc}"
    finally:
        sender.cancel()
        await asyncio.wait({sender})
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    result.sent_sha256 = sent_digest.hexdigest()
    result.received_sha256 = received_digest.hexdigest()
    return result


async def _generated(n: int, seed: int) -> AsyncIterator[bytes]:
    """The generator's first ``n`` bytes for ``seed``, in 64 KiB pieces, never held whole."""
    for piece in iter_bytes(n, seed):
        yield piece


# -- what the fake saw --------------------------------------------------------------------


def _target(plugin: FakePlugin, path: str) -> str:
    """The request target (path and query) of ``plugin.url(path)``, as sent on the wire."""
    return httpx.URL(plugin.url(path)).raw_path.decode("ascii")


def _init(call: Observed) -> hooks_pb2.HTTPRequestInit:
    frame = received(call, hooks_pb2.HTTPRequestFrame)
    init: hooks_pb2.HTTPRequestInit = frame.init
    return init


async def _serve_http_call(plugin: FakePlugin, why: str) -> Observed:
    return await plugin.wait_event(
        "call", timeout_s=5.0, where=lambda e: e.get("hook") == "ServeHTTP", why=why
    )


def _headers(init: hooks_pb2.HTTPRequestInit) -> dict[str, list[str]]:
    """Header values by lower-case name, a name in several HTTPHeaders with all their values."""
    grouped: dict[str, list[str]] = {}
    for header in init.headers:
        grouped.setdefault(header.name.lower(), []).extend(header.values)
    return grouped


def _response_evidence(response: httpx.Response, body: bytes | None = None) -> str:
    lines = [f"HTTP {response.status_code}"]
    lines += [f"  {n.decode('latin-1')}: {v.decode('latin-1')}" for n, v in response.headers.raw]
    if body is not None:
        lines.append(f"  body: {body[:200]!r}{'...' if len(body) > 200 else ''}")
    return "\n".join(lines)


def _retry_after_s(value: str) -> float | None:
    """Retry-After as seconds from now: delay-seconds or an HTTP-date; None if neither."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


# -- bodies ---------------------------------------------------------------------------------


@case_each(
    "host/serve-http/body-exact/{}",
    SIZES,
    requirements=["SH-9", "SE-10"],
    profile=Profile.HOOKS,
    timeout_s=300,
    heavy=lambda n: n > 16 * MIB,
)
async def body_exact(t: HostTarget, size: int) -> None:
    """
    Purpose: A body of {value} bytes passes through the host both ways unchanged.
    Procedure: POST {value} generated bytes (with Content-Length) to the fake's /echo through
      the HTTP front, sending and reading at the same time, hashing both sides as they pass;
      skipped when {value} is over --max-body.
    Asserts: Status 200 with no Content-Encoding; the response body has the length and
      SHA-256 of the body sent; the fake's request init says content_length {value}, and the
      request body it received, up to its end frame, has the same length and SHA-256.
    """
    if size > t.max_body:
        skip(f"{size} bytes is more than --max-body {t.max_body}")
    plugin = await t.load()
    t.step(f"echoing {size} bytes through the host")
    result = await _duplex(
        t.http_base_url, _target(plugin, "/echo"), _generated(size, 11), size, timeout_s=240
    )
    problems = []
    if result.status != 200 or not result.complete:
        problems.append(f"the echo did not complete with 200: {result.describe()}")
    if result.header("content-encoding"):
        problems.append(
            f"the host added Content-Encoding {result.header('content-encoding')} (SE-10)"
        )
    if result.received != size or result.received_sha256 != result.sent_sha256:
        problems.append(
            f"the response body ({result.received} bytes, SHA-256 {result.received_sha256}) "
            f"differs from the {size} bytes sent (SHA-256 {result.sent_sha256}) (SH-9, SE-10)"
        )
    call = await _serve_http_call(plugin, "the exchange should have reached the plugin")
    init = _init(call)
    if init.content_length != size:
        problems.append(
            f"the request init says content_length {init.content_length}; the request's "
            f"Content-Length is {size} (SH-9)"
        )
    end = await plugin.wait_event(
        "http_request_end", timeout_s=5.0, why="the request stream should have ended"
    )
    if (
        end.get("body_bytes") != size
        or end.get("body_sha256") != result.sent_sha256
        or not end.get("complete")
    ):
        problems.append(
            f"the plugin received a request body of {end.get('body_bytes')} bytes (SHA-256 "
            f"{end.get('body_sha256')}, end frame seen: {end.get('complete')}); "
            f"{size} bytes were sent (SHA-256 {result.sent_sha256}) (SH-9)"
        )
    expect(not problems, "\n".join(problems) + f"\n{plugin.evidence()}")


# -- the request as received ----------------------------------------------------------------


@case(
    "host/serve-http/request-fields",
    requirements=["SH-2", "SH-3", "SH-4", "SH-5", "SH-7", "SH-8"],
    profile=Profile.HOOKS,
)
async def request_fields(t: HostTarget) -> None:
    """
    Purpose: The plugin sees the request as the client sent it: method, raw path and query,
      every header value in order, length and peer.
    Procedure: Send PATCH /plugins/ID/echo/a%2Fb//c/../d?x=1&y=%20&x=2 (the target sent as
      is, not normalised) with a 14-byte body, x-multi as two field lines (a, then b), a
      value holding a comma, an empty value, a mixed-case name, a UTF-8 value outside
      the BMP and a value that is not UTF-8 (the fake answers 404: no such route).
    Asserts: The fake's request init has method PATCH, path /echo/a%2Fb//c/../d, raw_query
      x=1&y=%20&x=2, one header per name with every value sent in order (x-multi [a, b], the
      comma value whole, the non-UTF-8 bytes read as ISO-8859-1), content_length 14, and
      remote_addr the client socket's host:port.
    """
    plugin = await t.load()
    path, query = "/echo/a%2Fb//c/../d", "x=1&y=%20&x=2"
    target = f"{_target(plugin, '')}{path}?{query}"
    body = b"request-fields"
    client = t.http()
    request = client.build_request(
        "PATCH",
        plugin.url(path),
        headers=[
            (b"x-multi", b"a"),
            (b"x-multi", b"b"),
            (b"x-comma", b"one, two"),
            (b"x-empty", b""),
            (b"X-Mixed-Case", b"Value"),
            (b"x-utf8", f"é{NON_BMP}".encode()),
            (b"x-latin1", b"caf\xe9"),  # not UTF-8: the host sends it as ISO-8859-1 text
        ],
        content=body,
        extensions={"target": target.encode("ascii")},
    )
    t.step("sending PATCH with a raw target, repeated headers and a body")
    response = await client.send(request, stream=True)
    try:
        stream = response.extensions.get("network_stream")
        address = stream.get_extra_info("client_addr") if stream is not None else None
        await response.aread()
    finally:
        await response.aclose()
    call = await _serve_http_call(plugin, "the request should have reached the plugin")
    init = _init(call)
    problems = []
    if init.method != "PATCH":
        problems.append(f"method {init.method!r}, sent 'PATCH' (SH-2)")
    if init.path != path:
        problems.append(
            f"path {init.path!r}, sent {path!r} under the mount (SH-3: as received, still "
            "percent-encoded, not normalised, mount prefix removed)"
        )
    if init.raw_query != query:
        problems.append(f"raw_query {init.raw_query!r}, sent {query!r} (SH-4)")
    sent: dict[str, list[str]] = {}
    for name, value in request.headers.raw:
        key = name.decode("latin-1").lower()
        if key not in HOP_BY_HOP:
            sent.setdefault(key, []).append(wire_text(value))
    got = _headers(init)
    names = [h.name.lower() for h in init.headers]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"headers {repeated} come as several HTTPHeaders, not one each (SH-5)")
    for key, values in sent.items():
        if got.get(key) != values:
            problems.append(f"header {key}: sent {values}, the plugin got {got.get(key)} (SH-5)")
    if init.content_length != len(body):
        problems.append(f"content_length {init.content_length}, sent {len(body)} (SH-7)")
    if address is None:
        fail("the suite could not read its own socket's address (httpx network_stream)")
    host, port = address[0], address[1]
    wanted = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if init.remote_addr != wanted:
        problems.append(
            f"remote_addr {init.remote_addr!r}; the client's socket is {wanted!r} (SH-8)"
        )
    expect(
        not problems,
        "the request init differs from the request sent:\n  "
        + "\n  ".join(problems)
        + f"\n{plugin.evidence()}",
    )


@case("host/serve-http/hop-by-hop", requirements=["SE-8"], profile=Profile.HOOKS)
async def hop_by_hop(t: HostTarget) -> None:
    """
    Purpose: Fields about one connection stay with it: the client's never reach the plugin,
      the plugin's never reach the client.
    Procedure: POST a chunked body (Transfer-Encoding: chunked) to /sink with Connection:
      x-drop, keep-alive; x-drop: 1; TE: trailers; Trailer: x-t; Keep-Alive: timeout=5;
      Proxy-Connection: keep-alive; and x-keep: kept. Then GET /headers?hop=1, whose response
      has Connection: x-hop-secret, x-hop-secret: 1, Keep-Alive: timeout=99 and
      Proxy-Connection: keep-alive.
    Asserts: None of Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
      Transfer-Encoding and x-drop (named in Connection) is in the fake's request init;
      x-keep is, with its value. The client gets neither x-hop-secret, nor that Keep-Alive,
      nor Proxy-Connection, and does get x-multi.
    """
    plugin = await t.load()

    async def chunked() -> AsyncIterator[bytes]:
        yield b"hop-by-hop"

    t.step("posting a chunked body with hop-by-hop fields to /sink")
    response = await t.http().post(
        plugin.url("/sink"),
        content=chunked(),
        headers=[
            ("connection", "x-drop, keep-alive"),
            ("x-drop", "1"),
            ("te", "trailers"),
            ("trailer", "x-t"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("x-keep", "kept"),
        ],
    )
    call = await _serve_http_call(plugin, "the request should have reached the plugin")
    got = _headers(_init(call))
    leaked = [n for n in (*HOP_BY_HOP, "x-drop") if n in got]
    expect(
        not leaked and got.get("x-keep") == ["kept"],
        f"hop-by-hop fields reached the plugin: {leaked} (SE-8); x-keep: {got.get('x-keep')} "
        f"(expected ['kept'])\nheaders the plugin got: {got}\n{_response_evidence(response)}"
        f"\n{plugin.evidence()}",
    )
    t.step("GET /headers?hop=1, a response with hop-by-hop fields")
    reply = await t.http().get(plugin.url("/headers?hop=1"))
    passed_on = [
        f"{name}: {value}"
        for name, value in reply.headers.multi_items()
        if name == "x-hop-secret"
        or name == "proxy-connection"
        or (name == "keep-alive" and "99" in value)
    ]
    expect(
        reply.status_code == 200 and not passed_on and reply.headers.get("x-multi"),
        f"the host passed the plugin's hop-by-hop fields on to the client: {passed_on} (SE-8)"
        f"\n{_response_evidence(reply)}",
    )


# -- the response as sent -------------------------------------------------------------------


@case("host/serve-http/response-headers", requirements=["SE-9"], profile=Profile.HOOKS)
async def response_headers(t: HostTarget) -> None:
    """
    Purpose: Each value of a response header reaches the client as a field line of its own.
    Procedure: GET the fake's /headers, whose response has x-multi a, b, c and set-cookie
      a=1, b=2.
    Asserts: The client receives three x-multi lines a, b, c and two set-cookie lines a=1,
      b=2, each value on its own line, in that order.
    """
    plugin = await t.load()
    t.step("GET /headers")
    response = await t.http().get(plugin.url("/headers"))
    lines = [(n.lower(), v) for n, v in response.headers.raw]
    multi = [v.decode("latin-1") for n, v in lines if n == b"x-multi"]
    cookies = [v.decode("latin-1") for n, v in lines if n == b"set-cookie"]
    expect(
        response.status_code == 200 and multi == ["a", "b", "c"] and cookies == ["a=1", "b=2"],
        f"expected x-multi lines ['a', 'b', 'c'] and set-cookie lines ['a=1', 'b=2'], got "
        f"{multi} and {cookies} (SE-9: one field line per value, never joined)\n"
        f"{_response_evidence(response, response.content)}\n{plugin.evidence()}",
    )


@case_each(
    "host/serve-http/status-codes/{}",
    STATUSES,
    requirements=["SE-1", "SE-10"],
    profile=Profile.HOOKS,
)
async def status_codes(t: HostTarget, code: int) -> None:
    """
    Purpose: The plugin's status reaches the client as the plugin sent it.
    Procedure: GET the fake's /status/{value}.
    Asserts: The client gets status {value} and the body "status {value}\\n" (none for 204).
    """
    plugin = await t.load()
    t.step(f"GET /status/{code}")
    response = await t.http().get(plugin.url(f"/status/{code}"))
    body = b"" if code == 204 else f"status {code}\n".encode()
    expect(
        response.status_code == code and response.content == body,
        f"the plugin answered {code} with body {body!r}; the client got "
        f"{response.status_code} (SE-1, SE-10)\n{_response_evidence(response, response.content)}"
        f"\n{plugin.evidence()}",
    )


# -- streaming ------------------------------------------------------------------------------


DRIP_PIECES, DRIP_PAUSE_MS = 4, 400


@case("host/serve-http/response-streams", requirements=["SH-15"], profile=Profile.HOOKS)
async def response_streams(t: HostTarget) -> None:
    """
    Purpose: A response the plugin sends piece by piece, flushing each, reaches the client
      piece by piece.
    Procedure: GET the fake's /drip?n=4&ms=400: four lines "piece i", each sent in a body
      frame followed by a flush frame, 400 ms apart; note when each line reaches the client.
    Asserts: All four lines arrive with status 200, and each of the first three reaches the
      client before the fake sends the next one.
    """
    plugin = await t.load()
    arrivals: dict[int, float] = {}
    buffer = b""
    path = f"/drip?n={DRIP_PIECES}&ms={DRIP_PAUSE_MS}"
    t.step(f"reading {path}")
    async with t.http().stream("GET", plugin.url(path)) as response:
        async for chunk in response.aiter_raw():
            now = time.monotonic()
            buffer += chunk
            for line in buffer.split(b"\n")[:-1]:
                if line.startswith(b"piece ") and line[6:].isdigit():
                    arrivals.setdefault(int(line[6:]), now)
    sent = {int(e.get("index", 0)): e.monotonic for e in plugin.events("http_piece_sent")}
    start = min([*sent.values(), *arrivals.values()], default=0.0)

    def at(when: float | None) -> str:
        return "never" if when is None else f"+{when - start:.3f}s"

    timeline = "\n".join(
        f"  piece {i}: sent {at(sent.get(i))}, received {at(arrivals.get(i))}"
        for i in range(1, DRIP_PIECES + 1)
    )
    pieces = list(range(1, DRIP_PIECES + 1))
    expect(
        response.status_code == 200 and sorted(arrivals) == pieces and sorted(sent) == pieces,
        f"expected pieces {pieces} with status 200; got {response.status_code}, the plugin "
        f"sent {sorted(sent)} and the client received {sorted(arrivals)}\n{timeline}\n"
        f"{plugin.evidence()}",
    )
    late = [i for i in pieces[:-1] if arrivals[i] >= sent[i + 1]]
    expect(
        not late,
        f"pieces {late} reached the client only after the plugin had sent the next piece, "
        f"{DRIP_PAUSE_MS} ms later; each was followed by a flush frame, on which the host must "
        f"have written everything so far to the client (SH-15)\n{timeline}",
    )


async def _gated(
    first: bytes, rest: int, seed: int, gate: asyncio.Event, wait_s: float, waited: list[float]
) -> AsyncIterator[bytes]:
    """``first``, then (once ``gate`` is set, or after ``wait_s``) ``rest`` more bytes."""
    yield first
    start = time.monotonic()
    try:
        await asyncio.wait_for(gate.wait(), wait_s)
    except TimeoutError:
        waited.append(-1.0)
    else:
        waited.append(time.monotonic() - start)
    for piece in iter_bytes(rest, seed):
        yield piece


@case("host/serve-http/full-duplex", requirements=["SH-17"], profile=Profile.HOOKS)
async def full_duplex(t: HostTarget) -> None:
    """
    Purpose: The response flows to the client while the request body is still coming in.
    Procedure: POST 2 MiB to the fake's /echo (which echoes each piece as it arrives): send
      the first 1 MiB, wait up to 5 s for echoed bytes to reach the client, then send the
      rest.
    Asserts: Echoed bytes arrive before the second MiB is sent, and the echo is exact.
    """
    plugin = await t.load()
    first = b"".join(iter_bytes(MIB, 21))
    gate, waited = asyncio.Event(), list[float]()
    t.step("echoing 2 MiB, the second held back until echoed bytes arrive")
    result = await _duplex(
        t.http_base_url,
        _target(plugin, "/echo"),
        _gated(first, MIB, 22, gate, 5.0, waited),
        2 * MIB,
        on_data=lambda n: gate.set(),
    )
    expect(
        waited and waited[0] >= 0,
        "no echoed byte reached the client within 5 s of the first MiB of the request body, "
        "while the rest was held back; the host must forward the plugin's response while it "
        f"is still sending the request body (SH-17)\n{result.describe()}\n{plugin.evidence()}",
    )
    expect(
        result.complete and result.status == 200 and result.received_sha256 == result.sent_sha256,
        f"the echo of 2 MiB is not exact: {result.describe()}\n{plugin.evidence()}",
    )


@case(
    "host/serve-http/response-unflushed",
    requirements=["SH-16"],
    profile=Profile.HOOKS,
    level=Level.SHOULD,
)
async def response_unflushed(t: HostTarget) -> None:
    """
    Purpose: A small response piece goes to the client at once, without a flush or more data.
    Procedure: POST 2000 bytes to the fake's /echo: send 1000, wait up to 2 s for the 1000
      echoed bytes (body frames without a flush) to reach the client, then send the rest.
    Asserts: All 1000 echoed bytes arrive before the rest of the request is sent.
    """
    plugin = await t.load()
    gate, waited = asyncio.Event(), list[float]()

    def arrived(n: int) -> None:
        if n >= 1000:
            gate.set()

    t.step("echoing 1000 bytes, the rest held back until they come back")
    result = await _duplex(
        t.http_base_url,
        _target(plugin, "/echo"),
        _gated(b"x" * 1000, 1000, 23, gate, 2.0, waited),
        2000,
        on_data=arrived,
    )
    expect(
        waited and waited[0] >= 0,
        "the plugin echoed 1000 bytes in body frames (no flush), but they had not all reached "
        f"the client 2 s later (SH-16: forward each body frame when it arrives)\n"
        f"{result.describe()}\n{plugin.evidence()}",
    )


@case("host/serve-http/request-streams", requirements=["SH-17", "SH-19"], profile=Profile.HOOKS)
async def request_streams(t: HostTarget) -> None:
    """
    Purpose: The request body reaches the plugin as the client sends it, not once it is all in.
    Procedure: POST 1 MiB (with Content-Length) to the fake's /sink: send the first 64 KiB,
      wait up to 10 s for the fake to report having received them, then send the rest.
    Asserts: The fake receives the first 64 KiB before the rest is sent; its answer (length
      and SHA-256 of what it received) matches the 1 MiB sent.
    """
    plugin = await t.load()
    size, first_size = MIB, 64 * KIB
    first = b"".join(iter_bytes(first_size, 31))
    forwarded: list[Observed | None] = []

    async def body() -> AsyncIterator[bytes]:
        yield first
        found = await t.observer.wait_for(
            lambda e: (
                e.label == plugin.plugin_id
                and e.event == "http_body_progress"
                and int(e.get("bytes", 0)) >= first_size
            ),
            10.0,
        )
        forwarded.append(found)
        for piece in iter_bytes(size - first_size, 32):
            yield piece

    t.step("posting 1 MiB to /sink, the rest held back until the first 64 KiB arrive")
    response = await t.http().post(
        plugin.url("/sink"), content=body(), headers={"content-length": str(size)}
    )
    expect(
        forwarded and forwarded[0] is not None,
        f"the plugin had not received the first {first_size} bytes of the request body 10 s "
        "after the client sent them (the rest held back): the host must stream the request "
        f"body, never hold it whole (SH-17, SH-19)\n{plugin.evidence()}",
    )
    digest = hashlib.sha256(first)
    for piece in iter_bytes(size - first_size, 32):
        digest.update(piece)
    wanted = f"{size} {digest.hexdigest()}"
    got = response.text.strip()
    expect(
        response.status_code == 200 and got == wanted,
        f"the plugin answered {got!r}, expected {wanted!r} (length and SHA-256 of the body "
        f"sent)\n{_response_evidence(response, response.content)}\n{plugin.evidence()}",
    )


@case(
    "host/serve-http/bounded-memory",
    requirements=["SH-19"],
    profile=Profile.HOOKS,
    timeout_s=300,
    heavy=True,
)
async def bounded_memory(t: HostTarget) -> None:
    """
    Purpose: Bodies stream through the host; it never holds a whole one.
    Procedure: Skipped when the adapter reports no host pid. POST min(256 MiB, --max-body)
      bytes to the fake's /echo, reading the echo while sending, and sample the host
      process's resident memory every 50 ms from just before until the end.
    Asserts: The echo is exact, and the host's resident memory never rose more than 64 MiB
      above where it was before the exchange.
    """
    if not t.host_pid:
        skip("the adapter reports no host pid (HostInfo.host_pid is 0)")
    n = min(256 * MIB, t.max_body)
    plugin = await t.load()
    host = psutil.Process(t.host_pid)
    t.step("warming up with a 1 MiB echo")
    await _duplex(t.http_base_url, _target(plugin, "/echo"), _generated(MIB, 40), MIB)
    baseline = peak = host.memory_info().rss

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, host.memory_info().rss)
            await asyncio.sleep(0.05)

    sampler = asyncio.ensure_future(sample())
    t.step(f"echoing {n} bytes while sampling the host's memory")
    try:
        result = await _duplex(
            t.http_base_url, _target(plugin, "/echo"), _generated(n, 41), n, timeout_s=240
        )
    finally:
        sampler.cancel()
        await asyncio.wait({sampler})
    peak = max(peak, host.memory_info().rss)
    expect(
        result.complete and result.received == n and result.received_sha256 == result.sent_sha256,
        f"the echo of {n} bytes is not exact: {result.describe()}\n{plugin.evidence()}",
    )
    growth = peak - baseline
    expect(
        growth <= MEMORY_BOUND,
        f"echoing {n} bytes raised the host's resident memory by {growth / MIB:.1f} MiB (from "
        f"{baseline / MIB:.1f} to {peak / MIB:.1f} MiB); the bound is "
        f"{MEMORY_BOUND // MIB} MiB (SH-19: never read further ahead than it can pass on)",
    )


@case("host/serve-http/client-disconnect", requirements=["SH-20"], profile=Profile.HOOKS)
async def client_disconnect(t: HostTarget) -> None:
    """
    Purpose: When the client goes away, the plugin's exchange is cancelled promptly.
    Procedure: GET the fake's /hold, which sends one line and then waits for ever; read the
      line, then close the connection, noting the time.
    Asserts: Within 1.5 s of the close (1 s, plus slack), the fake sees its ServeHTTP call
      end or its handler told of the disconnect.
    """
    plugin = await t.load()
    t.step("reading the first line of /hold")
    async with t.http().stream("GET", plugin.url("/hold")) as response:
        expect(
            response.status_code == 200,
            f"GET /hold answered {response.status_code}\n{plugin.evidence()}",
        )
        first = b""
        async for chunk in response.aiter_raw():
            first += chunk
            if b"\n" in first:
                break
    # Leaving the block closed the response before its end: httpx drops the connection.
    closed = time.monotonic()
    t.step("waiting for the plugin to see the exchange end")
    ended = await t.observer.wait_for(
        lambda e: (
            e.label == plugin.plugin_id
            and (
                e.event == "http_disconnect"
                or (e.event == "call_end" and e.get("hook") == "ServeHTTP")
            )
        ),
        3.0,
    )
    if ended is None:
        fail(
            "3 s after the client closed its connection, the plugin's ServeHTTP call was still "
            f"going on (SH-20: cancel it within 1 s)\n{plugin.evidence()}"
        )
    delay = ended.monotonic - closed
    expect(
        delay <= 1.5,
        f"the plugin saw the exchange end {delay:.3f}s after the client closed its connection "
        f"(SH-20: within 1 s)\n{plugin.evidence()}",
    )


# -- failures ---------------------------------------------------------------------------------


@case("host/serve-http/crash-before-response", requirements=["SE-5"], profile=Profile.HOOKS)
async def crash_before_response(t: HostTarget) -> None:
    """
    Purpose: A plugin that dies before answering gives the client a gateway error.
    Procedure: Load a fake that exits during every ServeHTTP call, before sending anything;
      GET /echo.
    Asserts: The client gets status 502.
    """
    plugin = await t.load({"crash": {"on": "ServeHTTP"}})
    t.step("GET /echo from a plugin that exits during ServeHTTP")
    response = await t.http().get(plugin.url("/echo"))
    expect(
        response.status_code == 502,
        f"the plugin exited before its response began; the client got "
        f"{response.status_code}, expected 502 (SE-5)\n"
        f"{_response_evidence(response, response.content)}\n{plugin.evidence()}",
    )


@case(
    "host/serve-http/crash-after-start",
    requirements=["SE-6", "SE-11"],
    profile=Profile.HOOKS,
)
async def crash_after_start(t: HostTarget) -> None:
    """
    Purpose: A response cut short by the plugin's death never looks complete to the client.
    Procedure: Load a fake that exits after sending 100000 body bytes of any response; GET
      /bytes?n=1000000 (Content-Length 1000000) and read it to the end.
    Asserts: The status is 200 and reading the body fails (the connection is closed before
      the announced length or the final chunk); what did arrive is at most 100000 bytes,
      the start of the generated stream.
    """
    plugin = await t.load({"crash": {"during_http_after_bytes": 100000}})
    body = bytearray()
    failure = ""
    t.step("reading /bytes?n=1000000 from a plugin that exits after 100000 bytes")
    async with t.http().stream("GET", plugin.url("/bytes?n=1000000")) as response:
        try:
            async for chunk in response.aiter_raw():
                body += chunk
        except httpx.TransportError as exc:
            failure = f"{type(exc).__name__}: {exc}"
    evidence = (
        f"{_response_evidence(response)}\n  {len(body)} body bytes read"
        f"{', then ' + failure if failure else ', then a normal end'}\n{plugin.evidence()}"
    )
    expect(
        response.status_code == 200,
        f"the plugin's response had started (200) when it exited; the client must get that "
        f"response, aborted, not another status (SE-6)\n{evidence}",
    )
    expect(
        failure,
        "the plugin exited after 100000 of the 1000000 bytes it announced, yet the client got "
        "a response that ended normally (SE-6: abort it; SE-11: never complete a body short "
        f"of its Content-Length)\n{evidence}",
    )
    expected = b"".join(iter_bytes(min(len(body), 100000)))
    expect(
        len(body) <= 100000 and bytes(body[:100000]) == expected,
        f"the client read {len(body)} bytes, but the plugin sent only the first 100000 bytes "
        f"of the generated stream{' (they differ)' if len(body) <= 100000 else ''} (SE-10, "
        f"SE-11)\n{evidence}",
    )


@case("host/serve-http/inactive-503", requirements=["SE-3"], profile=Profile.HOOKS)
async def inactive_503(t: HostTarget) -> None:
    """
    Purpose: A known plugin that is not running answers "try again later".
    Procedure: Load one fake without enabling it, and another that is enabled, then disabled;
      GET /echo on each.
    Asserts: Both answers are 503 with a Retry-After of at least 1 second; neither fake
      received a ServeHTTP call.
    """
    never = await t.load(name="never", enable=False)
    stopped = await t.load(name="stopped")
    status = await stopped.disable()
    problems = []
    for plugin, what in ((never, "never enabled"), (stopped, "disabled")):
        t.step(f"GET /echo on the {what} plugin")
        response = await t.http().get(plugin.url("/echo"))
        retry = response.headers.get("retry-after")
        seconds = _retry_after_s(retry) if retry is not None else None
        if response.status_code != 503 or seconds is None or seconds < 1:
            problems.append(
                f"{plugin.plugin_id!r} ({what}): expected 503 with Retry-After >= 1 s, got\n"
                f"{_response_evidence(response, response.content)}"
            )
        if plugin.calls("ServeHTTP"):
            problems.append(f"{plugin.plugin_id!r} ({what}) received a ServeHTTP call")
    expect(
        not problems,
        "SE-3:\n" + "\n".join(problems) + f"\n{describe_status(status)}\n{stopped.evidence()}",
    )


@case("host/serve-http/not-implemented-404", requirements=["SE-2"], profile=Profile.HOOKS)
async def not_implemented_404(t: HostTarget) -> None:
    """
    Purpose: Requests for a plugin that does not serve HTTP, or does not exist, get 404.
    Procedure: Load a fake implementing OnActivate and ExecuteCommand only; POST to its /echo
      and GET /plugins/ID-unknown/echo for an id no plugin has.
    Asserts: Both answers are 404, and the fake received no ServeHTTP call.
    """
    plugin = await t.load({"hooks": ["OnActivate", "ExecuteCommand"]})
    problems = []
    t.step("POST /echo to a plugin without ServeHTTP")
    response = await t.http().post(plugin.url("/echo"), content=b"not served")
    if response.status_code != 404:
        problems.append(
            f"a plugin whose Implemented lacks ServeHTTP: expected 404, got\n"
            f"{_response_evidence(response, response.content)}"
        )
    unknown = f"{t.http_base_url}/plugins/{plugin.plugin_id}-unknown/echo"
    response = await t.http().get(unknown)
    if response.status_code != 404:
        problems.append(
            f"an unknown plugin id: expected 404, got\n"
            f"{_response_evidence(response, response.content)}"
        )
    if plugin.calls("ServeHTTP"):
        problems.append("the plugin received a ServeHTTP call it does not implement")
    expect(not problems, "SE-2:\n" + "\n".join(problems) + f"\n{plugin.evidence()}")


@case("host/serve-http/no-deadline", requirements=["SH-23"], profile=Profile.HOOKS)
async def no_deadline(t: HostTarget) -> None:
    """
    Purpose: An HTTP exchange may outlast the hook deadline: downloads and long polls do.
    Procedure: Load a fake with a 500 ms hook deadline and GET /drip?n=4&ms=500, a response
      that takes about 2 s.
    Asserts: The response is 200 with all four pieces.
    """
    plugin = await t.load(hook_timeout_s=0.5)
    t.step("GET /drip?n=4&ms=500 against a 500 ms hook deadline")
    response = await t.http().get(plugin.url("/drip?n=4&ms=500"))
    want = b"".join(f"piece {i}\n".encode() for i in range(1, 5))
    expect(
        response.status_code == 200 and response.content == want,
        f"a 2 s exchange came back {response.status_code} with {response.content[:200]!r}, "
        f"expected 200 and {want!r}: the host must put no deadline on ServeHTTP (SH-23)\n"
        f"{plugin.evidence()}",
    )
