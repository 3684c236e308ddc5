"""ASGI lifespan for the plugin's HTTP app: startup before serving, shutdown when stopping.

As ASGI servers do in "auto" mode: an app that raises or returns before answering startup
does not support lifespan, and is served without it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pluginconf.plugin.base import ASGIApp, ASGIMessage

log = logging.getLogger("pluginconf.plugin.lifespan")


class LifespanError(Exception):
    """The app reported lifespan.startup.failed or lifespan.shutdown.failed."""


class Lifespan:
    def __init__(self, app: ASGIApp, timeout_s: float = 30.0) -> None:
        self._app = app
        self._timeout = timeout_s
        self._inbox: asyncio.Queue[ASGIMessage] = asyncio.Queue()
        self._outbox: asyncio.Queue[ASGIMessage] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.supported = False
        self.state: dict[str, Any] = {}

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        scope["state"] = self.state
        try:
            await self._app(scope, self._inbox.get, self._outbox.put)
        except Exception as exc:
            if self.supported:
                log.exception("ASGI lifespan raised")
            else:
                log.debug("ASGI app does not support lifespan: %r", exc)
        finally:
            await self._outbox.put({"type": "lifespan.finished"})

    async def _answer(self) -> ASGIMessage:
        return await asyncio.wait_for(self._outbox.get(), self._timeout)

    async def startup(self) -> None:
        self._task = asyncio.ensure_future(self._run())
        await self._inbox.put({"type": "lifespan.startup"})
        message = await self._answer()
        if message["type"] == "lifespan.startup.complete":
            self.supported = True
        elif message["type"] == "lifespan.startup.failed":
            raise LifespanError(f"ASGI app startup failed: {message.get('message', '')}")

    async def shutdown(self) -> None:
        if not self.supported or self._task is None:
            return
        await self._inbox.put({"type": "lifespan.shutdown"})
        try:
            message = await self._answer()
        except TimeoutError:
            log.warning("ASGI lifespan shutdown did not answer within %gs", self._timeout)
            self._task.cancel()
            return
        if message["type"] == "lifespan.shutdown.failed":
            log.error("ASGI app shutdown failed: %s", message.get("message", ""))
