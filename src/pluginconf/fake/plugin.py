"""fakeplugin: a go-plugin style plugin that behaves, or misbehaves, as its scenario says.

Run as ``python -m pluginconf.fake SCENARIO.json`` or ``fake_interpreters/fakeplugin
SCENARIO.json`` (fake_interpreters/README.md lists the scenario keys). What is conformant is
the SDK's own code: the hooks are a ``pluginconf.plugin.Plugin`` served by the SDK's
``HooksService`` (Implemented, UNIMPLEMENTED, AppError, the ServeHTTP/ASGI bridge), and the
listener, broker, stdio capture, cookie check and version negotiation are the SDK's too. What
must break the protocol is done here around them: the handshake line is written raw (or a bad
one, or none), and the health and controller services are this module's, so that they can hang,
report NOT_SERVING, flap, or ignore Shutdown. Every scenario knob is read from the validated
``Scenario`` (pluginconf.fake.scenario).

Process phases, in order:
  started     record opened, "started" recorded; cookie checked (exit 1 as the SDK does)
  pre-serve   grandchild, early stderr flood, noise lines, slow start; or one of the
              non-serving endings: never handshake, a literal line, exit, closed stdout
  serving     gRPC server listening, stdio captured, handshake written
  stopping    on Shutdown, SIGTERM or the host's exit (unless ignored): health NOT_SERVING,
              in-flight calls get the SDK's grace, socket removed, exit 0
A crash ends any phase at once with ``os._exit``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import hashlib
import itertools
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, NoReturn, TypeVar, cast
from urllib.parse import parse_qsl

import grpc
from google.protobuf import empty_pb2
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pluginconf._grpc_compat import EOF
from pluginconf.control import control_pb2, control_pb2_grpc
from pluginconf.fake.scenario import (
    EXIT_SCENARIO_ERROR,
    HOOKS,
    IMPLEMENTED,
    Flood,
    Record,
    Scenario,
)
from pluginconf.goplugin import (
    grpc_broker_pb2,
    grpc_broker_pb2_grpc,
    grpc_controller_pb2,
    grpc_controller_pb2_grpc,
    grpc_stdio_pb2,
    grpc_stdio_pb2_grpc,
)
from pluginconf.plugin import AppError, Plugin, ServeConfig, ServeConfigError
from pluginconf.plugin.base import ASGIMessage, ASGIReceive, ASGIScope, ASGISend
from pluginconf.plugin.broker import PluginBroker
from pluginconf.plugin.hooks import HooksService
from pluginconf.plugin.listener import Listener
from pluginconf.plugin.server import COOKIE_EXPLANATION, _auto_mtls, check_cookie
from pluginconf.plugin.stdio import StdioCapture, StdioService
from pluginconf.protocol.constants import (
    CORE_PROTOCOL_VERSION,
    ENV_PROTOCOL_VERSIONS,
    HEALTH_SERVICE_NAME,
    MagicCookie,
)
from pluginconf.protocol.handshake import HandshakeLine
from pluginconf.protocol.versions import negotiate_version, parse_protocol_versions
from pluginconf.reference.generator import iter_bytes
from pluginconf.v1 import hooks_pb2, hooks_pb2_grpc

log = logging.getLogger("fakeplugin")

if tuple(Plugin.HOOK_METHODS) != HOOKS:  # the stdlib-only scenario module keeps its own list
    raise RuntimeError(
        f"pluginconf.fake.scenario.HOOKS is stale: the SDK has {Plugin.HOOK_METHODS}"
    )

SERVING: int = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: int = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN: int = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
HEALTH_SERVICES = ("", HEALTH_SERVICE_NAME)
HOP_BY_HOP_RESPONSE = [
    (b"connection", b"x-hop-secret"),
    (b"x-hop-secret", b"1"),
    (b"keep-alive", b"timeout=99"),
    (b"proxy-connection", b"keep-alive"),
]

# After sending what a crash scenario wants the host to see, the bytes get this long to leave
# gRPC's buffers before the process dies.
CRASH_FLUSH_S = 0.1
# Each report to the suite's Observer is a blocking call with this deadline: a dead observer
# costs the fake at most this once (it stops reporting after a failure), never a hang.
REPORT_TIMEOUT_S = 5.0

Msg = TypeVar("Msg", bound=Message)
AnyContext = grpc.aio.ServicerContext[Any, Any]


async def forever() -> NoReturn:
    """Wait until cancelled (a deadline, a cancelled call, the process ending)."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def to_dict(message: Message | None) -> dict[str, Any] | None:
    """Protobuf JSON with the proto field names and every field, so ParseDict gives it back."""
    if message is None:
        return None
    return MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


# -- the record ---------------------------------------------------------------------------


class ObserverUnreachable(Exception):
    """The first report to record.observer failed; the message says why."""


class ObserverClient:
    """Reports events to the suite's Observer (pluginconf.conformance.v1.Observer), each with
    a blocking unary call, so the suite has an event before the fake acts on it."""

    def __init__(self, target: str, label: str) -> None:
        self.target = target
        self._label = label
        self._channel = grpc.insecure_channel(target)
        self._stub = control_pb2_grpc.ObserverStub(self._channel)

    def report(
        self, name: str, seq: int, pid: int, times: tuple[float, float], fields: Any
    ) -> None:
        """Raises grpc.RpcError when the observer did not take the event in time."""
        event = control_pb2.ObservedEvent(
            label=self._label,
            event=name,
            pid=pid,
            seq=seq,
            monotonic=times[0],
            wall=times[1],
            fields_json=json.dumps(fields, ensure_ascii=False),
        )
        self._stub.Report(event, timeout=REPORT_TIMEOUT_S)


