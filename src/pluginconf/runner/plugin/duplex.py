"""A minimal full-duplex HTTP/1.1 client: h11 over an asyncio connection.

httpx sends a whole request body before it reads the response, so a body echoed back while it
is still being sent would stall once both directions' buffers fill. ``duplex_exchange`` sends
and receives together, hashing both directions as they go.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import h11
import httpx

from pluginconf.units import MIB


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


async def duplex_exchange(
    base_url: str,
    target: str,
    body: AsyncIterator[bytes],
    length: int,
    *,
    method: str = "POST",
    on_data: Callable[[int], None] | None = None,
    on_complete: Callable[[], None] | None = None,
    chunked: bool = False,
    timeout_s: float = 30.0,
) -> Duplex:
    """Send ``length`` bytes from ``body`` while reading the response as it comes, hashing
    both; ``on_data`` is told the response body bytes received so far after each piece, and
    ``on_complete`` when the response has ended (the request may still be going). With
    ``chunked`` the body goes chunked, without Content-Length (``length`` then unused)."""
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
            ("transfer-encoding", "chunked") if chunked else ("content-length", str(length)),
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
                if on_complete is not None:
                    on_complete()
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
