"""The suite's Observer service: what the fake plugins saw, as they saw it.

Each fake plugin reports every event (fake_interpreters/README.md, "The record") with a
blocking call before it acts on it, so whatever the host has been answered is already here.
Host cases assert on these events, not on what the host says it did.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.json_format import ParseDict
from google.protobuf.message import Message

from pluginconf.control import control_pb2, control_pb2_grpc
from pluginconf.runner.model import Requirements, fail


@dataclass(frozen=True)
class Observed:
    """One event a fake plugin reported."""

    label: str
    event: str
    pid: int
    seq: int
    monotonic: float
    wall: float
    fields: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)

    def describe(self) -> str:
        extra = {k: v for k, v in self.fields.items() if k not in ("env", "scenario", "argv")}
        text = json.dumps(extra, ensure_ascii=False)
        if len(text) > 300:
            text = text[:300] + "..."
        return f"[pid {self.pid} #{self.seq} {self.event}] {text}"


Predicate = Callable[[Observed], bool]


class _Servicer(control_pb2_grpc.ObserverServicer):
    def __init__(self, observer: ObserverServer) -> None:
        self._observer = observer

    async def Report(
        self, request: control_pb2.ObservedEvent, context: grpc.aio.ServicerContext[Any, Any]
    ) -> control_pb2.ReportAck:
        try:
            fields = json.loads(request.fields_json) if request.fields_json else {}
        except json.JSONDecodeError:
            fields = {"unparsed": request.fields_json}
        await self._observer.add(
            Observed(
                request.label,
                request.event,
                request.pid,
                request.seq,
                request.monotonic,
                request.wall,
                fields if isinstance(fields, dict) else {"value": fields},
            )
        )
        return control_pb2.ReportAck()


class ObserverServer:
    """A grpc.aio Observer on a unix socket; events kept in arrival order, waitable."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.target = f"unix:{socket_path}"
        self.events: list[Observed] = []
        self._changed = asyncio.Condition()
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        server = grpc.aio.server()
        control_pb2_grpc.add_ObserverServicer_to_server(_Servicer(self), server)
        server.add_insecure_port(self.target)
        await server.start()
        self._server = server

    async def close(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=None)
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)

    async def add(self, event: Observed) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def select(
        self, label: str, event: str | None = None, pid: int | None = None
    ) -> list[Observed]:
        return [
            e
            for e in self.events
            if e.label == label
            and (event is None or e.event == event)
            and (pid is None or e.pid == pid)
        ]

    async def wait_for(self, predicate: Predicate, timeout_s: float) -> Observed | None:
        """The first event (already here or to come) that matches; None after the timeout."""

        def found() -> Observed | None:
            return next((e for e in self.events if predicate(e)), None)

        try:
            async with asyncio.timeout(timeout_s), self._changed:
                await self._changed.wait_for(lambda: found() is not None)
        except TimeoutError:
            return None
        return found()

    async def wait_count(
        self, predicate: Predicate, count: int, timeout_s: float
    ) -> list[Observed]:
        """Wait until ``count`` events match; the matching events, however many came."""

        def matching() -> list[Observed]:
            return [e for e in self.events if predicate(e)]

        try:
            async with asyncio.timeout(timeout_s), self._changed:
                await self._changed.wait_for(lambda: len(matching()) >= count)
        except TimeoutError:
            pass
        return matching()


def describe_events(events: Iterable[Observed], limit: int = 30) -> str:
    """Evidence: the last ``limit`` events, one per line."""
    listed = list(events)
    shown = listed[-limit:]
    lines = [e.describe() for e in shown]
    if len(listed) > limit:
        lines.insert(0, f"... {len(listed) - limit} earlier events")
    return "\n".join("    " + line for line in lines) or "    (no events)"


def received(
    event: Observed, message_type: type[Message], *, requirement: Requirements = ()
) -> Any:
    """The request a fake recorded in a ``call`` event, as the message it received.

    A call whose request the fake could not read (``request`` null: a ServeHTTP frame that
    does not parse, or a stream that ended before its first frame) fails the case, naming
    ``requirement`` (every requirement of the case when none is given) and the cause."""
    request = event.get("request", {})
    if request is not None:
        return ParseDict(request, message_type())
    why = str(event.get("request_error") or "the fake recorded no request")
    hint = ""
    if "DecodeError" in why or "parsing" in why.lower():
        hint = (
            "; method, path, query and header names and values travel as protobuf strings, "
            "which must be valid UTF-8: the host sends bytes that are not valid UTF-8 decoded "
            "as ISO-8859-1 (SPEC section 14, SH)"
        )
    fail(
        f"the plugin could not read the {message_type.DESCRIPTOR.name} of {event.get('hook')} "
        f"call {event.get('call')} (process {event.pid}): {why}{hint}\n    {event.describe()}",
        requirement=requirement,
    )
