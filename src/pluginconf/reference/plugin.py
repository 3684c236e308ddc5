"""The reference plugin's hooks and commands (docs/reference-plugin.md)."""

from __future__ import annotations

import json
import os
import sys
from collections import deque
from typing import Literal

from pluginconf.plugin import AppError, HostAPIUnavailable, Plugin, ServeConfig, serve
from pluginconf.plugin.base import ASGIApp
from pluginconf.plugin.errors import BrokerError
from pluginconf.reference.http_app import ReferenceApp
from pluginconf.v1 import hooks_pb2

REJECT_MARKER = "[reject]"
REWRITE_MARKER = "[rewrite]"
REWRITTEN = "[rewritten]"


def _json(mapping: dict[str, str]) -> str:
    return json.dumps(mapping, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class ReferencePlugin(Plugin):
    def __init__(self) -> None:
        self.configuration: dict[str, str] = {}
        self.lifecycle: list[str] = []
        self.posts: deque[str] = deque(maxlen=1000)
        self.app = ReferenceApp()
        self._commands = {
            "/echo": self._cmd_echo,
            "/lifecycle": lambda _: self._text(",".join(self.lifecycle)),
            "/posts": lambda _: self._text(",".join(self.posts)),
            "/config": lambda _: self._text(_json(self.configuration)),
            "/print": self._cmd_print,
        }

    @staticmethod
    async def _text(text: str) -> hooks_pb2.ExecuteCommandResponse:
        return hooks_pb2.ExecuteCommandResponse(text=text, response_type="ephemeral")

    # -- lifecycle ------------------------------------------------------------------------

    async def on_configuration_change(
        self, request: hooks_pb2.OnConfigurationChangeRequest
    ) -> hooks_pb2.OnConfigurationChangeResponse:
        self.lifecycle.append("OnConfigurationChange")
        self.configuration = dict(request.configuration)
        if "fail_configuration" in self.configuration:
            raise AppError("configuration_rejected", self.configuration["fail_configuration"])
        return hooks_pb2.OnConfigurationChangeResponse()

    async def on_activate(
        self, request: hooks_pb2.OnActivateRequest
    ) -> hooks_pb2.OnActivateResponse:
        self.lifecycle.append("OnActivate")
        if "fail_activation" in self.configuration:
            raise AppError("activation_failed", self.configuration["fail_activation"])
        return hooks_pb2.OnActivateResponse()

    async def on_deactivate(
        self, request: hooks_pb2.OnDeactivateRequest
    ) -> hooks_pb2.OnDeactivateResponse:
        self.lifecycle.append("OnDeactivate")
        return hooks_pb2.OnDeactivateResponse()

    # -- posts ----------------------------------------------------------------------------

    async def message_has_been_posted(
        self, request: hooks_pb2.MessageHasBeenPostedRequest
    ) -> hooks_pb2.MessageHasBeenPostedResponse:
        self.posts.append(request.post.id)
        return hooks_pb2.MessageHasBeenPostedResponse()

    async def message_will_be_posted(
        self, request: hooks_pb2.MessageWillBePostedRequest
    ) -> hooks_pb2.MessageWillBePostedResponse:
        message = request.post.message
        if REJECT_MARKER in message:
            return hooks_pb2.MessageWillBePostedResponse(
                action=hooks_pb2.FILTER_ACTION_REJECT,
                rejection_reason=f"rejected by reference plugin: message contains {REJECT_MARKER}",
            )
        if REWRITE_MARKER in message:
            post = hooks_pb2.Post()
            post.CopyFrom(request.post)
            post.message = message.replace(REWRITE_MARKER, REWRITTEN)
            post.props["rewritten_by"] = "pluginconf-reference"
            return hooks_pb2.MessageWillBePostedResponse(
                action=hooks_pb2.FILTER_ACTION_MODIFY, post=post
            )
        return hooks_pb2.MessageWillBePostedResponse(action=hooks_pb2.FILTER_ACTION_KEEP)

    # -- commands -------------------------------------------------------------------------

    async def execute_command(
        self, request: hooks_pb2.ExecuteCommandRequest
    ) -> hooks_pb2.ExecuteCommandResponse:
        name, _, rest = request.command.partition(" ")
        rest = rest.lstrip(" ")
        if name in self._commands:
            return await self._commands[name](rest)
        if name in ("/kv", "/hostconfig", "/log"):
            try:
                return await self._text(await self._host_command(name, rest))
            except (HostAPIUnavailable, BrokerError) as exc:
                raise AppError("host_api_unavailable", str(exc)) from None
        known = ", ".join(sorted([*self._commands, "/kv", "/hostconfig", "/log"]))
        raise AppError("unknown_command", f"unknown command {name!r}; known commands: {known}")

    async def _cmd_echo(self, rest: str) -> hooks_pb2.ExecuteCommandResponse:
        return await self._text(rest)

    async def _cmd_print(self, rest: str) -> hooks_pb2.ExecuteCommandResponse:
        stream_name, _, text = rest.partition(" ")
        if stream_name not in ("stdout", "stderr"):
            raise AppError("invalid_argument", "usage: /print stdout|stderr TEXT")
        # To the descriptor, beneath Python's streams, as native code and children write:
        # a capture of sys.stdout alone would miss it (IO-2).
        stream = sys.stdout if stream_name == "stdout" else sys.stderr
        stream.flush()
        data = memoryview(f"{text}\n".encode("utf-8", "surrogateescape"))
        while data:
            data = data[os.write(1 if stream_name == "stdout" else 2, data) :]
        return await self._text("printed")

    async def _host_command(self, name: str, rest: str) -> str:
        api = self.host_api
        if name == "/hostconfig":
            return _json(await api.get_configuration())
        if name == "/log":
            level, _, text = rest.partition(" ")
            try:
                await api.log(level, text)
            except ValueError as exc:
                raise AppError("invalid_argument", str(exc)) from None
            return "logged"
        args = rest.split(" ")
        match args:
            case ["set", key, *value]:
                await api.kv_set(key, " ".join(value).encode())
                return "ok"
            case ["get", key]:
                got = await api.kv_get(key)
                return "(not found)" if got is None else got.decode("utf-8", "replace")
            case ["delete", key]:
                return "deleted" if await api.kv_delete(key) else "absent"
            case ["cas", key, old, new]:
                swapped = await api.kv_compare_and_set(
                    key, None if old == "-" else old.encode(), new.encode()
                )
                return "swapped" if swapped else "not swapped"
        raise AppError(
            "invalid_argument",
            "usage: /kv set KEY VALUE | /kv get KEY | /kv delete KEY | /kv cas KEY OLD|- NEW",
        )

    def http_app(self) -> ASGIApp:
        return self.app


def main(network: Literal["unix", "tcp"] = "unix") -> None:
    serve(ReferencePlugin(), ServeConfig(network=network))
