"""The fake's HostAPI calls (scenario key ``host_api``): each operation's outcome as plain
data, recorded as a ``host_api`` event and, for ``hostapi [...]`` commands, answered."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import grpc

from pluginconf.fake.scenario.hostapi import Op
from pluginconf.v1 import common_pb2, hostapi_pb2, hostapi_pb2_grpc

LEVELS = {
    "unspecified": hostapi_pb2.LOG_LEVEL_UNSPECIFIED,
    "debug": hostapi_pb2.LOG_LEVEL_DEBUG,
    "info": hostapi_pb2.LOG_LEVEL_INFO,
    "warn": hostapi_pb2.LOG_LEVEL_WARN,
    "error": hostapi_pb2.LOG_LEVEL_ERROR,
}
SHOWN_VALUE_BYTES = 256
CALL_TIMEOUT_S = 30.0


def _value_fields(value: bytes) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "value_len": len(value),
        "value_sha256": hashlib.sha256(value).hexdigest(),
    }
    if len(value) <= SHOWN_VALUE_BYTES:
        try:
            fields["value"] = value.decode()
        except UnicodeDecodeError:
            fields["value_hex"] = value.hex()
    return fields


def _app_error(response: Any) -> dict[str, Any]:
    if not response.HasField("error"):
        return {}
    error: common_pb2.AppError = response.error
    return {"error": {"code": error.code, "message": error.message}}


class HostAPICaller:
    """Runs scenario operations against the host's HostAPI over one brokered channel."""

    def __init__(self, channel: grpc.aio.Channel | None, unavailable: str = "") -> None:
        self._channel = channel
        self._stub: hostapi_pb2_grpc.HostAPIAsyncStub | None = None
        if channel is not None:
            self._stub = hostapi_pb2_grpc.HostAPIStub(channel)
        self.unavailable = unavailable

    async def run(self, op: Op) -> dict[str, Any]:
        result: dict[str, Any] = {"op": op.op}
        if op.key or op.op.startswith("kv_"):
            result["key_len"] = len(op.key.encode())
            if len(op.key) <= SHOWN_VALUE_BYTES:
                result["key"] = op.key
        if self._stub is None:
            result["status"] = f"NO_HOST_API: {self.unavailable}"
            return result
        try:
            result.update(await self._call(self._stub, op))
            result["status"] = "OK"
        except grpc.aio.AioRpcError as exc:
            result["status"] = f"{exc.code().name}: {exc.details()}"
        return result

    async def _call(self, stub: hostapi_pb2_grpc.HostAPIAsyncStub, op: Op) -> dict[str, Any]:
        t = CALL_TIMEOUT_S
        if op.op == "kv_get":
            got = await stub.KVGet(hostapi_pb2.KVGetRequest(key=op.key), timeout=t)
            fields = {"found": got.found, **_value_fields(got.value)}
            return {**fields, **_app_error(got)}
        if op.op == "kv_set":
            assert op.value is not None
            done = await stub.KVSet(hostapi_pb2.KVSetRequest(key=op.key, value=op.value), timeout=t)
            return {"value_len": len(op.value), **_app_error(done)}
        if op.op == "kv_delete":
            gone = await stub.KVDelete(hostapi_pb2.KVDeleteRequest(key=op.key), timeout=t)
            return {"deleted": gone.deleted, **_app_error(gone)}
        if op.op == "kv_cas":
            return await self._cas(stub, op)
        if op.op == "log":
            request = hostapi_pb2.LogRequest(
                level=LEVELS[op.level], message=op.message, fields=op.fields
            )
            return {"level": op.level, **_app_error(await stub.Log(request, timeout=t))}
        got_conf = await stub.GetConfiguration(hostapi_pb2.GetConfigurationRequest(), timeout=t)
        return {"configuration": dict(got_conf.configuration), **_app_error(got_conf)}

    async def _cas(self, stub: hostapi_pb2_grpc.HostAPIAsyncStub, op: Op) -> dict[str, Any]:
        def request(i: int) -> hostapi_pb2.KVCompareAndSetRequest:
            new = op.new if op.concurrent == 1 else op.new + f"#{i}".encode()
            message = hostapi_pb2.KVCompareAndSetRequest(key=op.key, new_value=new)
            if op.old is not None:
                message.old_value = op.old  # present, even when empty
            return message

        calls = [
            stub.KVCompareAndSet(request(i), timeout=CALL_TIMEOUT_S) for i in range(op.concurrent)
        ]
        answers = await asyncio.gather(*calls)
        swapped = [i for i, a in enumerate(answers) if a.swapped]
        fields: dict[str, Any] = {"swapped": bool(swapped), "old_present": op.old is not None}
        if op.concurrent > 1:
            fields.update(concurrent=op.concurrent, swapped_count=len(swapped), winners=swapped)
        errors = [_app_error(a) for a in answers if a.HasField("error")]
        if errors:
            fields.update(errors[0])
        return fields

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)
