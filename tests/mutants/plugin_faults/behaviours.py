"""Faults in the conformance plugin's behaviours (the SDK profile).

Posts, filters, commands, the KV store, logs, the broker, stdio and the grace at Shutdown.
"""

from __future__ import annotations

import json
from typing import Any

from plugin_faults.common import Mutant, fault, patch

from pluginconf.goplugin import grpc_stdio_pb2
from pluginconf.plugin import AppError, Plugin, ServeConfig
from pluginconf.plugin.serving import stdio
from pluginconf.reference.plugin import ReferencePlugin
from pluginconf.v1 import hooks_pb2

# -- the conformance plugin's behaviours (sdk) ---------------------------------------------


@fault("no-posts-hook", "does not implement MessageHasBeenPosted")
def _(m: Mutant) -> None:
    class WithoutPosts(ReferencePlugin):
        message_has_been_posted = Plugin.message_has_been_posted  # type: ignore[assignment]

    m.plugin = WithoutPosts()


@fault("filter-broken", "keeps as modify, drops props on modify, rejects without a reason")
def _(m: Mutant) -> None:
    async def broken(request: Any) -> Any:
        message = request.post.message
        if "[reject]" in message:
            return hooks_pb2.MessageWillBePostedResponse(action=hooks_pb2.FILTER_ACTION_REJECT)
        post = hooks_pb2.Post(
            id=request.post.id, message=message.replace("[rewrite]", "[rewritten]")
        )
        return hooks_pb2.MessageWillBePostedResponse(
            action=hooks_pb2.FILTER_ACTION_MODIFY, post=post
        )

    m.plugin.message_will_be_posted = broken  # type: ignore[method-assign]


@fault("command-strips", "strips the text of /echo")
def _(m: Mutant) -> None:
    async def echo(rest: str) -> Any:
        return hooks_pb2.ExecuteCommandResponse(text=rest.strip(), response_type="ephemeral")

    m.plugin._commands["/echo"] = echo


@fault("unknown-command-crashes", "fails with an internal error on an unknown command")
def _(m: Mutant) -> None:
    execute = m.plugin.execute_command

    async def crashing(request: Any) -> Any:
        name = request.command.partition(" ")[0]
        if name not in m.plugin._commands and name not in ("/kv", "/hostconfig", "/log"):
            raise KeyError(name)
        return await execute(request)

    m.plugin.execute_command = crashing  # type: ignore[method-assign]


@fault("lifecycle-unlogged", "does not log OnDeactivate in /lifecycle")
def _(m: Mutant) -> None:
    async def deactivate(request: Any) -> Any:
        return hooks_pb2.OnDeactivateResponse()

    m.plugin.on_deactivate = deactivate  # type: ignore[method-assign]


@fault("config-unsorted", "answers /config with its keys unsorted and ASCII-escaped")
def _(m: Mutant) -> None:
    async def config(rest: str) -> Any:
        return hooks_pb2.ExecuteCommandResponse(
            text=json.dumps(m.plugin.configuration), response_type="ephemeral"
        )

    m.plugin._commands["/config"] = config


@fault("kv-local", "keeps /kv data in the plugin instead of the host's store")
def _(m: Mutant) -> None:
    store: dict[str, str] = {}
    host_command = m.plugin._host_command

    async def local(name: str, rest: str) -> str:
        if name != "/kv":
            return await host_command(name, rest)
        match rest.split(" "):
            case ["set", key, *value]:
                store[key] = " ".join(value)
                return "ok"
            case ["get", key]:
                return store.get(key, "(not found)")
            case ["delete", key]:
                return "deleted" if store.pop(key, None) is not None else "absent"
            case ["cas", key, old, new]:
                if store.get(key, "-") == old:
                    store[key] = new
                    return "swapped"
                return "not swapped"
        raise AppError("invalid_argument", "usage")

    m.plugin._host_command = local  # type: ignore[method-assign]


@fault("log-dropped", "answers /log without logging through the host")
def _(m: Mutant) -> None:
    host_command = m.plugin._host_command

    async def dropping(name: str, rest: str) -> str:
        return "logged" if name == "/log" else await host_command(name, rest)

    m.plugin._host_command = dropping  # type: ignore[method-assign]


@fault("broker-no-wait", "gives up a broker dial at once when the id is not yet announced")
def _(m: Mutant) -> None:
    m.config = ServeConfig(broker_dial_timeout_s=0.05)


@fault("no-hostapi-crashes", "fails with an internal error when there is no HostAPI")
def _(m: Mutant) -> None:
    host_command = m.plugin._host_command

    async def crashing(name: str, rest: str) -> str:
        if m.plugin._host_api is None:
            raise RuntimeError("no host api")
        return await host_command(name, rest)

    m.plugin._host_command = crashing  # type: ignore[method-assign]


@fault("stdio-swapped", "sends stdout as STDERR and stderr as STDOUT")
def _(m: Mutant) -> None:
    swap = {
        grpc_stdio_pb2.StdioData.STDOUT: grpc_stdio_pb2.StdioData.STDERR,
        grpc_stdio_pb2.StdioData.STDERR: grpc_stdio_pb2.StdioData.STDOUT,
    }
    stream = stdio.StdioService.StreamStdio

    async def swapped(self: Any, request: Any, context: Any) -> Any:
        async for item in stream(self, request, context):
            yield grpc_stdio_pb2.StdioData(channel=swap[item.channel], data=item.data)

    patch(stdio.StdioService, "StreamStdio", swapped)


@fault("stdio-replayed", "replays everything already sent to each new StreamStdio")
def _(m: Mutant) -> None:
    sent: list[Any] = []

    async def replaying(self: Any, request: Any, context: Any) -> Any:
        for item in list(sent):
            yield item
        async for channel, data in self._capture.drain():
            item = grpc_stdio_pb2.StdioData(channel=channel, data=data)
            sent.append(item)
            yield item

    patch(stdio.StdioService, "StreamStdio", replaying)


@fault("no-grace", "cancels calls in progress at Shutdown")
def _(m: Mutant) -> None:
    m.config = ServeConfig(shutdown_grace_s=0.0)
