"""pluginconf.v1.Hooks served from a Plugin instance."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from pluginconf.plugin.base import Plugin
from pluginconf.plugin.broker import PluginBroker
from pluginconf.plugin.checks import check_response
from pluginconf.plugin.errors import AppError, BrokerError
from pluginconf.plugin.hostapi import HostAPI
from pluginconf.plugin.http.asgi import serve_http
from pluginconf.v1 import hooks_pb2, hooks_pb2_grpc

log = logging.getLogger("pluginconf.plugin.hooks")

Resp = TypeVar("Resp", bound=Message)
AnyContext = grpc.aio.ServicerContext[Any, Any]


class HooksService(hooks_pb2_grpc.HooksServicer):
    def __init__(self, plugin: Plugin, broker: PluginBroker, app_state: dict[str, Any]) -> None:
        self._plugin = plugin
        self._broker = broker
        self._app_state = app_state  # ASGI lifespan state, copied into each request scope
        self._implemented = plugin.implemented_hooks()
        self._app = plugin.http_app()

    async def _unimplemented(self, rpc: str, context: AnyContext) -> None:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            f"hook {rpc} is not implemented by this plugin (Implemented lists "
            f"{', '.join(self._implemented) or 'none'})",
        )

    async def _call(
        self,
        rpc: str,
        handler: Callable[[], Awaitable[Resp]],
        make_error_response: Callable[[AppError], Resp],
        context: AnyContext,
    ) -> Resp:
        if rpc not in self._implemented:
            await self._unimplemented(rpc, context)
        try:
            result = await handler()
        except AppError as exc:
            return make_error_response(exc)
        except Exception as exc:
            log.exception("hook %s raised", rpc)
            return make_error_response(AppError("internal", f"{type(exc).__name__}: {exc}"))
        # A wrong answer would fail in gRPC's serialiser, far from the hook that gave it.
        wrong = check_response(rpc, result)
        if wrong is not None:
            log.error("%s", wrong.message)
            return make_error_response(wrong)
        return result

    async def Implemented(
        self, request: hooks_pb2.ImplementedRequest, context: AnyContext
    ) -> hooks_pb2.ImplementedResponse:
        return hooks_pb2.ImplementedResponse(hooks=self._implemented)

    async def OnConfigurationChange(
        self, request: hooks_pb2.OnConfigurationChangeRequest, context: AnyContext
    ) -> hooks_pb2.OnConfigurationChangeResponse:
        return await self._call(
            "OnConfigurationChange",
            lambda: self._plugin.on_configuration_change(request),
            lambda e: hooks_pb2.OnConfigurationChangeResponse(error=e.to_proto()),
            context,
        )

    async def OnActivate(
        self, request: hooks_pb2.OnActivateRequest, context: AnyContext
    ) -> hooks_pb2.OnActivateResponse:
        if request.host_api_broker_id:
            try:
                channel = await self._broker.dial(request.host_api_broker_id)
                self._plugin._host_api = HostAPI(channel)
            except BrokerError as exc:
                log.warning("HostAPI unreachable: %s", str(exc))
                self._plugin._host_api_error = str(exc)
        return await self._call(
            "OnActivate",
            lambda: self._plugin.on_activate(request),
            lambda e: hooks_pb2.OnActivateResponse(error=e.to_proto()),
            context,
        )

    async def OnDeactivate(
        self, request: hooks_pb2.OnDeactivateRequest, context: AnyContext
    ) -> hooks_pb2.OnDeactivateResponse:
        return await self._call(
            "OnDeactivate",
            lambda: self._plugin.on_deactivate(request),
            lambda e: hooks_pb2.OnDeactivateResponse(error=e.to_proto()),
            context,
        )

    async def MessageHasBeenPosted(
        self, request: hooks_pb2.MessageHasBeenPostedRequest, context: AnyContext
    ) -> hooks_pb2.MessageHasBeenPostedResponse:
        def logged(e: AppError) -> hooks_pb2.MessageHasBeenPostedResponse:
            # A notification has no answer channel: the host ignores it. Say it here.
            log.warning("MessageHasBeenPosted failed: %s", e)
            return hooks_pb2.MessageHasBeenPostedResponse()

        return await self._call(
            "MessageHasBeenPosted",
            lambda: self._plugin.message_has_been_posted(request),
            logged,
            context,
        )

    async def MessageWillBePosted(
        self, request: hooks_pb2.MessageWillBePostedRequest, context: AnyContext
    ) -> hooks_pb2.MessageWillBePostedResponse:
        return await self._call(
            "MessageWillBePosted",
            lambda: self._plugin.message_will_be_posted(request),
            lambda e: hooks_pb2.MessageWillBePostedResponse(error=e.to_proto()),
            context,
        )

    async def ExecuteCommand(
        self, request: hooks_pb2.ExecuteCommandRequest, context: AnyContext
    ) -> hooks_pb2.ExecuteCommandResponse:
        return await self._call(
            "ExecuteCommand",
            lambda: self._plugin.execute_command(request),
            lambda e: hooks_pb2.ExecuteCommandResponse(error=e.to_proto()),
            context,
        )

    async def ServeHTTP(  # type: ignore[override]
        self, request_iterator: Any, context: AnyContext
    ) -> None:
        if self._app is None:
            await self._unimplemented("ServeHTTP", context)
            return
        await serve_http(self._app, context, self._app_state)
