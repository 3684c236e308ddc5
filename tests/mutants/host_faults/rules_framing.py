"""Host faults that break one requirement each (issue 15): framing to resources.

Request framing, headers, early responses, states, signals, body limits and resources.
"""

from __future__ import annotations

import asyncio
import asyncio.unix_events
import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

from host_faults.common import exchange_streams, fault, patch

from pluginconf.host import environment
from pluginconf.host.adapter import convert as adapter_convert
from pluginconf.host.adapter import service as adapter_service
from pluginconf.host.broker import HostBroker
from pluginconf.host.client import PluginClient
from pluginconf.host.environment import Environment
from pluginconf.host.http import front as http_front
from pluginconf.host.http.front import HTTPFront, _Exchange
from pluginconf.host.supervision.breaker import CircuitBreaker, CircuitState
from pluginconf.host.supervision.states import PluginState
from pluginconf.host.supervision.supervisor import Supervisor
from pluginconf.protocol.constants import (
    HOP_BY_HOP_HEADERS,
)
from pluginconf.units import MIB
from pluginconf.v1 import hooks_pb2

# -- request framing, headers, early responses, states, signals (issue 15) ------------------


class _CallProxy:
    """An exchange's ServeHTTP call with its request writes changed by a fault."""

    def __init__(self, call: Any) -> None:
        self._call = call

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)


def _request_writes(make: Callable[[Any], _CallProxy]) -> None:
    def wrap(exchange: _Exchange) -> None:
        exchange.call = make(exchange.call)

    exchange_streams(wrap)


def _is_end(frame: Any) -> bool:
    return bool(frame.WhichOneof("frame") == "end")


@fault("end-sent-twice", "sends the request's end frame twice (SH-1)")
def _() -> None:
    class Twice(_CallProxy):
        async def write(self, frame: Any) -> None:
            await self._call.write(frame)
            if _is_end(frame):  # a retried write of the last frame
                await self._call.write(frame)

    _request_writes(Twice)


@fault("no-half-close", "never half-closes the request stream after its end frame (SH-1)")
def _() -> None:
    class Open(_CallProxy):
        async def done_writing(self) -> None:
            return None

    _request_writes(Open)


@fault(
    "empty-body-frames",
    "forwards the final, empty ASGI body message as an empty body frame (SH-10)",
)
def _() -> None:
    class Empty(_CallProxy):
        async def write(self, frame: Any) -> None:
            if _is_end(frame):
                await self._call.write(hooks_pb2.HTTPRequestFrame(body=b""))
            await self._call.write(frame)

    _request_writes(Empty)


@fault(
    "4mib-body-frames",
    "batches request body frames up to just under the 4 MiB message limit (SH-10)",
)
def _() -> None:
    class Batched(_CallProxy):
        def __init__(self, call: Any) -> None:
            super().__init__(call)
            self._held = bytearray()

        async def write(self, frame: Any) -> None:
            if frame.WhichOneof("frame") == "body":
                self._held += frame.body
                if len(self._held) < 4 * MIB - 1024:
                    return
            if self._held:
                await self._call.write(hooks_pb2.HTTPRequestFrame(body=bytes(self._held)))
                self._held.clear()
            if frame.WhichOneof("frame") != "body":
                await self._call.write(frame)

    _request_writes(Batched)


@fault(
    "connection-names-case-sensitive",
    "matches the fields named in Connection against header names case-sensitively (SH-6)",
)
def _() -> None:
    def exact(headers: list[tuple[bytes, bytes]]) -> set[str]:
        named = set(HOP_BY_HOP_HEADERS)
        for name, value in headers:
            if name.lower() == b"connection":
                named |= {v.strip() for v in value.decode("latin-1").split(",") if v.strip()}
        return named

    patch(http_front, "_hop_by_hop", exact)


@fault("empty-header-values-dropped", "drops request header values that are empty (SH-5)")
def _() -> None:
    grouped = http_front.request_headers

    def non_empty(headers: list[tuple[bytes, bytes]]) -> Any:
        return grouped([(n, v) for n, v in headers if v.strip()])

    patch(http_front, "request_headers", non_empty)


