"""Helpers the ServeHTTP cases share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from pluginconf.reference.generator import iter_bytes
from pluginconf.runner.host.fake_plugin import FakePlugin


async def generated_body(n: int, seed: int) -> AsyncIterator[bytes]:
    """The generator's first ``n`` bytes for ``seed``, in 64 KiB pieces, never held whole."""
    for piece in iter_bytes(n, seed):
        yield piece


# -- what the fake saw --------------------------------------------------------------------


def request_target(plugin: FakePlugin, path: str) -> str:
    """The request target (path and query) of ``plugin.url(path)``, as sent on the wire."""
    return httpx.URL(plugin.url(path)).raw_path.decode("ascii")


def response_evidence(response: httpx.Response, body: bytes | None = None) -> str:
    lines = [f"HTTP {response.status_code}"]
    lines += [f"  {n.decode('latin-1')}: {v.decode('latin-1')}" for n, v in response.headers.raw]
    if body is not None:
        lines.append(f"  body: {body[:200]!r}{'...' if len(body) > 200 else ''}")
    return "\n".join(lines)
