"""The fake's Hooks service: the SDK's, with every call recorded, delayed, hung or crashed on."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import grpc
from google.protobuf.message import Message

from pluginconf._grpc_compat import EOF
from pluginconf.fake.http_app import CRASH_FLUSH_S, HTTP_CALL, HTTP_REPLAY
from pluginconf.fake.plugin import FakePlugin
from pluginconf.fake.record import to_dict
from pluginconf.fake.services import AnyContext, RecordingBroker, forever
from pluginconf.plugin.hooks import HooksService
from pluginconf.protocol.hooks import IMPLEMENTED
from pluginconf.v1 import hooks_pb2

if TYPE_CHECKING:
    from pluginconf.fake.process import Runner

# After `end`, how long the fake waits for the host's half-close (SH-1) before completing.
HALF_CLOSE_WAIT_S = 2.0

Msg = TypeVar("Msg", bound=Message)


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
        self._stopped = False
        self.eof = False
        self.complete = False
        self.response_body_bytes = 0
        # Every request frame by kind, for the framing rules (SH-1, SH-10).
        self.frames = {"init": 1, "body": 0, "end": 0, "other": 0}
        self.body_frame_max = 0
        self.empty_body_frames = 0
        self.max_frame_bytes = 0  # the largest request message received (TR-11)

    def stop_reading(self) -> None:
        """Read no more: the call may end with the request unread (SH-26)."""
        self._stopped = True

    async def read(self) -> object:
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        if self._stopped:
            self._end(False)
            return EOF
        try:
            frame = await self._context.read()
        except BaseException:
            self._end(False)
            raise
        self._count(frame)
        if frame is EOF:
            self._end(False)
        elif isinstance(frame, hooks_pb2.HTTPRequestFrame):
            self.max_frame_bytes = max(self.max_frame_bytes, frame.ByteSize())
            if frame.WhichOneof("frame") == "body":
                self._body_bytes += len(frame.body)
                self._digest.update(frame.body)
            elif frame.WhichOneof("frame") == "end":
                self.complete = True
                self._end(True)
        return frame

    def _count(self, frame: object) -> None:
        if frame is EOF:
            self.eof = True
            return
        kind = frame.WhichOneof("frame") if isinstance(frame, hooks_pb2.HTTPRequestFrame) else None
        self.frames[kind if kind in self.frames else "other"] += 1
        if kind == "body":
            size = len(frame.body)  # type: ignore[attr-defined]
            self.body_frame_max = max(self.body_frame_max, size)
            self.empty_body_frames += size == 0

    async def after_end(self) -> tuple[list[str], bool]:
        """The request frames after `end`, up to the host's half-close (or a wait)."""
        after: list[str] = []
        while not self.eof:
            try:
                frame = await asyncio.wait_for(self._context.read(), HALF_CLOSE_WAIT_S)
            except (TimeoutError, grpc.RpcError, asyncio.InvalidStateError):
                break
            self._count(frame)
            if isinstance(frame, hooks_pb2.HTTPRequestFrame):
                after.append(str(frame.WhichOneof("frame")))
        return after, self.eof

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

    def __init__(self, plugin: FakePlugin, broker: RecordingBroker, runner: Runner) -> None:
        super().__init__(plugin, broker, {})
        self._fake_broker = broker
        self._runner = runner
        self._scenario = runner.scenario
        self._rec = runner.rec
        self._ids = itertools.count(1)
        self._hook_calls = 0  # every hook RPC but Implemented

    def _received(self, rpc: str, request: Message | None, unread: str = "") -> tuple[int, int]:
        """Record the call; return its id and its number among hook calls (0: Implemented).
        ``unread``: why there is no request (a ServeHTTP frame that does not parse, a stream
        that ended before its first frame)."""
        call_id = next(self._ids)
        fields: dict[str, Any] = {"call": call_id, "hook": rpc, "request": to_dict(request)}
        if unread:
            fields["request_error"] = unread
        self._rec.event("call", **fields)
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
            status = self._scenario.hook_status.get(rpc)
            if status is not None:
                code = grpc.StatusCode[status]
                await context.abort(code, f"fakeplugin: {rpc} fails with {status} (hook_status)")
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
        answer = await self._unary(IMPLEMENTED, request, context, super().Implemented)
        # Names a newer plugin might list that no host of this protocol knows (HK-6).
        answer.hooks.extend(self._scenario.implemented_extra)
        return answer

    async def OnConfigurationChange(
        self, request: hooks_pb2.OnConfigurationChangeRequest, context: AnyContext
    ) -> hooks_pb2.OnConfigurationChangeResponse:
        handle = super().OnConfigurationChange
        return await self._unary("OnConfigurationChange", request, context, handle)

    async def OnActivate(
        self, request: hooks_pb2.OnActivateRequest, context: AnyContext
    ) -> hooks_pb2.OnActivateResponse:
        self._fake_broker.activating()
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
            call_id, _ = self._received(rpc, None, f"{type(exc).__name__}: {exc}")
            self._rec.event("call_end", call=call_id, hook=rpc, outcome=self._outcome(rpc, exc))
            raise
        frame = first if isinstance(first, hooks_pb2.HTTPRequestFrame) else None
        ended = "" if frame is not None else "the request stream ended before its first frame"
        call_id, counted = self._received(rpc, frame, ended)
        HTTP_CALL.set(call_id)  # for the app's events; this call's task only
        self._after(counted, context)

        def request_end(size: int, sha256: str, complete: bool) -> None:
            self._rec.event(
                "http_request_end",
                call=call_id,
                body_bytes=size,
                body_sha256=sha256,
                complete=complete,
                frames=dict(replay.frames),
                body_frame_max=replay.body_frame_max,
                empty_body_frames=replay.empty_body_frames,
                max_frame_bytes=max(replay.max_frame_bytes, first_size),
            )

        first_size = frame.ByteSize() if frame is not None else 0

        replay = _ReplayContext(context, first, request_end)
        HTTP_REPLAY.set(replay)
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
            if replay is not None and replay.complete:
                after, closed = await replay.after_end()
                self._rec.event(
                    "http_request_closed", call=call_id, after_end=after, half_closed=closed
                )
        except BaseException as exc:
            self._rec.event("call_end", call=call_id, hook=rpc, outcome=self._outcome(rpc, exc))
            raise
        body = replay.response_body_bytes if replay else 0
        self._rec.event("call_end", call=call_id, hook=rpc, outcome="ok", response_body_bytes=body)
