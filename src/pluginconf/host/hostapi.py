"""An in-memory HostAPI: a key-value store per plugin, a log, the plugin's configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc

from pluginconf.v1 import common_pb2, hostapi_pb2, hostapi_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]

MAX_KEY_BYTES = 256
MAX_VALUE_BYTES = 1024 * 1024


def _bad_key(key: str) -> common_pb2.AppError | None:
    if not key:
        return common_pb2.AppError(code="invalid_argument", message="key is empty")
    if len(key.encode()) > MAX_KEY_BYTES:
        return common_pb2.AppError(
            code="invalid_argument", message=f"key is over {MAX_KEY_BYTES} bytes"
        )
    return None


def _bad_value(value: bytes) -> common_pb2.AppError | None:
    if len(value) > MAX_VALUE_BYTES:
        return common_pb2.AppError(
            code="invalid_argument", message=f"value is over {MAX_VALUE_BYTES} bytes"
        )
    return None


@dataclass
class LogRecord:
    level: str
    message: str
    fields: dict[str, str]


@dataclass
class InMemoryHostAPI(hostapi_pb2_grpc.HostAPIServicer):
    """HostAPI for one plugin. State is plain data so tests can assert on it."""

    configuration: dict[str, str] = field(default_factory=dict)
    kv: dict[str, bytes] = field(default_factory=dict)
    logs: list[LogRecord] = field(default_factory=list)

    async def KVGet(
        self, request: hostapi_pb2.KVGetRequest, context: Context
    ) -> hostapi_pb2.KVGetResponse:
        if error := _bad_key(request.key):
            return hostapi_pb2.KVGetResponse(error=error)
        value = self.kv.get(request.key)
        return hostapi_pb2.KVGetResponse(found=value is not None, value=value or b"")

    async def KVSet(
        self, request: hostapi_pb2.KVSetRequest, context: Context
    ) -> hostapi_pb2.KVSetResponse:
        if error := _bad_key(request.key) or _bad_value(request.value):
            return hostapi_pb2.KVSetResponse(error=error)
        self.kv[request.key] = request.value
        return hostapi_pb2.KVSetResponse()

    async def KVDelete(
        self, request: hostapi_pb2.KVDeleteRequest, context: Context
    ) -> hostapi_pb2.KVDeleteResponse:
        if error := _bad_key(request.key):
            return hostapi_pb2.KVDeleteResponse(error=error)
        return hostapi_pb2.KVDeleteResponse(deleted=self.kv.pop(request.key, None) is not None)

    async def KVCompareAndSet(
        self, request: hostapi_pb2.KVCompareAndSetRequest, context: Context
    ) -> hostapi_pb2.KVCompareAndSetResponse:
        if error := _bad_key(request.key) or _bad_value(request.new_value):
            return hostapi_pb2.KVCompareAndSetResponse(error=error)
        current = self.kv.get(request.key)
        expected = request.old_value if request.HasField("old_value") else None
        if current != expected:
            return hostapi_pb2.KVCompareAndSetResponse(swapped=False)
        self.kv[request.key] = request.new_value
        return hostapi_pb2.KVCompareAndSetResponse(swapped=True)

    async def Log(
        self, request: hostapi_pb2.LogRequest, context: Context
    ) -> hostapi_pb2.LogResponse:
        # HA-10: an unspecified level is info.
        number = request.level or hostapi_pb2.LOG_LEVEL_INFO
        try:
            level = hostapi_pb2.LogLevel.Name(number).removeprefix("LOG_LEVEL_").lower()
        except ValueError:
            level = f"level {number}"
        self.logs.append(LogRecord(level, request.message, dict(request.fields)))
        return hostapi_pb2.LogResponse()

    async def GetConfiguration(
        self, request: hostapi_pb2.GetConfigurationRequest, context: Context
    ) -> hostapi_pb2.GetConfigurationResponse:
        return hostapi_pb2.GetConfigurationResponse(configuration=self.configuration)
