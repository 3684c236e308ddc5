#!/usr/bin/env python3
"""A plugin written with one mistake a plugin author makes, named by its argument.

sync-hook        execute_command is a plain def
wrong-signature  execute_command takes (self, request, extra)
rpc-name         the hook is a method named ExecuteCommand
returns          ExecuteCommand "/none" returns None, "/wrong" an OnActivateResponse,
                 "/block MS" calls time.sleep (the debug mode names it), else echoes
"""

from __future__ import annotations

import sys
import time
from typing import Any

from pluginconf.plugin import Plugin, serve
from pluginconf.v1 import hooks_pb2


class SyncHook(Plugin):
    def execute_command(self, request: Any) -> Any:  # type: ignore[override]
        return hooks_pb2.ExecuteCommandResponse(text="sync")


class WrongSignature(Plugin):
    async def execute_command(self, request: Any, extra: Any) -> Any:  # type: ignore[override]
        return hooks_pb2.ExecuteCommandResponse(text="never")


class RpcName(Plugin):
    async def ExecuteCommand(self, request: Any) -> Any:
        return hooks_pb2.ExecuteCommandResponse(text="never")


class Returns(Plugin):
    async def execute_command(self, request: Any) -> Any:
        words = request.command.split(" ")
        if words[0] == "/none":
            return None
        if words[0] == "/wrong":
            return hooks_pb2.OnActivateResponse()
        if words[0] == "/block":
            time.sleep(int(words[1]) / 1000)  # noqa: ASYNC251  # the mistake on purpose
        return hooks_pb2.ExecuteCommandResponse(text=request.command)


KINDS: dict[str, type[Plugin]] = {
    "sync-hook": SyncHook,
    "wrong-signature": WrongSignature,
    "rpc-name": RpcName,
    "returns": Returns,
}

if __name__ == "__main__":
    serve(KINDS[sys.argv[1]]())