class Recorder:
    """Records each event: one JSON line appended to record.file, each with a single write so
    readers see whole lines, and a report to record.observer; both carry the same seq."""

    def __init__(self, record: Record | None) -> None:
        self._fd: int | None = None
        self._observer: ObserverClient | None = None
        if record is not None and record.file is not None:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            self._fd = os.open(record.file, flags, 0o644)
        if record is not None and record.observer is not None:
            self._observer = ObserverClient(record.observer, record.label)
        self._seq = itertools.count(1)
        self._pid = os.getpid()
        # Threads record too (the stderr flood): seq order must be file and report order.
        self._lock = threading.Lock()

    def first(self, name: str, **fields: Any) -> None:
        """The first event: raises ObserverUnreachable when the observer cannot take it."""
        self._record(name, fields, strict=True)

    def event(self, name: str, **fields: Any) -> None:
        self._record(name, fields, strict=False)

    def _record(self, name: str, fields: dict[str, Any], strict: bool) -> None:
        if self._fd is None and self._observer is None:
            return
        with self._lock:
            seq, times = next(self._seq), (time.monotonic(), time.time())
            self._report(name, seq, times, fields, strict)
            if self._fd is None:
                return
            entry = {
                "event": name,
                "seq": seq,
                "pid": self._pid,
                "monotonic": times[0],
                "wall": times[1],
                **fields,
            }
            data = memoryview((json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))
            while data:
                data = data[os.write(self._fd, data) :]

    def _report(
        self, name: str, seq: int, times: tuple[float, float], fields: Any, strict: bool
    ) -> None:
        observer = self._observer
        if observer is None:
            return
        try:
            observer.report(name, seq, self._pid, times, fields)
        except grpc.RpcError as exc:
            why = _rpc_error_text(exc)
            if strict:
                raise ObserverUnreachable(f"cannot report to {observer.target!r}: {why}") from None
            # The suite is gone or stuck: going on reporting could only stall the plugin.
            self._observer = None
            log.warning(
                "record.observer: report of event %d (%s) to %r failed (%s); no further "
                "events are reported to it, the plugin carries on",
                seq,
                name,
                observer.target,
                why,
            )


def _rpc_error_text(exc: grpc.RpcError) -> str:
    if isinstance(exc, grpc.Call):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc)


def _fd_target(fd: int) -> str:
    """What descriptor ``fd`` is open on ("/dev/null", "pipe:[123]", ...), or "closed"."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "closed"


def _socket_dir_seen(path: str | None) -> dict[str, Any] | None:
    """PLUGIN_UNIX_SOCKET_DIR as the plugin finds it at its start (HS-4): the host may remove
    it as soon as the process is gone, so the suite reads it here rather than later."""
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError as exc:
        return {"exists": False, "error": exc.strerror or str(exc)}
    return {
        "exists": True,
        "is_dir": stat.S_ISDIR(info.st_mode),
        "mode": stat.S_IMODE(info.st_mode),
        "uid": info.st_uid,
    }


def _started_fields(scenario: Scenario, config: ServeConfig) -> dict[str, Any]:
    cookie_key = config.magic_cookie.key
    env = {k: v for k, v in os.environ.items() if k.startswith("PLUGIN_") or k == cookie_key}
    return {
        "argv": sys.argv,
        "scenario": scenario.path,
        "ppid": os.getppid(),
        "pgid": os.getpgid(0),
        "sid": os.getsid(0),
        "cwd": os.getcwd(),
        "stdio": {str(fd): _fd_target(fd) for fd in (0, 1, 2)},
        "env": env,
        "socket_dir": _socket_dir_seen(os.environ.get("PLUGIN_UNIX_SOCKET_DIR")),
    }


# -- HTTP ---------------------------------------------------------------------------------

# The ServeHTTP call id of the exchange being served: set by FakeHooks.ServeHTTP, and seen by
# the ASGI app because the SDK runs it in a task, which copies the context it starts in.
HTTP_CALL: contextvars.ContextVar[int] = contextvars.ContextVar("fakeplugin_http_call", default=0)

TEXT_PLAIN = b"text/plain; charset=utf-8"
NO_BODY_STATUSES = (204, 304)
MAX_DRIP_PIECES = 100_000
MAX_DRIP_MS = 60_000
ROUTES_HELP = "/echo, /bytes, /headers, /status/CODE, /drip, /hold, /sink"

Route = Callable[[ASGIScope, ASGIReceive, ASGISend], Awaitable[None]]


class BadRequest(Exception):
    """The request's path or query is unusable; the message (a 400 body) says why."""


def _params(scope: ASGIScope) -> dict[str, str]:
    return dict(parse_qsl(scope["query_string"].decode("latin-1")))


def _int_param(params: dict[str, str], name: str, default: int, high: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) > high:
        raise BadRequest(f"{name}={text!r}: expected an integer from 0 to {high}")
    return int(text)


