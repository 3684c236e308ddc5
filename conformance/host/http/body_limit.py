"""The request body limit (SE-7): a declared length over it is refused before the plugin is
called; a streamed body over it cancels the call, with 413 before the response has started
and an aborted response after; a body of exactly the limit passes.

The limit is the plugin's HostPolicy.max_request_body_bytes; a host that cannot take it from
the outside answers FAILED_PRECONDITION and the cases are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator

import httpx

from pluginconf.reference.generator import iter_bytes
from pluginconf.runner import Profile, case_each, check, expect
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.fake_plugin import FakePlugin
from pluginconf.runner.host.target import HostTarget
from pluginconf.runner.plugin.duplex import Duplex, duplex_exchange

# Not a multiple of 64 KiB, so the limit falls inside a frame.
LIMIT = 100_003
BRANCHES = [
    "declared-over",
    "declared-exact",
    "streamed-over-before-response",
    "streamed-over-after-response",
    "streamed-exact",
]


async def _pieces(total: int, seed: int, gate: asyncio.Event | None = None) -> AsyncIterator[bytes]:
    """Irregular pieces; with ``gate``, the rest after 1000 bytes waits for it (at most 5 s)."""
    data = b"".join(iter_bytes(total, seed))
    sizes, start, n = [7, 30001, 1, 4093], 0, 0
    if gate is not None:
        yield data[:1000]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gate.wait(), 5.0)
        start = 1000
    while start < total:
        yield data[start : start + sizes[n % len(sizes)]]
        start, n = start + sizes[n % len(sizes)], n + 1


async def _post(
    t: HostTarget, p: FakePlugin, path: str, size: int, chunked: bool, after_response: bool
) -> Duplex:
    """Send ``size`` bytes; ``after_response``: the rest after 1000 bytes only once response
    body bytes have arrived."""
    target = httpx.URL(p.url(path)).raw_path.decode("ascii")
    gate = asyncio.Event() if after_response else None
    return await duplex_exchange(
        t.http_base_url,
        target,
        _pieces(size, 51, gate),
        size,
        on_data=(lambda n: gate.set()) if gate is not None else None,
        chunked=chunked,
        timeout_s=20.0,
    )


async def _serve_http_paths(t: HostTarget, p: FakePlugin) -> list[str]:
    """The paths of every ServeHTTP call the plugin received, once a later request (a GET of
    /status/204, sent now) has arrived: whatever came before it has been recorded."""
    await t.http().get(p.url("/status/204"))
    await p.wait_event(
        "call",
        where=lambda e: e.get("hook") == "ServeHTTP" and "/status/204" in str(e.get("request")),
        timeout_s=5.0,
        why="the GET sent after the refused request",
    )
    return [
        str(((c.get("request") or {}).get("init") or {}).get("path", "?"))
        for c in p.calls("ServeHTTP")
    ]


@case_each(
    "host/serve-http/body-limit/{}",
    BRANCHES,
    requirements=["SE-7"],
    profile=Profile.HOOKS,
)
async def body_limit(t: HostTarget, branch: str) -> None:
    """
    Purpose: With a request body limit of 100003 bytes, {value} is handled as SE-7 says.
    Procedure: Load a fake with HostPolicy.max_request_body_bytes 100003. declared-over:
      POST 100004 bytes with Content-Length to /sink. declared-exact: 100003 bytes with
      Content-Length to /sink. streamed-over-before-response: 100004 bytes chunked to /sink
      (which answers only at the end). streamed-over-after-response: 100004 bytes chunked to
      /echo, the rest after 1000 bytes once echoed bytes arrived. streamed-exact: 100003
      bytes chunked to /echo. The client sends and reads at once; then a GET shows which
      calls reached the plugin.
    Asserts: declared-over: 413 and no ServeHTTP call for it. streamed-over-before-response:
      413, and the plugin's call ended without the request's end. streamed-over-after-response:
      the response is aborted, never complete. The exact ones: 200 with the body whole.
    """
    t.require(Capability.HTTP_FRONT)
    p = await t.load({}, max_request_body_bytes=LIMIT)
    over = branch.endswith("-before-response") or branch.endswith("-after-response")
    over = over or branch == "declared-over"
    size = LIMIT + 1 if over else LIMIT
    chunked = branch.startswith("streamed")
    path = "/echo" if branch in ("streamed-over-after-response", "streamed-exact") else "/sink"
    t.step(f"posting {size} bytes {'chunked' if chunked else 'with Content-Length'} to {path}")
    late = branch == "streamed-over-after-response"
    result = await _post(t, p, path, size, chunked, late)
    sent = hashlib.sha256(b"".join(iter_bytes(size, 51))).hexdigest()
    how = f"{size} bytes {'chunked' if chunked else 'with Content-Length'} to {path}"
    if branch == "declared-over":
        expect(
            result.status == 413,
            f"{how}, over the limit of {LIMIT}: the client got {result.describe()}; expected "
            f"413 (SE-7)\n{p.evidence()}",
        )
        paths = await _serve_http_paths(t, p)
        check(
            paths == ["/status/204"],
            f"the declared length {size} was over the limit of {LIMIT}, but the plugin was "
            f"called: it received ServeHTTP calls for {paths}; SE-7 wants 413 without calling "
            f"it\n{p.evidence()}",
        )
    elif branch == "streamed-over-before-response":
        expect(
            result.status == 413,
            f"{how}, over the limit of {LIMIT} and before any response: the client got "
            f"{result.describe()}; expected 413 (SE-7)\n{p.evidence()}",
        )
        await _serve_http_paths(t, p)  # whatever reached the plugin has been recorded
        sink = {c.get("call") for c in p.calls("ServeHTTP") if "/sink" in str(c.get("request"))}
        whole = [
            e
            for e in p.events("http_request_end")
            if e.get("call") in sink and (e.get("complete") or int(e.get("body_bytes", 0)) > LIMIT)
        ]
        check(
            not whole,
            f"the plugin received the request's end or more than {LIMIT} body bytes: "
            f"{[(e.get('body_bytes'), e.get('complete')) for e in whole]}; the host must cancel "
            f"the call once the body passes the limit (SE-7)\n{p.evidence()}",
        )
    elif branch == "streamed-over-after-response":
        expect(
            not result.complete,
            f"{how}, over the limit of {LIMIT} after the echo's response had started: the "
            f"client got {result.describe()}, a response that looks complete; SE-7 wants it "
            f"aborted (SE-6)\n{p.evidence()}",
        )
    else:
        wanted = f"{size} {sent}" if path == "/sink" else ""
        expect(
            result.status == 200 and result.complete and result.received > 0,
            f"{how}, exactly the limit of {LIMIT}: the client got {result.describe()}; a "
            f"body of exactly the limit passes (SE-7)\n{p.evidence()}",
        )
        if path == "/echo":
            check(
                result.received_sha256 == sent,
                f"the echo of {size} bytes came back different (SHA-256 "
                f"{result.received_sha256}, sent {sent})",
            )
        else:
            end = await p.wait_event("http_request_end", timeout_s=5.0, why="the request ended")
            check(
                end.get("body_sha256") == sent and end.get("complete") is True,
                f"the plugin received {end.get('body_bytes')} bytes (SHA-256 "
                f"{end.get('body_sha256')}, end seen {end.get('complete')}); expected {wanted}",
            )
