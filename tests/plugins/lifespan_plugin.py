#!/usr/bin/env python3
"""A Starlette app with a lifespan: startup fills state, shutdown writes a marker file.

lifespan_plugin.py MARKER_FILE [--fail-startup]
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pluginconf.plugin import Plugin, serve

MARKER = Path(sys.argv[1])
FAIL = "--fail-startup" in sys.argv


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
    if FAIL:
        raise RuntimeError("database unreachable")
    MARKER.write_text("started\n")
    yield {"greeting": "hello from startup"}
    MARKER.write_text(MARKER.read_text() + "shutdown\n")


async def greet(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.state.greeting)


class LifespanPlugin(Plugin):
    def http_app(self) -> Starlette:
        return Starlette(routes=[Route("/greet", greet)], lifespan=lifespan)


if __name__ == "__main__":
    serve(LifespanPlugin())
