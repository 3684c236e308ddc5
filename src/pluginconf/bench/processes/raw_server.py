"""The raw grpcio baseline: the plugin's services answered by grpc.aio directly, no SDK.

    python -m pluginconf.bench.processes.raw_server unix:/path/to/socket

It serves the same messages as the SDK with none of its machinery: ``MessageHasBeenPosted``
returns an empty response; ``ServeHTTP`` writes each request body frame straight back, or for
``/bytes?n=N`` writes the reference generator's first N bytes. It prints ``ready`` once
listening and exits when its stdin closes, so it cannot outlive the benchmark.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any
from urllib.parse import parse_qs

import grpc

from pluginconf._grpc_compat import EOF
from pluginconf.reference.generator import iter_bytes
from pluginconf.v1 import hooks_pb2

_Frame = hooks_pb2.HTTPResponseFrame
_END = _Frame(end=hooks_pb2.HTTPResponseEnd())
_SERVICE = "pluginconf.v1.Hooks"
Context = grpc.aio.ServicerContext[hooks_pb2.HTTPRequestFrame, hooks_pb2.HTTPResponseFrame]


async def message_has_been_posted(
    request: hooks_pb2.MessageHasBeenPostedRequest, context: object
) -> hooks_pb2.MessageHasBeenPostedResponse:
    return hooks_pb2.MessageHasBeenPostedResponse()


async def serve_http(request_iterator: object, context: Context) -> None:
    first = await context.read()
    if first is EOF:
        return
    init = first.init
    await context.write(_Frame(init=hooks_pb2.HTTPResponseInit(status=200)))
    if init.path == "/bytes":
        query = parse_qs(init.raw_query)
        n = int(query["n"][0])
        chunk = int(query.get("chunk", ["65536"])[0])
        for piece in iter_bytes(n, 0, chunk):
            await context.write(_Frame(body=piece))
    else:
        while True:
            frame = await context.read()
            if frame is EOF:
                return
            kind = frame.WhichOneof("frame")
            if kind == "body":
                await context.write(_Frame(body=frame.body))
            elif kind == "end":
                break
    await context.write(_END)


def handlers() -> grpc.GenericRpcHandler[Any, Any]:
    """The two methods, registered as any grpcio server registers them."""
    return grpc.method_handlers_generic_handler(
        _SERVICE,
        {
            "MessageHasBeenPosted": grpc.unary_unary_rpc_method_handler(
                message_has_been_posted,
                request_deserializer=hooks_pb2.MessageHasBeenPostedRequest.FromString,
                response_serializer=hooks_pb2.MessageHasBeenPostedResponse.SerializeToString,
            ),
            "ServeHTTP": grpc.stream_stream_rpc_method_handler(
                serve_http,
                request_deserializer=hooks_pb2.HTTPRequestFrame.FromString,
                response_serializer=hooks_pb2.HTTPResponseFrame.SerializeToString,
            ),
        },
    )


async def serve(address: str) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handlers(),))
    server.add_insecure_port(address)
    await server.start()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
    await server.stop(0)


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
