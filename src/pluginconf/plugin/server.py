"""Running a Plugin as a go-plugin compatible gRPC plugin process: serve() and run().

Before serving, the process checks the plugin, the cookie and the app protocol versions; on a
failure it explains on stderr and exits 1, stdout untouched. Then ``PluginProcess``
(serving.process) serves until the host stops it, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping

from pluginconf.plugin.base import Plugin
from pluginconf.plugin.checks import check_plugin
from pluginconf.plugin.config import ServeConfig
from pluginconf.plugin.errors import ServeConfigError
from pluginconf.plugin.http.lifespan import LifespanError
from pluginconf.plugin.serving.process import PluginProcess
from pluginconf.protocol.constants import ENV_PROTOCOL_VERSIONS
from pluginconf.protocol.versions import negotiate_version, parse_protocol_versions

COOKIE_EXPLANATION = (
    "This binary is a plugin. These are not meant to be executed directly.\n"
    "Please execute the program that consumes these plugins, which will\n"
    "load any plugins automatically\n"
)


def check_cookie(config: ServeConfig, environ: Mapping[str, str]) -> bool:
    return environ.get(config.magic_cookie.key) == config.magic_cookie.value


def run(
    plugin: Plugin, config: ServeConfig | None = None, environ: Mapping[str, str] | None = None
) -> int:
    """Serve ``plugin`` until the host stops it; return the process exit status."""
    config = config or ServeConfig()
    environ = os.environ if environ is None else environ
    try:
        check_plugin(plugin)
    except ServeConfigError as exc:
        sys.stderr.write(f"plugin cannot serve: {exc}\n")
        return 1
    if not check_cookie(config, environ):
        sys.stderr.write(COOKIE_EXPLANATION)
        sys.stderr.flush()
        return 1
    offered, invalid = parse_protocol_versions(environ.get(ENV_PROTOCOL_VERSIONS, ""))
    for entry in invalid:
        sys.stderr.write(f"{ENV_PROTOCOL_VERSIONS}: ignoring {entry!r}, not an integer\n")
    version, agreed = negotiate_version(config.protocol_versions, offered)
    if not agreed:
        sys.stderr.write(
            f"no common app protocol version: host offers {offered or 'none'}, plugin speaks "
            f"{sorted(config.protocol_versions)}; offering {version} for the host to report\n"
        )
    try:
        return asyncio.run(PluginProcess(plugin, config, version, environ).run())
    except (ServeConfigError, LifespanError) as exc:
        sys.stderr.write(f"plugin cannot serve: {exc}\n")
        return 1


def serve(plugin: Plugin, config: ServeConfig | None = None) -> None:
    """Serve ``plugin`` as this process's plugin and exit when the host stops it."""
    code = run(plugin, config)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: gRPC's threads make it slow, and the host is waiting.
    os._exit(code)
