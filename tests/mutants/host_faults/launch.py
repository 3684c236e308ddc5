"""Host faults in launching a plugin (HS, IO, TR, TLS).

Its environment, process group, handshake errors, stdio draining and start timeout.
"""

from __future__ import annotations

import asyncio
import asyncio.unix_events
import contextlib
import dataclasses
import os
import signal
import tempfile
from typing import Any

from host_faults.common import fault, patch, shadow

from pluginconf.host import errors, handshake_checks, launcher
from pluginconf.host.adapter import convert as adapter_convert
from pluginconf.host.client import NotServing
from pluginconf.host.errors import LaunchError
from pluginconf.host.launcher import LaunchedPlugin, LaunchSpec
from pluginconf.host.supervision.process import PluginFailure, PluginProcess
from pluginconf.protocol.constants import (
    ENV_CLIENT_CERT,
    ENV_MAX_PORT,
    ENV_MIN_PORT,
    ENV_UNIX_SOCKET_DIR,
)

# -- launching ------------------------------------------------------------------------------


@fault("inherited-env-wins", "sets the port range only when not inherited (HS-6)")
def _() -> None:
    build_env = launcher.build_env

    def setdefault(spec: LaunchSpec, socket_dir: str, client_cert: Any) -> dict[str, str]:
        env = build_env(spec, socket_dir, client_cert)
        for key in (ENV_MIN_PORT, ENV_MAX_PORT):
            env[key] = os.environ.get(key, env[key])
        return env

    patch(launcher, "build_env", setdefault)


@fault("multiplex-passed", "passes an inherited PLUGIN_MULTIPLEX_GRPC on to the plugin (HS-7)")
def _() -> None:
    build_env = launcher.build_env

    def inherited(spec: LaunchSpec, socket_dir: str, client_cert: Any) -> dict[str, str]:
        env = build_env(spec, socket_dir, client_cert)
        if launcher.launcher.ENV_MULTIPLEX_GRPC in os.environ:
            env[launcher.launcher.ENV_MULTIPLEX_GRPC] = os.environ[
                launcher.launcher.ENV_MULTIPLEX_GRPC
            ]
        return env

    patch(launcher, "build_env", inherited)


@fault(
    "client-cert-passed",
    "passes an inherited PLUGIN_CLIENT_CERT on to a plugin started without AutoMTLS (HS-23)",
)
def _() -> None:
    build_env = launcher.build_env

    def inherited(spec: LaunchSpec, socket_dir: str, client_cert: Any) -> dict[str, str]:
        env = build_env(spec, socket_dir, client_cert)
        if client_cert is None and ENV_CLIENT_CERT in os.environ:
            env[ENV_CLIENT_CERT] = os.environ[ENV_CLIENT_CERT]
        return env

    patch(launcher, "build_env", inherited)


@fault(
    "environment-passed-through",
    "builds the plugin's environment as go-plugin's client does: its own environment, then "
    "the cookie, versions and ports; no socket directory; PLUGIN_CLIENT_CERT only with "
    "AutoMTLS, an inherited one and PLUGIN_MULTIPLEX_GRPC passed through (HS-4, HS-23, HS-7)",
)
def _() -> None:
    build_env = launcher.build_env

    def like_go_plugin(spec: LaunchSpec, socket_dir: str, client_cert: Any) -> dict[str, str]:
        env = build_env(spec, socket_dir, client_cert)  # the host's values after os.environ
        env.pop(ENV_UNIX_SOCKET_DIR)  # set only with a RunnerFunc
        for key in (ENV_UNIX_SOCKET_DIR, launcher.ENV_MULTIPLEX_GRPC, ENV_CLIENT_CERT):
            if key in os.environ and not (key == ENV_CLIENT_CERT and client_cert is not None):
                env[key] = os.environ[key]
        return env

    patch(launcher, "build_env", like_go_plugin)


@fault("shared-socket-dir", "gives every plugin process the same socket directory (HS-4)")
def _() -> None:
    made: list[str] = []

    def one_dir(prefix: str | None = None) -> str:
        if not made:
            made.append(tempfile.mkdtemp(prefix="pluginconf-shared-"))
        os.makedirs(made[0], 0o700, exist_ok=True)
        return made[0]

    patch(launcher, "tempfile", shadow(tempfile, mkdtemp=one_dir))