async def _respond(
    send: ASGISend, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A whole response; 204 and 304 have no body (and so no content-length)."""
    body = b"" if status in NO_BODY_STATUSES else text.encode()
    all_headers = [(b"content-type", TEXT_PLAIN), *(headers or [])]
    if status not in NO_BODY_STATUSES:
        all_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def _start(send: ASGISend, content_type: bytes = TEXT_PLAIN) -> None:
    headers = [(b"content-type", content_type)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})


async def _send_flushed(send: ASGISend, body: bytes) -> None:
    """A body piece, then an empty non-final body message: the SDK sends a flush frame."""
    await send({"type": "http.response.body", "body": body, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": True})


class FakeApp:
    """ServeHTTP routes (fake_interpreters/README.md): /echo, /bytes, /headers, /status/CODE,
    /drip, /hold, /sink; anything else is 404. With ``crash_after_bytes``, the process dies
    once that many response body bytes of an exchange have been sent."""

    def __init__(
        self, rec: Recorder, crash_after_bytes: int | None, crash: Callable[[str], NoReturn]
    ) -> None:
        self._rec = rec
        self._crash_after = crash_after_bytes
        self._crash = crash
        self._routes: dict[str, Route] = {
            "/echo": self._echo,
            "/bytes": self._bytes,
            "/headers": self._headers,
            "/drip": self._drip,
            "/hold": self._hold,
            "/sink": self._sink,
        }

    async def __call__(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] != "http":
            return
        if self._crash_after is not None:
            send = self._crashing(send, self._crash_after)
        path: str = scope["path"]
        route = self._status if path.startswith("/status/") else self._routes.get(path)
        if route is None:
            await _respond(send, 404, f"no route for {path}; try {ROUTES_HELP}\n")
            return
        try:
            await route(scope, receive, send)
        except BadRequest as exc:
            await _respond(send, 400, f"{path}: {exc}\n")

    def _disconnected(self, scope: ASGIScope) -> None:
        self._rec.event("http_disconnect", call=HTTP_CALL.get(), path=scope["path"])

    @staticmethod
    async def _echo(scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        await _start(send, b"application/octet-stream")
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body, more = message.get("body", b""), message.get("more_body", False)
            if body or not more:
                await send({"type": "http.response.body", "body": body, "more_body": more})
            if not more:
                return

    @staticmethod
    async def _bytes(scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        params = _params(scope)
        n, seed = params.get("n", ""), params.get("seed", "0")
        if not (n.isdigit() and seed.isdigit()):
            raise BadRequest("needs n=BYTES (and optionally seed=S), integers")
        headers = [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", n.encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for piece in iter_bytes(int(n), int(seed)):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _headers(scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        multi = [(b"x-multi", value) for value in (b"a", b"b", b"c")]
        cookies = [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
        # ?hop=1: fields about this connection, which a host must not pass on (SE-8).
        hop = HOP_BY_HOP_RESPONSE if _params(scope).get("hop") == "1" else []
        await _respond(send, 200, "headers\n", multi + cookies + hop)

    @staticmethod
    async def _status(scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        text = scope["path"][len("/status/") :]
        if not (text.isdigit() and 200 <= int(text) <= 599):
            # ServeHTTP carries only final statuses (SH-12).
            raise BadRequest(f"expected /status/CODE with CODE from 200 to 599, got {text!r}")
        await _respond(send, int(text), f"status {int(text)}\n")

    async def _drip(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        params = _params(scope)
        count = _int_param(params, "n", 3, MAX_DRIP_PIECES)
        pause_s = _int_param(params, "ms", 100, MAX_DRIP_MS) / 1000
        await _start(send)
        try:
            for index in range(1, count + 1):
                await _send_flushed(send, f"piece {index}\n".encode())
                self._rec.event("http_piece_sent", call=HTTP_CALL.get(), index=index)
                if index < count:
                    await asyncio.sleep(pause_s)
        except OSError:  # the SDK's send fails once the client has gone
            self._disconnected(scope)
            return
        await send({"type": "http.response.body", "body": b""})

    async def _hold(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        try:
            await _start(send)
            await _send_flushed(send, b"holding\n")
        except OSError:  # gone while we were still sending
            self._disconnected(scope)
            return
        # Reads (and drops) any request body; answers nothing more, whatever it receives.
        while (await receive())["type"] != "http.disconnect":
            pass
        self._disconnected(scope)

    async def _sink(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        digest, size = hashlib.sha256(), 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                self._disconnected(scope)
                return
            body = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if body:
                size += len(body)
                digest.update(body)
                self._rec.event("http_body_progress", call=HTTP_CALL.get(), bytes=size)
        await _respond(send, 200, f"{size} {digest.hexdigest()}\n")

    def _crashing(self, send: ASGISend, limit: int) -> ASGISend:
        sent = 0

        async def die() -> NoReturn:
            await asyncio.sleep(CRASH_FLUSH_S)
            self._crash(f"crash.during_http_after_bytes: {limit} response body bytes sent")

        async def wrapped(message: ASGIMessage) -> None:
            nonlocal sent
            if message["type"] == "http.response.start":
                await send(message)
                if limit == 0:
                    await die()
                return
            if message["type"] == "http.response.body":
                body = bytes(message.get("body", b""))
                room = limit - sent
                if body and len(body) >= room:
                    if room:
                        piece = {"type": "http.response.body", "body": body[:room]}
                        await send({**piece, "more_body": True})
                    await die()
                sent += len(body)
            await send(message)

        return wrapped


# -- the plugin (hooks through the SDK) ---------------------------------------------------


FILTER_ACTIONS = {
    "keep": hooks_pb2.FILTER_ACTION_KEEP,
    "modify": hooks_pb2.FILTER_ACTION_MODIFY,
    "reject": hooks_pb2.FILTER_ACTION_REJECT,
}


class FakePlugin(Plugin):
    """A minimal correct plugin: every hook answers without error (ExecuteCommand echoes the
    command), unless the scenario limits the hooks, makes some answer an AppError
    (hook_errors), or shapes the filter's or the command's answer."""

    def __init__(self, scenario: Scenario, app: FakeApp) -> None:
        self._scenario = scenario
        self._app = app

    def implemented_hooks(self) -> list[str]:
        return [h for h in super().implemented_hooks() if self._scenario.implements(h)]

    def _fail_if_asked(self, hook: str) -> None:
        """Raise the scenario's AppError for ``hook``; the SDK answers it in ``error``."""
        error = self._scenario.hook_errors.get(hook)
        if error is not None:
            raise AppError(error.code, error.message)

    async def on_configuration_change(
        self, request: hooks_pb2.OnConfigurationChangeRequest
    ) -> hooks_pb2.OnConfigurationChangeResponse:
        self._fail_if_asked("OnConfigurationChange")
        return hooks_pb2.OnConfigurationChangeResponse()

    async def on_activate(
        self, request: hooks_pb2.OnActivateRequest
    ) -> hooks_pb2.OnActivateResponse:
        self._fail_if_asked("OnActivate")
        return hooks_pb2.OnActivateResponse()

    async def on_deactivate(
        self, request: hooks_pb2.OnDeactivateRequest
    ) -> hooks_pb2.OnDeactivateResponse:
        self._fail_if_asked("OnDeactivate")
        return hooks_pb2.OnDeactivateResponse()

    async def message_has_been_posted(
        self, request: hooks_pb2.MessageHasBeenPostedRequest
    ) -> hooks_pb2.MessageHasBeenPostedResponse:
        return hooks_pb2.MessageHasBeenPostedResponse()

    async def message_will_be_posted(
        self, request: hooks_pb2.MessageWillBePostedRequest
    ) -> hooks_pb2.MessageWillBePostedResponse:
        self._fail_if_asked("MessageWillBePosted")
        spec = self._scenario.filter
        answer = hooks_pb2.MessageWillBePostedResponse(action=FILTER_ACTIONS[spec.action])
        if spec.action == "modify":
            answer.post.CopyFrom(request.post)  # every field kept, the text appended
            answer.post.message += spec.append
        elif spec.action == "reject":
            answer.rejection_reason = spec.reason
        return answer

    async def execute_command(
        self, request: hooks_pb2.ExecuteCommandRequest
    ) -> hooks_pb2.ExecuteCommandResponse:
        self._fail_if_asked("ExecuteCommand")
        spec = self._scenario.command_response
        text = request.command if spec.text is None else spec.text
        return hooks_pb2.ExecuteCommandResponse(text=text, response_type=spec.response_type)

    def http_app(self) -> FakeApp | None:
        return self._app if self._scenario.implements("ServeHTTP") else None


class _ReplayContext:
    """A ServeHTTP context whose first read() returns the frame already read; it records
    how the request ended and counts the response body."""

    def __init__(
        self, context: AnyContext, first: object, on_request_end: Callable[[int, str, bool], None]
    ) -> None:
        self._context = context
        self._first: object | None = first
        self._on_request_end = on_request_end
        self._body_bytes = 0
        self._digest = hashlib.sha256()
        self._ended = False
        self.response_body_bytes = 0

    async def read(self) -> object:
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        try:
            frame = await self._context.read()
        except BaseException:
            self._end(False)
            raise
        if frame is EOF:
            self._end(False)
        elif isinstance(frame, hooks_pb2.HTTPRequestFrame):
            if frame.WhichOneof("frame") == "body":
                self._body_bytes += len(frame.body)
                self._digest.update(frame.body)
            elif frame.WhichOneof("frame") == "end":
                self._end(True)
        return frame

    def _end(self, complete: bool) -> None:
        if not self._ended:
            self._ended = True
            self._on_request_end(self._body_bytes, self._digest.hexdigest(), complete)

    async def write(self, frame: hooks_pb2.HTTPResponseFrame) -> None:
        await self._context.write(frame)
        if frame.WhichOneof("frame") == "body":
            self.response_body_bytes += len(frame.body)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class FakeHooks(HooksService):
    """The SDK's Hooks service, with every call recorded, counted, and delayed, hung or
    crashed on as the scenario says, before the SDK handles it."""

    def __init__(self, plugin: FakePlugin, broker: PluginBroker, runner: Runner) -> None:
        super().__init__(plugin, broker, {})
        self._runner = runner
        self._scenario = runner.scenario
        self._rec = runner.rec
        self._ids = itertools.count(1)
        self._hook_calls = 0  # every hook RPC but Implemented

    def _received(self, rpc: str, request: Message | None) -> tuple[int, int]:
        """Record the call; return its id and its number among hook calls (0: Implemented)."""
        call_id = next(self._ids)
        self._rec.event("call", call=call_id, hook=rpc, request=to_dict(request))
        if rpc == IMPLEMENTED:
            return call_id, 0
        self._hook_calls += 1
        return call_id, self._hook_calls

    async def _misbehave(self, rpc: str, call_id: int) -> None:
        crash = self._scenario.crash
        if crash is not None and rpc in crash.on:
            self._runner.crash(f"crash.on: {rpc}")
        if rpc != IMPLEMENTED and self._scenario.hook_delay_ms:
            await asyncio.sleep(self._scenario.hook_delay_ms / 1000)
        if rpc in self._scenario.hang.hooks:
            self._rec.event("hanging", call=call_id, hook=rpc)
            await forever()

    def _after(self, counted: int, context: AnyContext) -> None:
        crash = self._scenario.crash
        if crash is None or crash.after_hook_calls is None or counted != crash.after_hook_calls:
            return
        loop = asyncio.get_running_loop()
        reason = f"crash.after_hook_calls: hook call {counted} answered"

        def done(_: AnyContext) -> None:
            loop.call_later(CRASH_FLUSH_S, self._runner.crash, reason)

        context.add_done_callback(done)  # type: ignore[arg-type]  # grpc-stubs' DoneCallback

    def _outcome(self, rpc: str, exc: BaseException) -> str:
        if isinstance(exc, asyncio.CancelledError):
            return "cancelled"
        if rpc != IMPLEMENTED and rpc not in self._implemented:
            return "unimplemented"
        return f"error: {type(exc).__name__}: {exc}"

    async def _unary(
        self,
        rpc: str,
        request: Message,
        context: AnyContext,
        handle: Callable[[Any, AnyContext], Awaitable[Msg]],
    ) -> Msg:
        call_id, counted = self._received(rpc, request)
        self._after(counted, context)
        try:
            await self._misbehave(rpc, call_id)
            response = await handle(request, context)
        except BaseException as exc:
            self._rec.event("call_end", call=call_id, hook=rpc, outcome=self._outcome(rpc, exc))
            raise
        error = "error" in response.DESCRIPTOR.fields_by_name and response.HasField("error")
        self._rec.event("call_end", call=call_id, hook=rpc, outcome="app_error" if error else "ok")
        return response

    async def Implemented(
        self, request: hooks_pb2.ImplementedRequest, context: AnyContext
    ) -> hooks_pb2.ImplementedResponse:
        return await self._unary(IMPLEMENTED, request, context, super().Implemented)

    async def OnConfigurationChange(
        self, request: hooks_pb2.OnConfigurationChangeRequest, context: AnyContext
    ) -> hooks_pb2.OnConfigurationChangeResponse:
        handle = super().OnConfigurationChange
        return await self._unary("OnConfigurationChange", request, context, handle)

    async def OnActivate(
        self, request: hooks_pb2.OnActivateRequest, context: AnyContext
    ) -> hooks_pb2.OnActivateResponse:
        return await self._unary("OnActivate", request, context, super().OnActivate)

    async def OnDeactivate(
        self, request: hooks_pb2.OnDeactivateRequest, context: AnyContext
    ) -> hooks_pb2.OnDeactivateResponse:
        return await self._unary("OnDeactivate", request, context, super().OnDeactivate)

    async def MessageHasBeenPosted(
        self, request: hooks_pb2.MessageHasBeenPostedRequest, context: AnyContext
    ) -> hooks_pb2.MessageHasBeenPostedResponse:
        handle = super().MessageHasBeenPosted
        return await self._unary("MessageHasBeenPosted", request, context, handle)

    async def MessageWillBePosted(
        self, request: hooks_pb2.MessageWillBePostedRequest, context: AnyContext
    ) -> hooks_pb2.MessageWillBePostedResponse:
        handle = super().MessageWillBePosted
        return await self._unary("MessageWillBePosted", request, context, handle)

    async def ExecuteCommand(
        self, request: hooks_pb2.ExecuteCommandRequest, context: AnyContext
    ) -> hooks_pb2.ExecuteCommandResponse:
        return await self._unary("ExecuteCommand", request, context, super().ExecuteCommand)

    async def ServeHTTP(  # type: ignore[override]
        self, request_iterator: Any, context: AnyContext
    ) -> None:
        rpc = "ServeHTTP"
        if self._app is None:
            # As in the SDK: UNIMPLEMENTED at once, without waiting for a request frame.
            call_id, counted = self._received(rpc, None)
            self._after(counted, context)
            handle = super().ServeHTTP
            await self._serve_http(call_id, lambda: handle(request_iterator, context))
            return
        try:
            first = await context.read()
        except BaseException as exc:
            call_id, _ = self._received(rpc, None)
            self._rec.event("call_end", call=call_id, hook=rpc, outcome=self._outcome(rpc, exc))
            raise
        frame = first if isinstance(first, hooks_pb2.HTTPRequestFrame) else None
        call_id, counted = self._received(rpc, frame)
        HTTP_CALL.set(call_id)  # for the app's events; this call's task only
        self._after(counted, context)

        def request_end(size: int, sha256: str, complete: bool) -> None:
            self._rec.event(
                "http_request_end",
                call=call_id,
                body_bytes=size,
                body_sha256=sha256,
                complete=complete,
            )

        replay = _ReplayContext(context, first, request_end)
        handle, as_context = super().ServeHTTP, cast(AnyContext, replay)
        await self._serve_http(call_id, lambda: handle(request_iterator, as_context), replay)

    async def _serve_http(
        self,
        call_id: int,
        serve: Callable[[], Awaitable[None]],
        replay: _ReplayContext | None = None,
    ) -> None:
        rpc = "ServeHTTP"
        try:
            await self._misbehave(rpc, call_id)
            await serve()
        except BaseException as exc:
            self._rec.event("call_end", call=call_id, hook=rpc, outcome=self._outcome(rpc, exc))
            raise
        body = replay.response_body_bytes if replay else 0
        self._rec.event("call_end", call=call_id, hook=rpc, outcome="ok", response_body_bytes=body)


# -- health, controller, broker, stdio ----------------------------------------------------


class FakeHealth(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    """grpc.health.v1.Health for "" and "plugin": SERVING, NOT_SERVING, flapping, or SERVING
    only some time after the handshake; NOT_SERVING once stopping, and silent when the scenario
    hangs it. Each status answered is recorded (health_answer) before it is sent."""

    CHECK = "/grpc.health.v1.Health/Check"
    WATCH = "/grpc.health.v1.Health/Watch"

    def __init__(self, runner: Runner) -> None:
        self._scenario = runner.scenario
        self._rec = runner.rec
        self._since = time.monotonic()
        self._checks = 0
        self._stopping = False
        # serving_after_s: False until the timer fires; True for every other scenario.
        self._serving_yet = runner.scenario.health.serving_after_s is None
        self._timer: asyncio.TimerHandle | None = None
        # Replaced on every change, so that each Watch waits on the one it read the status
        # under, and no change is missed between reading the status and waiting.
        self._changed = asyncio.Event()

    def start(self) -> None:
        """The handshake is about to be written: flapping and after_s count from here."""
        self._since = time.monotonic()
        after = self._scenario.health.serving_after_s
        if after is not None:
            self._timer = asyncio.get_running_loop().call_later(after, self._become_serving)

    def stopping(self) -> None:
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _become_serving(self) -> None:
        if self._stopping:
            return
        self._serving_yet = True
        self._rec.event("health_serving", after_s=self._scenario.health.serving_after_s)
        self._notify()

    def _status(self) -> int:
        if self._stopping or not self._serving_yet:
            return NOT_SERVING
        flap = self._scenario.health.flap_every_s
        if flap is not None:
            phase = int((time.monotonic() - self._since) / flap)
            return SERVING if phase % 2 == 0 else NOT_SERVING
        return SERVING if self._scenario.health.status == "SERVING" else NOT_SERVING

    def _next_change_s(self) -> float | None:
        """Seconds until a time-driven change; None when only an event changes the status."""
        flap = self._scenario.health.flap_every_s
        if flap is None or self._stopping:
            return None
        return flap - (time.monotonic() - self._since) % flap

    def _hung(self) -> bool:
        hang = self._scenario.hang
        if not hang.health:
            return False
        if hang.health_after_checks is not None:
            return self._checks > hang.health_after_checks
        if hang.health_after_s is not None:
            return time.monotonic() - self._since >= hang.health_after_s
        return True

    def _answer(self, method: str, service: str, status: int) -> health_pb2.HealthCheckResponse:
        name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
        self._rec.event("health_answer", method=method, service=service, answer=name)
        return health_pb2.HealthCheckResponse(status=status)

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: AnyContext
    ) -> health_pb2.HealthCheckResponse:
        self._checks += 1
        self._rec.event("rpc", method=self.CHECK, request=to_dict(request))
        if self._hung():
            await forever()
        if request.service not in HEALTH_SERVICES:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return self._answer(self.CHECK, request.service, self._status())

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: AnyContext
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        self._rec.event("rpc", method=self.WATCH, request=to_dict(request))
        if self._hung():
            await forever()
        if request.service not in HEALTH_SERVICES:
            yield self._answer(self.WATCH, request.service, SERVICE_UNKNOWN)
            await forever()
        last = None
        while True:
            changed = self._changed
            status = self._status()
            if status != last:
                yield self._answer(self.WATCH, request.service, status)
                last = status
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), self._next_change_s())