@fault(
    "response-after-request",
    "completes a response only once the whole request was sent to the plugin, aborting it "
    "when that fails (SH-18, SH-26)",
)
def _() -> None:
    write_request, relay = _Exchange._write_request, _Exchange._relay_response

    async def recorded(self: _Exchange) -> None:
        self.mutant_writer = asyncio.current_task()  # type: ignore[attr-defined]
        await write_request(self)

    async def in_order(self: _Exchange) -> None:
        send = self.send

        async def after_request(message: Any) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                writer = self.mutant_writer  # type: ignore[attr-defined]
                await asyncio.wait({writer})
                if writer.cancelled() or writer.exception() is not None:
                    raise ConnectionError("the request body could not be sent in full")
            await send(message)

        self.send = after_request
        await relay(self)

    patch(_Exchange, "_write_request", recorded)
    patch(_Exchange, "_relay_response", in_order)


@fault(
    "breaker-success-keeps-count",
    "a success closes a half-open circuit but leaves the failure count as it was (SV-11)",
)
def _() -> None:
    def closes_only(self: CircuitBreaker) -> None:
        self._trial_in_flight = False
        self.state = CircuitState.CLOSED

    patch(CircuitBreaker, "record_success", closes_only)


@fault(
    "restart-first-configuration",
    "starts every new process with the configuration the plugin was loaded with (LC-1)",
)
def _() -> None:
    init, activate = Supervisor.__init__, Supervisor._activate

    def remembered(self: Supervisor, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.mutant_first = dict(self.configuration)  # type: ignore[attr-defined]

    async def from_manifest(self: Supervisor, client: PluginClient, broker_id: int) -> None:
        newest = self.configuration
        self.configuration = self.mutant_first  # type: ignore[attr-defined]
        try:
            await activate(self, client, broker_id)
        finally:
            self.configuration = newest

    patch(Supervisor, "__init__", remembered)
    patch(Supervisor, "_activate", from_manifest)


@fault(
    "refused-configuration-reverted",
    "goes back to the previous configuration when an active plugin refuses a new one (LC-5)",
)
def _() -> None:
    change = Supervisor.change_configuration

    async def reverting(self: Supervisor, configuration: dict[str, str]) -> Any:
        previous = dict(self.configuration)
        error = await change(self, configuration)
        if error is not None:
            self._store_configuration(previous)
        return error

    patch(Supervisor, "change_configuration", reverting)


@fault("crash-without-reason", "records `crashed` transitions without their reason (SV-2)")
def _() -> None:
    transition = Supervisor._transition

    async def bare(self: Supervisor, new: PluginState, reason: str = "", **details: Any) -> None:
        if new is PluginState.CRASHED:
            reason = ""
        await transition(self, new, reason, **details)

    patch(Supervisor, "_transition", bare)


@fault("signal-kills-plugins", "on SIGTERM or SIGINT, SIGKILLs its plugins and exits (SV-19)")
def _() -> None:
    stop_all = Environment.stop_all

    async def killed(self: Environment) -> None:
        for supervisor_ in list(self.plugins.values()):
            if supervisor_.process is not None:
                await supervisor_.process.kill()
        await stop_all(self)

    patch(Environment, "stop_all", killed)


@fault(
    "signal-stops-one-by-one", "on SIGTERM or SIGINT, stops its plugins one after another (SV-19)"
)
def _() -> None:
    async def sequential(self: Environment) -> None:
        for supervisor_ in list(self.plugins.values()):
            await supervisor_.disable()

    patch(Environment, "stop_all", sequential)


@fault("modify-without-post-passed", "passes on the empty post of a MODIFY without one (FL-3)")
def _() -> None:
    unusable = environment._unusable_filter_answer

    def post_not_checked(reply: hooks_pb2.MessageWillBePostedResponse) -> str:
        problem = unusable(reply)
        return "" if problem.startswith("FILTER_ACTION_MODIFY") else problem

    patch(environment, "_unusable_filter_answer", post_not_checked)


@fault(
    "unknown-action-rejects",
    "maps filter actions through a table that clamps unknown numbers to REJECT (FL-6)",
)
def _() -> None:
    call = Supervisor.call

    async def clamped(self: Supervisor, hook: str, request: Any, timeout_s: Any = None) -> Any:
        reply = await call(self, hook, request, timeout_s)
        if hook == "MessageWillBePosted" and reply.action > hooks_pb2.FILTER_ACTION_REJECT:
            reply.action = hooks_pb2.FILTER_ACTION_REJECT
            reply.rejection_reason = reply.rejection_reason or "unknown action"
        return reply

    patch(Supervisor, "call", clamped)


@fault(
    "413-after-plugin",
    "enforces the body limit only while streaming, after calling the plugin, whatever "
    "Content-Length declares (SE-7)",
)
def _() -> None:
    patch(HTTPFront, "_refuses_declared", lambda self, declared, limit: False)


@fault("exact-limit-refused", "refuses a body of exactly the limit (SE-7)")
def _() -> None:
    def at_limit(size: int | None, limit: int | None) -> bool:
        return limit is not None and size is not None and size >= limit

    patch(http_front, "over_limit", at_limit)


@fault("streamed-limit-unchecked", "checks only Content-Length against the body limit (SE-7)")
def _() -> None:
    def unlimited(exchange: _Exchange) -> None:
        exchange.max_body = None

    exchange_streams(unlimited)


@fault(
    "over-limit-ends-cleanly",
    "ends a started response normally when the streamed body passes the limit (SE-7)",
)
def _() -> None:
    fail = _Exchange._fail

    async def clean(self: _Exchange, exc: BaseException) -> None:
        if self.too_large and self.started and not self.client_gone:
            self.call.cancel()
            await self.send({"type": "http.response.body", "body": b""})
            return
        await fail(self, exc)

    patch(_Exchange, "_fail", clean)


@fault(
    "watch-newest-only",
    "WatchPlugin sends the newest status, skipping changes queued meanwhile (SV-2)",
)
def _() -> None:
    async def newest_only(
        self: adapter_service.HostControlService, request: Any, context: Any
    ) -> Any:
        supervisor_ = await self._supervisor(request.plugin_id, context)
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def on_change(event: Any) -> None:
            queue.put_nowait(adapter_convert.plugin_status(supervisor_))

        first = adapter_convert.plugin_status(supervisor_)
        supervisor_.listeners.append(on_change)
        watchers = self._watchers.setdefault(request.plugin_id, set())
        watchers.add(queue)
        if self._watches_ended:
            queue.put_nowait(None)
        try:
            yield first
            while (status := await queue.get()) is not None:
                while not queue.empty():  # only the newest goes out
                    status = queue.get_nowait()
                    if status is None:
                        return
                yield status
        finally:
            if on_change in supervisor_.listeners:
                supervisor_.listeners.remove(on_change)
            watchers.discard(queue)

    patch(adapter_service.HostControlService, "WatchPlugin", newest_only)


_SERVER_REGISTRY: list[Any] = []


@fault(
    "broker-servers-kept",
    "ends a stopped process's broker stream but leaves the servers it announced open in its "
    "registry of servers (SV-18)",
)
def _() -> None:
    from pluginconf.host.broker import HostBroker

    async def stream_only(self: HostBroker) -> None:
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        _SERVER_REGISTRY.extend(self._servers)
        self._servers.clear()

    patch(HostBroker, "close", stream_only)


_ACCESS_LOG: list[bytes] = []


@fault("request-bodies-kept", "keeps every request body it passed on, for its access log (SH-19)")
def _() -> None:
    def logged(exchange: _Exchange) -> None:
        receive = exchange.receive

        async def keeping() -> Any:
            message = await receive()
            if message.get("body"):
                _ACCESS_LOG.append(bytes(message["body"]))
            return message

        exchange.receive = keeping

    exchange_streams(logged)


@fault(
    "restart-window-ignored",
    "ignores the configured restart window, counting failures over its default hour (SV-9)",
)
def _() -> None:
    config = adapter_convert.supervisor_config

    def hour(policy: Any, base: Any = None) -> Any:
        return dataclasses.replace(config(policy, base), restart_window_s=3600.0)

    patch(adapter_convert, "supervisor_config", hour)