@fault(
    "no-process-group",
    "starts the plugin in the host's own process group, and so signals its process (HS-8)",
)
def _() -> None:
    exec_ = asyncio.create_subprocess_exec

    async def same_group(*argv: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        kwargs["start_new_session"] = False
        return await exec_(*argv, **kwargs)

    # The plugin leads no group of its own, so the host signals its pid: the group it is in
    # is the host's own. (Signalling a group of the plugin's pid, none, would stop nothing:
    # every stop would hang until the suite's guards gave up on it.)
    def process_only(self: LaunchedPlugin, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.process.pid, sig)

    patch(launcher, "asyncio", shadow(asyncio, create_subprocess_exec=same_group))
    patch(LaunchedPlugin, "_signal_group", process_only)


@fault("generic-error-kind", "reports every failure to start as launch_failed (HS-20, HL-6)")
def _() -> None:
    for cls in LaunchError.__subclasses__():
        patch(cls, "kind", LaunchError.kind)
    patch(NotServing, "kind", LaunchError.kind)


@fault(
    "error-without-line",
    "reports a refused handshake as go-plugin's client does: the field at fault, not the whole "
    "line (HS-27)",
)
def _() -> None:
    launch = PluginProcess.launch

    async def unquoted(self: PluginProcess) -> None:
        try:
            await launch(self)
        except PluginFailure as failure:
            failure.reason = failure.reason.split("; handshake line")[0]
            raise

    patch(PluginProcess, "launch", unquoted)


@fault(
    "version-mismatch-unexplained",
    "refuses a version mismatch without naming the versions it expects (HS-22)",
)
def _() -> None:
    check = launcher.check_handshake
    mismatches = {
        errors.CoreVersionMismatch: "core",
        errors.AppVersionUnsupported: "app",
    }

    def unexplained(line: str, spec: LaunchSpec) -> Any:
        try:
            return check(line, spec)
        except handshake_checks.HandshakeRefused as refused:
            which = mismatches.get(refused.error_class)
            if which is None:
                raise
            raise handshake_checks.HandshakeRefused(
                refused.error_class, f"incompatible {which} protocol version"
            ) from None

    patch(launcher, "check_handshake", unexplained)


@fault(
    "refused-left-running",
    "forgets a plugin whose handshake it refused without killing it, as go-plugin's client "
    "does after an unknown network (HS-20)",
)
def _() -> None:
    launch = PluginProcess.launch

    async def forgets(self: PluginProcess) -> None:
        try:
            await launch(self)
        except PluginFailure:
            self.launched = None  # dropped, still running
            raise

    patch(PluginProcess, "launch", forgets)


@fault("stderr-tail-one-line", "keeps only the last line of stderr for its errors (HS-26)")
def _() -> None:
    launch_spec = adapter_convert.launch_spec

    def short_tail(*args: Any, **kwargs: Any) -> LaunchSpec:
        return dataclasses.replace(launch_spec(*args, **kwargs), stderr_tail_lines=1)

    patch(adapter_convert, "launch_spec", short_tail)


@fault("ignores-start-timeout", "waits for the handshake with its default 60 s (HS-20)")
def _() -> None:
    launch_spec = adapter_convert.launch_spec

    def default_timeout(manifest: Any, policy: Any) -> LaunchSpec:
        spec = launch_spec(manifest, policy)
        return dataclasses.replace(spec, start_timeout_s=LaunchSpec(argv=()).start_timeout_s)

    patch(adapter_convert, "launch_spec", default_timeout)


@fault("start-timeout-halved", "gives up on a silent plugin at half its start timeout (HS-18)")
def _() -> None:
    launch_spec = adapter_convert.launch_spec

    def halved(manifest: Any, policy: Any) -> LaunchSpec:
        spec = launch_spec(manifest, policy)
        return dataclasses.replace(spec, start_timeout_s=spec.start_timeout_s / 2)

    patch(adapter_convert, "launch_spec", halved)


@fault("noise-refused", "takes the first line of stdout as the handshake (HS-18)")
def _() -> None:
    patch(launcher, "MAX_NOISE_LINES", 0)


@fault("no-stderr-drain", "never reads the plugin's stderr (IO-9)")
def _() -> None:
    patch(LaunchedPlugin, "start_stderr_drain", lambda self: None)


@fault("stderr-drain-stops", "reads stderr only until the handshake, for its errors (IO-9)")
def _() -> None:
    read_handshake = LaunchedPlugin.read_handshake

    async def then_stop(self: LaunchedPlugin) -> Any:
        line = await read_handshake(self)
        self._drains[0].cancel()  # the stderr drain, started at the spawn
        return line

    patch(LaunchedPlugin, "read_handshake", then_stop)


@fault(
    "stdout-stops-at-long-line",
    "stops reading stdout at a line longer than 64 KiB, as go-plugin's client does (IO-10)",
)
def _() -> None:
    drain = LaunchedPlugin._drain

    async def scanner(self: LaunchedPlugin, stream: Any, name: str, tail: Any) -> None:
        if name != "stdout":
            return await drain(self, stream, name, tail)
        while True:
            try:
                raw = await stream.readline()
            except ValueError:
                return  # the line is too long: nothing reads stdout any more
            if not raw:
                return
            tail.append(raw.decode("utf-8", "replace").rstrip("\n"))

    patch(LaunchedPlugin, "_drain", scanner)


@fault("no-stdout-drain", "never reads the plugin's stdout after the handshake (IO-9)")
def _() -> None:
    drain = LaunchedPlugin._drain

    async def stderr_only(self: LaunchedPlugin, stream: Any, name: str, tail: Any) -> None:
        if name != "stdout":
            await drain(self, stream, name, tail)

    patch(LaunchedPlugin, "_drain", stderr_only)


@fault("tcp-unsupported", "refuses plugins that listen on tcp (TR-8)")
def _() -> None:
    patch(handshake_checks, "NETWORKS", ("unix",))


@fault("mtls-ignored", "starts the plugin without AutoMTLS when the policy asks for it (TLS-8)")
def _() -> None:
    launch_spec = adapter_convert.launch_spec

    def plaintext(manifest: Any, policy: Any) -> LaunchSpec:
        return dataclasses.replace(launch_spec(manifest, policy), auto_mtls=False)

    patch(adapter_convert, "launch_spec", plaintext)
