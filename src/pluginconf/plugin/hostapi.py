"""A typed client for the HostAPI the host serves through the broker."""

from __future__ import annotations

import grpc

from pluginconf.plugin.errors import AppError
from pluginconf.v1 import common_pb2, hostapi_pb2, hostapi_pb2_grpc

LOG_LEVELS = {
    "debug": hostapi_pb2.LOG_LEVEL_DEBUG,
    "info": hostapi_pb2.LOG_LEVEL_INFO,
    "warn": hostapi_pb2.LOG_LEVEL_WARN,
    "error": hostapi_pb2.LOG_LEVEL_ERROR,
}


def _raise_app_error(has_error: bool, error: common_pb2.AppError) -> None:
    if has_error:
        raise AppError(error.code, error.message)


class HostAPI:
    """Calls the host back. Application errors from the host raise AppError."""

    def __init__(self, channel: grpc.aio.Channel, timeout_s: float = 30.0) -> None:
        self._channel = channel
        self._stub = hostapi_pb2_grpc.HostAPIStub(channel)
        self._timeout = timeout_s

    async def kv_get(self, key: str) -> bytes | None:
        r = await self._stub.KVGet(hostapi_pb2.KVGetRequest(key=key), timeout=self._timeout)
        _raise_app_error(r.HasField("error"), r.error)
        return r.value if r.found else None

    async def kv_set(self, key: str, value: bytes) -> None:
        r = await self._stub.KVSet(
            hostapi_pb2.KVSetRequest(key=key, value=value), timeout=self._timeout
        )
        _raise_app_error(r.HasField("error"), r.error)

    async def kv_delete(self, key: str) -> bool:
        r = await self._stub.KVDelete(hostapi_pb2.KVDeleteRequest(key=key), timeout=self._timeout)
        _raise_app_error(r.HasField("error"), r.error)
        return r.deleted

    async def kv_compare_and_set(self, key: str, old: bytes | None, new: bytes) -> bool:
        request = hostapi_pb2.KVCompareAndSetRequest(key=key, new_value=new)
        if old is not None:
            request.old_value = old
        r = await self._stub.KVCompareAndSet(request, timeout=self._timeout)
        _raise_app_error(r.HasField("error"), r.error)
        return r.swapped

    async def log(self, level: str, message: str, **fields: str) -> None:
        if level not in LOG_LEVELS:
            raise ValueError(f"log level {level!r} is not one of {', '.join(LOG_LEVELS)}")
        r = await self._stub.Log(
            hostapi_pb2.LogRequest(level=LOG_LEVELS[level], message=message, fields=fields),
            timeout=self._timeout,
        )
        _raise_app_error(r.HasField("error"), r.error)

    async def get_configuration(self) -> dict[str, str]:
        r = await self._stub.GetConfiguration(
            hostapi_pb2.GetConfigurationRequest(), timeout=self._timeout
        )
        _raise_app_error(r.HasField("error"), r.error)
        return dict(r.configuration)

    async def close(self) -> None:
        await self._channel.close(None)