class FakeController(grpc_controller_pb2_grpc.GRPCControllerServicer):
    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    async def Shutdown(
        self, request: grpc_controller_pb2.Empty, context: AnyContext
    ) -> grpc_controller_pb2.Empty:
        ignored = self._runner.scenario.ignore_shutdown
        self._runner.rec.event("shutdown_requested", ignored=ignored)
        if not ignored:
            self._runner.request_stop("shutdown")
        return grpc_controller_pb2.Empty()


class RecordingBroker(PluginBroker):
    def __init__(self, runner: Runner, dial_timeout_s: float, tls: Any) -> None:
        super().__init__(dial_timeout_s, tls)
        self._rec = runner.rec

    async def StartStream(  # type: ignore[override]
        self,
        request_iterator: AsyncIterator[grpc_broker_pb2.ConnInfo],
        context: AnyContext,
    ) -> None:
        self._rec.event("rpc", method="/plugin.GRPCBroker/StartStream", request=None)
        await super().StartStream(request_iterator, context)


class RecordingStdio(StdioService):
    def __init__(self, runner: Runner, capture: StdioCapture) -> None:
        super().__init__(capture)
        self._rec = runner.rec

    async def StreamStdio(
        self, request: empty_pb2.Empty, context: AnyContext
    ) -> AsyncIterator[grpc_stdio_pb2.StdioData]:
        self._rec.event("rpc", method="/plugin.GRPCStdio/StreamStdio", request=None)
        async for data in super().StreamStdio(request, context):
            yield data


