#!/usr/bin/env python3
"""A test plugin whose ASGI app is writing when its client goes away.

GET /flood?id=X   sends "ready\\n", then 64 KiB pieces until a send fails; a client that
                  stops reading leaves a send blocked by flow control. Records the class of
                  the exception that ended it, with its OSError-ness.
GET /ended?id=X   what /flood X recorded, "<class name> oserror=<bool>", or "" if nothing yet.
"""

from __future__ import annotations

from typing import Any

from pluginconf.plugin import Plugin, serve
from pluginconf.plugin.base import ASGIApp

PIECE = b"x" * 65536
FLOOD_LIMIT = 4096  # pieces: 256 MiB, far past any flow-control window


class BlockedWriterApp:
    def __init__(self) -> None:
        self.ended: dict[str, str] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        flood_id = scope["query_string"].decode().removeprefix("id=")
        start = {"type": "http.response.start", "status": 200, "headers": []}
        if scope["path"] == "/ended":
            await send(start)
            await send(
                {"type": "http.response.body", "body": self.ended.get(flood_id, "").encode()}
            )
            return
        await send(start)
        await send({"type": "http.response.body", "body": b"ready\n", "more_body": True})
        try:
            for _ in range(FLOOD_LIMIT):
                await send({"type": "http.response.body", "body": PIECE, "more_body": True})
        except Exception as exc:
            self.ended[flood_id] = f"{type(exc).__name__} oserror={isinstance(exc, OSError)}"
            raise
        self.ended[flood_id] = "completed oserror=False"
        await send({"type": "http.response.body", "body": b""})


class BlockedWriterPlugin(Plugin):
    def __init__(self) -> None:
        self._app = BlockedWriterApp()

    def http_app(self) -> ASGIApp:
        return self._app


if __name__ == "__main__":
    serve(BlockedWriterPlugin())
