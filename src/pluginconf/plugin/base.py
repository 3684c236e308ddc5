"""The plugin base class: hooks are methods; override the ones the plugin implements."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, ClassVar

from pluginconf.plugin.errors import HostAPIUnavailable
from pluginconf.plugin.hostapi import HostAPI
from pluginconf.v1 import hooks_pb2

ASGIScope = MutableMapping[str, Any]
ASGIMessage = MutableMapping[str, Any]
ASGIReceive = Callable[[], Awaitable[ASGIMessage]]
ASGISend = Callable[[ASGIMessage], Awaitable[None]]
ASGIApp = Callable[[ASGIScope, ASGIReceive, ASGISend], Awaitable[None]]


class Plugin:
    """Base class for plugins. ``Implemented`` is derived from which methods are overridden.

    Each hook receives the request message and returns the response message. Raise
    :class:`~pluginconf.plugin.errors.AppError` to report an application error; the SDK puts
    it in the response's ``error`` field. ServeHTTP is implemented by overriding
    :meth:`http_app` to return an ASGI application.
    """

    # Hook RPC name -> method name. The order is the order Implemented lists them in.
    HOOK_METHODS: ClassVar[dict[str, str]] = {
        "OnConfigurationChange": "on_configuration_change",
        "OnActivate": "on_activate",
        "OnDeactivate": "on_deactivate",
        "MessageHasBeenPosted": "message_has_been_posted",
        "MessageWillBePosted": "message_will_be_posted",
        "ExecuteCommand": "execute_command",
        "ServeHTTP": "http_app",
    }

    _host_api: HostAPI | None = None
    # Why the dial of OnActivate's broker id failed (BR-11: it names the id), if it did.
    _host_api_error: str | None = None

    async def on_configuration_change(
        self, request: hooks_pb2.OnConfigurationChangeRequest
    ) -> hooks_pb2.OnConfigurationChangeResponse:
        raise NotImplementedError

    async def on_activate(
        self, request: hooks_pb2.OnActivateRequest
    ) -> hooks_pb2.OnActivateResponse:
        raise NotImplementedError

    async def on_deactivate(
        self, request: hooks_pb2.OnDeactivateRequest
    ) -> hooks_pb2.OnDeactivateResponse:
        raise NotImplementedError

    async def message_has_been_posted(
        self, request: hooks_pb2.MessageHasBeenPostedRequest
    ) -> hooks_pb2.MessageHasBeenPostedResponse:
        raise NotImplementedError

    async def message_will_be_posted(
        self, request: hooks_pb2.MessageWillBePostedRequest
    ) -> hooks_pb2.MessageWillBePostedResponse:
        raise NotImplementedError

    async def execute_command(
        self, request: hooks_pb2.ExecuteCommandRequest
    ) -> hooks_pb2.ExecuteCommandResponse:
        raise NotImplementedError

    def http_app(self) -> ASGIApp | None:
        """Return the ASGI application that serves ServeHTTP, or None for no ServeHTTP."""
        return None

    @property
    def host_api(self) -> HostAPI:
        """The host's API, reached through the broker id given in OnActivate."""
        if self._host_api is None and self._host_api_error is not None:
            raise HostAPIUnavailable(f"the host's API is unreachable: {self._host_api_error}")
        if self._host_api is None:
            raise HostAPIUnavailable("the host offered no HostAPI (OnActivate broker id was 0)")
        return self._host_api

    def implemented_hooks(self) -> list[str]:
        """The hook RPC names this plugin implements, in a stable order."""
        hooks = []
        for rpc_name, method_name in self.HOOK_METHODS.items():
            if rpc_name == "ServeHTTP":
                if self.http_app() is not None:
                    hooks.append(rpc_name)
            elif getattr(type(self), method_name) is not getattr(Plugin, method_name):
                hooks.append(rpc_name)
        return hooks
