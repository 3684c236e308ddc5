#!/usr/bin/env python3
"""A test plugin whose shape is set by its arguments.

  --versions 1,2          app protocol versions it speaks
  --network unix|tcp
  --hooks A,B             implement only these hooks (default: ExecuteCommand)
  --cookie KEY=VALUE

ExecuteCommand: "/raise" raises RuntimeError; "/flood stdout|stderr N" writes N bytes;
"/sleep MS" sleeps; anything else echoes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from pluginconf.plugin import Plugin, ServeConfig, serve
from pluginconf.protocol import MagicCookie
from pluginconf.v1 import hooks_pb2


class Configurable(Plugin):
    async def execute_command(
        self, request: hooks_pb2.ExecuteCommandRequest
    ) -> hooks_pb2.ExecuteCommandResponse:
        words = request.command.split(" ")
        if words[0] == "/raise":
            raise RuntimeError("asked to raise")
        if words[0] == "/flood":
            stream = sys.stdout if words[1] == "stdout" else sys.stderr
            block = "x" * 1023 + "\n"
            for _ in range(int(words[2]) // 1024):
                stream.write(block)
            stream.flush()
            return hooks_pb2.ExecuteCommandResponse(text="flooded")
        if words[0] == "/sleep":
            await asyncio.sleep(int(words[1]) / 1000)
            return hooks_pb2.ExecuteCommandResponse(text="slept")
        return hooks_pb2.ExecuteCommandResponse(text=request.command)

    async def on_activate(
        self, request: hooks_pb2.OnActivateRequest
    ) -> hooks_pb2.OnActivateResponse:
        return hooks_pb2.OnActivateResponse()

    async def message_will_be_posted(
        self, request: hooks_pb2.MessageWillBePostedRequest
    ) -> hooks_pb2.MessageWillBePostedResponse:
        return hooks_pb2.MessageWillBePostedResponse()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", default="1")
    parser.add_argument("--network", default="unix")
    parser.add_argument("--hooks", default="ExecuteCommand")
    parser.add_argument("--cookie", default="PLUGINCONF_MAGIC_COOKIE=pluginconf")
    args = parser.parse_args()
    keep = set(args.hooks.split(","))
    # Hide the hooks not asked for: put the base class's method back.
    for rpc, method in Plugin.HOOK_METHODS.items():
        if rpc not in keep and method in Configurable.__dict__:
            delattr(Configurable, method)
    serve(
        Configurable(),
        ServeConfig(
            magic_cookie=MagicCookie.parse(args.cookie),
            protocol_versions=[int(v) for v in args.versions.split(",")],
            network=args.network,
        ),
    )


if __name__ == "__main__":
    main()
