"""Host faults that break one requirement each (issue 15): hooks' answers and ServeHTTP.

Hook answers and errors, the ServeHTTP request and response, and exits seen or not.
"""

from __future__ import annotations

import asyncio
import asyncio.unix_events
import os
import time
import types
import urllib.parse
from collections.abc import Callable
from typing import Any

import grpc
from host_faults.common import exchange_streams, fault, patch, shadow

from pluginconf.host import client
from pluginconf.host.client import PluginUnavailable
from pluginconf.host.environment import AppErrorAnswer, Environment
from pluginconf.host.http import front as http_front
from pluginconf.host.http.front import _Exchange
from pluginconf.host.supervision.states import PluginState
from pluginconf.host.supervision.supervisor import Supervisor
from pluginconf.v1 import hooks_pb2, hooks_pb2_grpc


@fault("command-text-trimmed", "trims whitespace off the plugin's ExecuteCommand text (RR-1)")
def _() -> None:
    execute = Environment.execute_command

    async def trimmed(self: Environment, plugin_id: str, request: Any) -> Any:
        reply = await execute(self, plugin_id, request)
        reply.text = reply.text.strip()
        return reply

    patch(Environment, "execute_command", trimmed)


@fault(
    "app-error-code-in-message",
    "returns a plugin's AppError as one message 'code: message', without its code (RR-2)",
)
def _() -> None:
    execute = Environment.execute_command

    async def folded(self: Environment, plugin_id: str, request: Any) -> Any:
        try:
            return await execute(self, plugin_id, request)
        except AppErrorAnswer as exc:
            raise AppErrorAnswer(plugin_id, exc.hook, "", f"{exc.code}: {exc.message}") from None

    patch(Environment, "execute_command", folded)


@fault(
    "timeout-as-unavailable",
    "reports an expired hook deadline as plugin_unavailable, with UNAVAILABLE (RR-3)",
)
def _() -> None:
    classify = client._classify

    def merged(plugin_id: str, hook: str, exc: grpc.aio.AioRpcError, timeout: float) -> Any:
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            return PluginUnavailable(plugin_id, hook, f"no answer within {timeout:g}s")
        return classify(plugin_id, hook, exc, timeout)

    patch(client, "_classify", merged)


def _request_init(change: Callable[[hooks_pb2.HTTPRequestInit], None]) -> None:
    """Change each exchange's request init as it is made."""
    exchange_streams(lambda exchange: change(exchange.init))


@fault("method-patch-as-post", "forwards PATCH (a method outside its table) as POST (SH-2)")
def _() -> None:
    def tabled(init: hooks_pb2.HTTPRequestInit) -> None:
        if init.method not in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"):
            init.method = "POST"

    _request_init(tabled)


@fault("path-decoded", "sends the percent-decoded path, not the path as received (SH-3)")
def _() -> None:
    def decoded(init: hooks_pb2.HTTPRequestInit) -> None:
        init.path = urllib.parse.unquote(init.path)

    _request_init(decoded)


@fault("query-re-encoded", "parses the query and encodes it again (SH-4)")
def _() -> None:
    def re_encoded(init: hooks_pb2.HTTPRequestInit) -> None:
        pairs = urllib.parse.parse_qsl(init.raw_query, keep_blank_values=True)
        init.raw_query = urllib.parse.urlencode(pairs)

    _request_init(re_encoded)


@fault("request-headers-joined", "joins a request header's values into one, ', '-separated (SH-5)")
def _() -> None:
    headers = http_front.request_headers

    def joined(raw: list[tuple[bytes, bytes]]) -> list[hooks_pb2.HTTPHeader]:
        return [
            hooks_pb2.HTTPHeader(name=h.name, values=[", ".join(h.values)]) for h in headers(raw)
        ]

    patch(http_front, "request_headers", joined)


