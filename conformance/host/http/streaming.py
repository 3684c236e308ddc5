"""ServeHTTP streamed through the host's HTTP front: responses, both ways at once, requests."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator

from pluginconf.reference.generator import iter_bytes
from pluginconf.runner import Level, Profile, case, expect
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.fake_plugin import FakePlugin
from pluginconf.runner.host.observer import Observed
from pluginconf.runner.host.target import HostTarget
from pluginconf.runner.plugin.duplex import duplex_exchange
from pluginconf.runner.timing import Yardstick, judge_time
from pluginconf.units import KIB, MIB

from ._helpers import request_target, response_evidence

# -- streaming ------------------------------------------------------------------------------


DRIP_PIECES, DRIP_PAUSE_MS = 4, 400


async def _drip(t: HostTarget, plugin: FakePlugin) -> tuple[float | None, str]:
    """GET /drip: the longest a flushed piece (but the last) took from the plugin to the
    client, and a timeline; None when a piece is missing."""
    arrivals: dict[int, float] = {}
    buffer = b""
    path = f"/drip?n={DRIP_PIECES}&ms={DRIP_PAUSE_MS}"
    t.step(f"reading {path}")
    began = time.monotonic()
    async with t.http().stream("GET", plugin.url(path)) as response:
        async for chunk in response.aiter_raw():
            now = time.monotonic()
            buffer += chunk
            for line in buffer.split(b"\n")[:-1]:
                if line.startswith(b"piece ") and line[6:].isdigit():
                    arrivals.setdefault(int(line[6:]), now)
    sent = {
        int(e.get("index", 0)): e.monotonic
        for e in plugin.events("http_piece_sent")
        if e.monotonic >= began
    }
    start = min([*sent.values(), *arrivals.values()], default=0.0)

    def at(when: float | None) -> str:
        return "never" if when is None else f"+{when - start:.3f}s"

    timeline = f"HTTP {response.status_code}\n" + "\n".join(
        f"  piece {i}: sent {at(sent.get(i))}, received {at(arrivals.get(i))}"
        for i in range(1, DRIP_PIECES + 1)
    )
    pieces = list(range(1, DRIP_PIECES + 1))
    if response.status_code != 200 or sorted(arrivals) != pieces or sorted(sent) != pieces:
        return None, timeline
    return max(arrivals[i] - sent[i] for i in pieces[:-1]), timeline


@case("host/serve-http/response-streams", requirements=["SH-15"], profile=Profile.HOOKS)
async def response_streams(t: HostTarget) -> None:
    """
    Purpose: A response the plugin sends piece by piece, flushing each, reaches the client
      piece by piece.
    Procedure: GET the fake's /drip?n=4&ms=400: four lines "piece i", each sent in a body
      frame followed by a flush frame, 400 ms apart; note when each line reaches the client.
      A late piece is timed again, on a new request, against the same-run yardstick of a call.
    Asserts: All four lines arrive with status 200, and each of the first three reaches the
      client before the fake sends the next one, 400 ms later.
    """
    t.require(Capability.HTTP_FRONT)
    plugin = await t.load()
    latency, timeline = await _drip(t, plugin)
    expect(
        latency is not None,
        f"expected pieces 1 to {DRIP_PIECES} with status 200\n{timeline}\n{plugin.evidence()}",
    )

    async def again() -> float | None:
        return (await _drip(t, plugin))[0]

    verdict = await judge_time(
        DRIP_PAUSE_MS / 1000,
        again,
        Yardstick.CALL,
        "the longest a flushed piece took from the plugin to the client (the next piece "
        "follows it after this bound)",
        seen=[latency],
    )
    expect(
        verdict.met,
        f"{verdict.evidence()}; each piece was followed by a flush frame, on which the host "
        f"must have written everything so far to the client (SH-15)\n{timeline}",
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
async def fullduplex_exchange(t: HostTarget) -> None:
    """
    Purpose: The response flows to the client while the request body is still coming in.
    Procedure: POST 2 MiB to the fake's /echo (which echoes each piece as it arrives): send
      the first 1 MiB, wait up to 5 s for echoed bytes to reach the client, then send the
      rest.
    Asserts: Echoed bytes arrive before the second MiB is sent, and the echo is exact.
    """
    t.require(Capability.HTTP_FRONT)
    plugin = await t.load()
    first = b"".join(iter_bytes(MIB, 21))
    gate, waited = asyncio.Event(), list[float]()
    t.step("echoing 2 MiB, the second held back until echoed bytes arrive")
    result = await duplex_exchange(
        t.http_base_url,
        request_target(plugin, "/echo"),
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
    Procedure: POST 2000 bytes to the fake's /echo: send 1000, wait up to 5 s for the 1000
      echoed bytes (body frames without a flush) to reach the client, then send the rest.
    Asserts: All 1000 echoed bytes arrive before the rest of the request is sent.
    """
    t.require(Capability.HTTP_FRONT)
    plugin = await t.load()
    gate, waited = asyncio.Event(), list[float]()

    def arrived(n: int) -> None:
        if n >= 1000:
            gate.set()

    t.step("echoing 1000 bytes, the rest held back until they come back")
    result = await duplex_exchange(
        t.http_base_url,
        request_target(plugin, "/echo"),
        _gated(b"x" * 1000, 1000, 23, gate, 5.0, waited),
        2000,
        on_data=arrived,
    )
    expect(
        waited and waited[0] >= 0,
        "the plugin echoed 1000 bytes in body frames (no flush), but they had not all reached "
        f"the client 5 s later (SH-16: forward each body frame when it arrives)\n"
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
    t.require(Capability.HTTP_FRONT)
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
        f"sent)\n{response_evidence(response, response.content)}\n{plugin.evidence()}",
    )
