"""Exceptions of the plugin SDK."""

from __future__ import annotations

from pluginconf.v1 import common_pb2


class AppError(Exception):
    """Raise from a hook to report an application error in the hook's response.

    The host receives it in the response's ``error`` field; the gRPC call itself succeeds.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def to_proto(self) -> common_pb2.AppError:
        return common_pb2.AppError(code=self.code, message=self.message)


class HostAPIUnavailable(Exception):
    """The host offered no HostAPI, or the broker could not reach it."""


class BrokerError(Exception):
    """A brokered connection could not be made."""


class ServeConfigError(Exception):
    """``serve()`` was called with a configuration that cannot work."""