# -- the process --------------------------------------------------------------------------


class Runner:
    def __init__(
        self,
        scenario: Scenario,
        rec: Recorder,
        config: ServeConfig,
        app_version: int,
        environ: Mapping[str, str],
    ) -> None:
        self.scenario = scenario
        self.rec = rec
        self.config = config
        self.app_version = app_version
        self.environ = environ
        self.host_pid = os.getppid()
        self.stop_reason = ""
        self._stop: asyncio.Event | None = None

    # -- stopping and crashing ------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        assert self._stop is not None
        if not self._stop.is_set():
            self.stop_reason = reason
            self._stop.set()

    def crash(self, reason: str) -> NoReturn:
        code = self.scenario.crash.exit_code if self.scenario.crash else 3
        self.rec.event("exiting", reason=reason, status=code)
        log.warning("crashing as the scenario asks (%s), exit status %d", reason, code)
        os._exit(code)

    def _on_signal(self, sig: signal.Signals) -> None:
        ignored = sig == signal.SIGINT or self.scenario.ignore_shutdown
        self.rec.event("signal", signal=sig.name, ignored=ignored)
        if not ignored:
            self.request_stop(sig.name)

    async def _watch_host(self) -> None:
        if self.host_pid == 1:
            return  # started by init: no host to outlive
        while True:
            await asyncio.sleep(self.config.parent_check_interval_s)
            if os.getppid() != self.host_pid:
                self.rec.event("host_gone", host_pid=self.host_pid)
                self.request_stop("host_gone")
                return

    async def _wait_stop(self, timeout_s: float | None = None) -> bool:
        """Wait for a stop request; True if one came within ``timeout_s``."""
        assert self._stop is not None
        try:
            await asyncio.wait_for(self._stop.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    # -- phases -----------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        watcher = asyncio.ensure_future(self._watch_host())
        try:
            return await self._run()
        finally:
            watcher.cancel()

    async def _run(self) -> int:
        scenario = self.scenario
        if scenario.spawn_grandchild is not None:
            self._spawn_grandchild(scenario.spawn_grandchild.seconds)
        if scenario.flood_stderr is not None and scenario.flood_stderr.when == "before":
            self._start_flood(os.dup(2), scenario.flood_stderr, "stderr")
        if scenario.noise_before_handshake:
            self.rec.event("noise", lines=len(scenario.noise_before_handshake))
        for line in scenario.noise_before_handshake:
            os.write(1, (line + "\n").encode())
        if scenario.slow_start_s and await self._wait_stop(scenario.slow_start_s):
            return 0
        fault = scenario.handshake
        if scenario.never_handshake:
            await self._wait_stop()
            return 0
        if fault is None:
            return await self._serve()
        if fault.exit_before is not None:
            message = fault.stderr
            if message is None:
                message = (
                    f"fakeplugin: exiting with status {fault.exit_before} before the handshake, "
                    "as the scenario asks"
                )
            os.write(2, (message + "\n").encode())
            self.stop_reason = "handshake.exit_before"
            return fault.exit_before
        if fault.close_stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.close(devnull)
            self.rec.event("stdout_closed")
        else:
            assert fault.line is not None
            line = fault.line
            # Only a line that is otherwise a whole handshake gets a sixth field.
            whole = fault.with_certificate and line.count("|") == 4
            tls = _auto_mtls(self.environ) if whole else None
            if tls is not None:
                line += "|" + base64.b64encode(tls.cert_der).decode("ascii").rstrip("=")
            self.rec.event("handshake", line=line)
            os.write(1, (line + "\n").encode())
        await self._wait_stop()
        return 0

    def _spawn_grandchild(self, seconds: float) -> None:
        # Same process group (no new session): only a host that kills the group ends it.
        child = subprocess.Popen(
            ["sleep", f"{seconds:g}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        threading.Thread(target=child.wait, name="grandchild-reaper", daemon=True).start()
        self.rec.event("grandchild", grandchild_pid=child.pid, seconds=seconds)
        log.info("grandchild pid %d", child.pid)

    def _start_flood(self, fd: int, spec: Flood, stream: str) -> None:
        total = spec.bytes
        line = b"x" * (spec.line_bytes - 1) + b"\n"

        def flood() -> None:
            self.rec.event("flood_started", bytes=total, stream=stream, line_bytes=len(line))
            block = line * max(1, 65536 // len(line))
            left = total
            try:
                while left > 0:
                    view = memoryview(block)[: min(left, len(block))]
                    while view:
                        written = os.write(fd, view)
                        view = view[written:]
                        left -= written
            except OSError as exc:
                self.rec.event("flood_failed", bytes=total - left, error=str(exc), stream=stream)
                return
            finally:
                os.close(fd)
            self.rec.event("flood_done", bytes=total, stream=stream)

        threading.Thread(target=flood, name="stderr-flood", daemon=True).start()

    async def _serve(self) -> int:
        scenario, config = self.scenario, self.config
        tls = _auto_mtls(self.environ)
        capture = StdioCapture(config.stdio_buffer_bytes)
        # Logging already goes to the original stderr (run() set it up before the capture).
        stdout_fd, stderr_fd = capture.start()

        crash_after = scenario.crash.during_http_after_bytes if scenario.crash else None
        plugin = FakePlugin(scenario, FakeApp(self.rec, crash_after, self.crash))
        server = grpc.aio.server(options=list(config.grpc_options))
        health = FakeHealth(self)
        broker = RecordingBroker(self, config.broker_dial_timeout_s, tls.client if tls else None)
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        grpc_controller_pb2_grpc.add_GRPCControllerServicer_to_server(FakeController(self), server)
        grpc_stdio_pb2_grpc.add_GRPCStdioServicer_to_server(RecordingStdio(self, capture), server)
        grpc_broker_pb2_grpc.add_GRPCBrokerServicer_to_server(broker, server)
        hooks_pb2_grpc.add_HooksServicer_to_server(FakeHooks(plugin, broker, self), server)

        listener = Listener(config.network, self.environ, tls.server if tls else None)
        try:
            listener.prepare(server)
            await server.start()
            await listener.start_front()
            line = HandshakeLine(
                CORE_PROTOCOL_VERSION,
                self.app_version,
                listener.network,
                listener.address,
                server_cert_der=tls.cert_der if tls else None,
            ).format()
            # Recorded first, so that a host that has read the line finds it in the record.
            self.rec.event("handshake", line=line)
            health.start()  # after the report, which may take a while: times count from here
            os.write(stdout_fd, (line + "\n").encode())
            # To the pipes the host reads, not into the capture for GRPCStdio.
            if scenario.flood_stdout is not None:
                self._start_flood(stdout_fd, scenario.flood_stdout, "stdout")
            else:
                os.close(stdout_fd)
            if scenario.flood_stderr is not None and scenario.flood_stderr.when == "after":
                self._start_flood(stderr_fd, scenario.flood_stderr, "stderr")
            else:
                os.close(stderr_fd)
            await self._wait_stop()
            self.rec.event("stopping", reason=self.stop_reason)
            health.stopping()
            await broker.close()
            await capture.stop(timeout_s=0.1)
            await server.stop(config.shutdown_grace_s)
            await listener.close_front()
        except ServeConfigError:
            await server.stop(0)
            await capture.stop(timeout_s=0.1)
            raise
        finally:
            listener.remove()
        return 0


def _log_to(fd: int) -> None:
    stream = os.fdopen(fd, "w", buffering=1, closefd=True)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for name in ("pluginconf", "fakeplugin"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _exit_unusable(scenario: Scenario, message: str) -> NoReturn:
    """Exit 2 (as for a bad scenario): the record cannot be made."""
    sys.stderr.write(f"fakeplugin: scenario {scenario.path}: {message}\n")
    sys.stderr.flush()
    # os._exit: a gRPC channel may hold threads that a normal exit would wait for.
    os._exit(EXIT_SCENARIO_ERROR)


def run(scenario: Scenario) -> NoReturn:
    """Be the plugin the scenario describes, then exit the process."""
    config = ServeConfig(
        magic_cookie=MagicCookie(*scenario.magic_cookie),
        protocol_versions=scenario.protocol_versions,
        network="tcp" if scenario.network == "tcp" else "unix",
    )
    environ = os.environ
    try:
        rec = Recorder(scenario.record)
    except OSError as exc:
        _exit_unusable(scenario, f"record.file: cannot open: {exc}")
    try:
        rec.first("started", **_started_fields(scenario, config))
    except ObserverUnreachable as exc:
        _exit_unusable(
            scenario,
            f"record.observer: {exc}; expected the suite's Observer service "
            "(pluginconf.conformance.v1.Observer) listening there: start it before the plugin, "
            "or fix the address",
        )
    _log_to(os.dup(2))
    status, reason, problem = 1, "magic_cookie", ""
    if check_cookie(config, environ):
        offered, invalid = parse_protocol_versions(environ.get(ENV_PROTOCOL_VERSIONS, ""))
        for entry in invalid:
            log.warning("%s: ignoring %r, not an integer", ENV_PROTOCOL_VERSIONS, entry)
        version, _ = negotiate_version(config.protocol_versions, offered)
        runner = Runner(scenario, rec, config, version, environ)
        try:
            status = asyncio.run(runner.run())
            reason = runner.stop_reason
        except ServeConfigError as exc:
            sys.stderr.write(f"plugin cannot serve: {exc}\n")
            status, reason, problem = 1, "cannot_serve", str(exc)
    else:
        sys.stderr.write(COOKIE_EXPLANATION)
        problem = f"{config.magic_cookie.key} is not {config.magic_cookie.value!r}"
    # ``problem``: why the fake refused to serve, for the suite's evidence.
    rec.event("exiting", reason=reason, status=status, **({"problem": problem} if problem else {}))
    sys.stderr.flush()
    os._exit(status)