# The name under which the generated stubs hold hooks_pb2 (HooksStub takes its serializers there).
_PB2 = "pluginconf_dot_v1_dot_hooks__pb2"


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _latin1_where_it_fits(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode()


def _init_with_latin1_headers(frame: hooks_pb2.HTTPRequestFrame) -> bytes:
    """The frame's wire form, its header values in ISO-8859-1 where they fit: bytes the
    protobuf runtime would refuse to put in a string field, so they are written by hand."""
    if frame.WhichOneof("frame") != "init":
        return frame.SerializeToString()
    init = hooks_pb2.HTTPRequestInit()
    init.CopyFrom(frame.init)
    headers = list(init.headers)
    del init.headers[:]
    body = init.SerializeToString()
    for header in headers:
        values = b"".join(_field(2, _latin1_where_it_fits(v)) for v in header.values)
        body += _field(4, _field(1, header.name.encode()) + values)  # HTTPRequestInit.headers
    return _field(1, body)  # HTTPRequestFrame.init


@fault(
    "request-headers-latin1",
    "sends request header values in ISO-8859-1 where they fit, not in UTF-8, as a host that "
    "copies header bytes into protobuf strings does (SH-5)",
)
def _() -> None:
    raw_frames = types.SimpleNamespace(SerializeToString=_init_with_latin1_headers)
    patch(hooks_pb2_grpc, _PB2, shadow(hooks_pb2, HTTPRequestFrame=raw_frames))


@fault("remote-addr-without-port", "sends the client's host without its port as remote_addr (SH-8)")
def _() -> None:
    remote = http_front._remote

    def host_only(scope: Any) -> str:
        return remote(scope).rpartition(":")[0]

    patch(http_front, "_remote", host_only)


def _response_writer(wrap: Callable[[_Exchange, Any], Any]) -> None:
    """Replace each exchange's send with ``wrap(exchange, send)``."""

    def replace(exchange: _Exchange) -> None:
        exchange.send = wrap(exchange, exchange.send)

    exchange_streams(replace)


@fault(
    "flush-ignored",
    "writes the response body through a 64 KiB buffer, emptied only when full or at the end, "
    "flush frames or not (SH-15, SH-16)",
)
def _() -> None:
    def buffered(exchange: _Exchange, send: Any) -> Any:
        held: list[bytes] = []

        async def write(message: Any) -> None:
            if message["type"] == "http.response.body" and message.get("more_body", False):
                held.append(message.get("body", b""))
                if sum(map(len, held)) < 64 * 1024:
                    return
                message = {**message, "body": b"".join(held)}
                held.clear()
            elif message["type"] == "http.response.body" and held:
                message = {**message, "body": b"".join([*held, message.get("body", b"")])}
                held.clear()
            await send(message)

        return write

    _response_writer(buffered)


@fault(
    "half-duplex",
    "holds the response back until the whole request body has come in (SH-17)",
)
def _() -> None:
    def wrap(exchange: _Exchange) -> None:
        receive, send = exchange.receive, exchange.send
        request_in = asyncio.Event()
        held: list[Any] = []

        async def reading() -> Any:
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                request_in.set()
            return message

        async def writing(message: Any) -> None:
            final = message["type"] == "http.response.body" and not message.get("more_body")
            if not request_in.is_set() and not final:
                held.append(message)
                return
            await request_in.wait()
            while held:
                await send(held.pop(0))
            await send(message)

        exchange.receive, exchange.send = reading, writing

    exchange_streams(wrap)


@fault(
    "failed-start-counted-twice",
    "counts a failed start twice towards the restart limit: at the failure and at the exit (SV-10)",
)
def _() -> None:
    crashed = Supervisor._crashed

    async def twice(self: Supervisor, failure: Any, active_for_s: float) -> None:
        if active_for_s == 0.0:
            self.policy.failure_times.append(time.monotonic())
        await crashed(self, failure, active_for_s)

    patch(Supervisor, "_crashed", twice)


@fault(
    "stop-exit-is-crash",
    "leaves its exit watcher armed during the stop sequence: the plugin's exit after Shutdown "
    "is recorded as a crash (SV-15)",
)
def _() -> None:
    sequence = Supervisor._stop_sequence

    async def watched(self: Supervisor) -> None:
        process = self.process
        await sequence(self)
        if process is not None and process.process.returncode is not None:
            await self._transition(
                PluginState.CRASHED,
                "plugin exited unexpectedly",
                error_kind="unexpected_exit",
                exit_status=process.process.returncode,
            )

    patch(Supervisor, "_stop_sequence", watched)


@fault(
    "exit-seen-not-reaped",
    "learns of a plugin's exit with waitid(WNOWAIT) and never reaps it: zombies (SV-17)",
)
def _() -> None:
    def peek(
        self: Any, loop: asyncio.AbstractEventLoop, pid: int, callback: Any, args: Any
    ) -> None:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        exited = info is not None and info.si_code == os.CLD_EXITED
        code = info.si_status if exited else -(info.si_status if info else 0)
        if not loop.is_closed():
            loop.call_soon_threadsafe(callback, pid, code, *args)
        self._threads.pop(pid)

    patch(asyncio.unix_events.ThreadedChildWatcher, "_do_waitpid", peek)
