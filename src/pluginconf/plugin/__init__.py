"""The plugin SDK: subclass Plugin, override the hooks you implement, call serve()."""

from pluginconf.plugin.base import ASGIApp, Plugin
from pluginconf.plugin.config import ServeConfig
from pluginconf.plugin.errors import AppError, BrokerError, HostAPIUnavailable, ServeConfigError
from pluginconf.plugin.hostapi import HostAPI
from pluginconf.plugin.server import run, serve

__all__ = [
    "ASGIApp",
    "AppError",
    "BrokerError",
    "HostAPI",
    "HostAPIUnavailable",
    "Plugin",
    "ServeConfig",
    "ServeConfigError",
    "run",
    "serve",
]
