#!/usr/bin/env python3
"""A test plugin whose ServeHTTP is an ordinary Starlette application, used unchanged.

POST /upload          reads the body with request.stream(); answers JSON
                      {"bytes": <count>, "sha256": <hex digest>, "pieces": <count>}
GET  /stream          a StreamingResponse of 5 chunks, "part {i}\\n" for i in 0..4
GET  /items/{item_id} a path parameter (an int): JSON {"item_id": <id>, "q": <query q>}
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from pluginconf.plugin import Plugin, serve
from pluginconf.plugin.base import ASGIApp

STREAM_CHUNKS = 5


async def upload(request: Request) -> JSONResponse:
    digest = hashlib.sha256()
    total = 0
    pieces = 0
    async for piece in request.stream():
        if piece:
            digest.update(piece)
            total += len(piece)
            pieces += 1
    return JSONResponse({"bytes": total, "sha256": digest.hexdigest(), "pieces": pieces})


async def stream(request: Request) -> StreamingResponse:
    async def parts() -> AsyncIterator[bytes]:
        for i in range(STREAM_CHUNKS):
            yield f"part {i}\n".encode()
            await asyncio.sleep(0.01)

    return StreamingResponse(parts(), media_type="text/plain")


async def item(request: Request) -> JSONResponse:
    return JSONResponse(
        {"item_id": request.path_params["item_id"], "q": request.query_params.get("q")}
    )


class StarlettePlugin(Plugin):
    def __init__(self) -> None:
        self._app = Starlette(
            routes=[
                Route("/upload", upload, methods=["POST"]),
                Route("/stream", stream, methods=["GET"]),
                Route("/items/{item_id:int}", item, methods=["GET"]),
            ]
        )

    def http_app(self) -> ASGIApp:
        return self._app


if __name__ == "__main__":
    serve(StarlettePlugin())
