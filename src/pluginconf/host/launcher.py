"""Launching a plugin process and reading its handshake, as a go-plugin host does.

The plugin runs in its own process group (its own session), stdin from /dev/null, with the
handshake environment and a private socket directory (mode 0700). Its handshake is read under
a start timeout and checked (handshake_checks.py); every way that fails raises its own
LaunchError subclass. The channel to the plugin is opened by plugin_channel.py. Stderr, and stdout
after the handshake, are drained continuously into logging, so the plugin never blocks on a
full pipe; the last lines of stderr are kept for error messages.

Stopping (``LaunchedPlugin.stop``), in order: GRPCController.Shutdown (OK and UNAVAILABLE
both count as accepted), a grace for the process to exit, SIGTERM to the group and a grace,
SIGKILL to the group; then reap and remove the socket directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

import grpc

from pluginconf.goplugin import grpc_controller_pb2, grpc_controller_pb2_grpc
from pluginconf.host import errors
from pluginconf.host.exec_hints import exec_failure
from pluginconf.host.handshake_checks import HandshakeRefused, check_handshake
from pluginconf.host.plugin_channel import (
    TLSFailed,
    accepts_connections,
    channel_target,
    open_channel,
    wait_ready,
)
from pluginconf.protocol.constants import (
    DEFAULT_MAGIC_COOKIE,
    ENV_CLIENT_CERT,
    ENV_MAX_PORT,
    ENV_MIN_PORT,
    ENV_PROTOCOL_VERSIONS,
    ENV_UNIX_SOCKET_DIR,
    MagicCookie,
)
from pluginconf.protocol.handshake import PROTOCOL_GRPC, HandshakeLine
from pluginconf.protocol.mtls import CertificatePair, generate_certificate

MAX_NOISE_LINES = 64
_STDERR_TAIL_LINES = 20
_LINE_LIMIT = 64 * 1024
ENV_MULTIPLEX_GRPC = "PLUGIN_MULTIPLEX_GRPC"


@dataclass(frozen=True)
class LaunchSpec:
    argv: Sequence[str]
    plugin_id: str = "plugin"
    magic_cookie: MagicCookie | None = DEFAULT_MAGIC_COOKIE
    protocol_versions: Sequence[int] = (1,)
    start_timeout_s: float = 60.0
    auto_mtls: bool = False
    # Curve of the host's AutoMTLS certificate; go-plugin hosts use P-521.
    auto_mtls_curve: str = "P-256"
    # PLUGIN_MIN_PORT..PLUGIN_MAX_PORT, always set (HS-3); go-plugin's defaults.
    port_range: tuple[int, int] = (10000, 25000)
    # Extra environment, applied last; a None value removes the variable.
    env: Mapping[str, str | None] = field(default_factory=dict)
    connect_timeout_s: float = 5.0
    # Lines of stderr kept for error reports (HS-26 asks for at least 20).
    stderr_tail_lines: int = _STDERR_TAIL_LINES
    # gRPC channel options for connect() (e.g. a larger receive limit).
    channel_options: Sequence[tuple[str, int | str]] = ()
    # The go-plugin protocol the handshake must name: grpc; netrpc only for a host (the
    # conformance suite playing Mattermost's) that reads netrpc handshakes without calling.
    protocol: str = PROTOCOL_GRPC


@dataclass
class StopReport:
    """How a plugin process ended."""

    # "shutdown", "sigterm", "sigkill" or "already-exited": the step that ended it.
    ended_by: str
    exit_status: int
    duration_s: float
    shutdown_answer: str  # "ok", "unavailable", or the gRPC error


class LaunchedPlugin:
    def __init__(
        self,
        spec: LaunchSpec,
        process: asyncio.subprocess.Process,
        socket_dir: str,
        client_cert: CertificatePair | None,
    ) -> None:
        self.spec = spec
        self.process = process
        self.socket_dir = socket_dir
        self.client_cert = client_cert
        self.handshake: HandshakeLine | None = None
        self.noise_lines: list[str] = []
        # Every byte read from stdout up to and including the handshake line, as written.
        self.stdout_before_handshake = bytearray()
        self.stderr_tail: deque[str] = deque(maxlen=spec.stderr_tail_lines)
        # Stdout after the handshake: a plugin whose SDK captures stdio writes nothing here.
        self.stdout_after_handshake: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
        self.log = logging.getLogger(f"pluginconf.host.plugin.{spec.plugin_id}")
        self._drains: list[asyncio.Task[None]] = []
        self.channel: grpc.aio.Channel | None = None
        # The start timeout counts from here, however late the handshake is read (HS-17).
        self.spawned_at = time.monotonic()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _error(
        self, cls: type[errors.LaunchError], message: str, line: str | None = None
    ) -> errors.LaunchError:
        return cls(
            message,
            argv=self.spec.argv,
            line=line,
            exit_status=self.process.returncode,
            stderr_tail="\n".join(self.stderr_tail),
        )

    async def _drain(self, stream: asyncio.StreamReader, name: str, tail: deque[str]) -> None:
        async for text in read_lines(stream):
            tail.append(text)
            self.log.debug("%s: %s", name, text)

    def start_stderr_drain(self) -> None:
        assert self.process.stderr is not None
        self._drains.append(
            asyncio.ensure_future(self._drain(self.process.stderr, "stderr", self.stderr_tail))
        )

    async def wait_drained(self, timeout_s: float) -> None:
        """Wait (bounded) until the pipes read so far are drained, e.g. after an exit."""
        if self._drains:
            await asyncio.wait(self._drains, timeout=timeout_s)

    async def read_handshake(self) -> HandshakeLine:
        assert self.process.stdout is not None
        stdout = self.process.stdout
        deadline = self.spawned_at + self.spec.start_timeout_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                raw = await asyncio.wait_for(stdout.readline(), max(remaining, 0))
            except TimeoutError:
                raise self._error(
                    errors.StartTimeout,
                    f"no handshake within the start timeout of {self.spec.start_timeout_s:g}s; "
                    "the plugin must print its handshake line on stdout once it is listening",
                ) from None
            except ValueError:
                raise self._error(
                    errors.MalformedHandshake,
                    f"stdout line longer than {_LINE_LIMIT} bytes before the handshake",
                ) from None
            self.stdout_before_handshake += raw
            if not raw:
                await self._settle_exit()
                if self.process.returncode is not None:
                    raise self._error(
                        errors.ExitedBeforeHandshake,
                        "the plugin exited before printing its handshake; if it says it is "
                        "not meant to be executed directly, the magic cookie did not match",
                    )
                raise self._error(
                    errors.NoHandshake,
                    "the plugin closed stdout without printing a handshake line",
                )
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if "|" not in line:
                self.noise_lines.append(line)
                self.log.warning("stdout before handshake (skipped): %s", line)
                if len(self.noise_lines) > MAX_NOISE_LINES:
                    raise self._error(
                        errors.TooMuchNoise,
                        f"more than {MAX_NOISE_LINES} non-handshake lines on stdout before "
                        "the handshake; plugins must print the handshake first",
                    )
                continue
            self.handshake = self._check(line)
            self._drains.append(
                asyncio.ensure_future(self._drain(stdout, "stdout", self.stdout_after_handshake))
            )
            return self.handshake

    async def _settle_exit(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), 1.0)

    def _check(self, line: str) -> HandshakeLine:
        """The handshake line, checked against the spec (handshake_checks.py)."""
        try:
            return check_handshake(line, self.spec)
        except HandshakeRefused as refused:
            raise self._error(refused.error_class, refused.message, line) from None

    def target(self) -> str:
        """The gRPC target of the plugin's handshake address."""
        assert self.handshake is not None
        return channel_target(self.handshake)

    async def connect(self, options: Sequence[tuple[str, int | str]] = ()) -> grpc.aio.Channel:
        """Open the gRPC channel to the plugin and wait until it is ready."""
        assert self.handshake is not None
        channel = open_channel(
            self.handshake, self.client_cert, options or self.spec.channel_options
        )
        tls = self.client_cert is not None
        target = self.target()
        try:
            await asyncio.wait_for(
                wait_ready(channel, self.handshake, tls), self.spec.connect_timeout_s
            )
        except (TimeoutError, TLSFailed):
            await channel.close(None)
            if tls and await accepts_connections(self.handshake):
                raise self._error(
                    errors.TLSError,
                    f"{target} accepts connections but no TLS session was established "
                    f"within {self.spec.connect_timeout_s:g}s: the plugin must serve TLS with "
                    "the certificate of its handshake and accept the host's "
                    "(PLUGIN_CLIENT_CERT)",
                    self.handshake.format(),
                ) from None
            raise self._error(
                errors.AddressUnreachable,
                f"could not connect to {target} within {self.spec.connect_timeout_s:g}s",
                self.handshake.format(),
            ) from None
        self.channel = channel
        return channel

    async def wait_exit(self, timeout_s: float) -> bool:
        """Wait (bounded) for the process to exit, reaping it; whether it has."""
        try:
            await asyncio.wait_for(self.process.wait(), timeout_s)
            return True
        except TimeoutError:
            return False

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def kill_group(self) -> None:
        """SIGKILL to the whole process group: nothing of the plugin survives (SV-16)."""
        self._signal_group(signal.SIGKILL)

    async def kill(self) -> None:
        """SIGKILL to the group, then reap: the last step of every way a plugin is stopped."""
        self.kill_group()
        await self.process.wait()

    async def stop(
        self, shutdown_timeout_s: float = 2.0, grace_s: float = 2.0, term_grace_s: float = 2.0
    ) -> StopReport:
        """Stop the plugin gracefully, escalating as needed; always reaps and cleans up."""
        start = time.monotonic()
        ended_by, answer = "already-exited", "not sent"
        try:
            if self.process.returncode is None and self.channel is not None:
                answer = await self._request_shutdown(shutdown_timeout_s)
                ended_by = "shutdown"
                if not await self.wait_exit(grace_s):
                    ended_by = "sigterm"
            elif self.process.returncode is None:
                ended_by = "sigterm"
            if self.process.returncode is None:
                self._signal_group(signal.SIGTERM)
                if not await self.wait_exit(term_grace_s):
                    ended_by = "sigkill"
                    await self.kill()
        finally:
            await self.close()
        status = self.process.returncode
        assert status is not None
        return StopReport(ended_by, status, time.monotonic() - start, answer)

    async def _request_shutdown(self, timeout_s: float) -> str:
        assert self.channel is not None
        stub = grpc_controller_pb2_grpc.GRPCControllerStub(self.channel)
        try:
            await stub.Shutdown(grpc_controller_pb2.Empty(), timeout=timeout_s)
            return "ok"
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                return "unavailable"
            return f"{exc.code().name}: {exc.details()}"

    async def close(self) -> None:
        """Kill whatever is left, reap, close the channel, remove the socket directory."""
        if self.process.returncode is None:
            await self.kill()
        # Orphans the plugin left in its group (grandchildren) go too.
        self.kill_group()
        if self.channel is not None:
            await self.channel.close(None)
            self.channel = None
        for task in self._drains:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), 1.0)
            task.cancel()
        shutil.rmtree(self.socket_dir, ignore_errors=True)


async def read_lines(stream: asyncio.StreamReader) -> AsyncIterator[str]:
    """Every line of ``stream`` until EOF, decoded, without its newline; a line longer than
    the reader's limit comes in pieces, so that reading never stops on one."""
    while True:
        try:
            raw = await stream.readline()
        except ValueError:
            raw = await stream.read(_LINE_LIMIT)
        if not raw:
            return
        yield raw.decode("utf-8", "replace").rstrip("\n")


def build_env(
    spec: LaunchSpec, socket_dir: str, client_cert: CertificatePair | None
) -> dict[str, str]:
    env = dict(os.environ)
    if spec.magic_cookie is not None:
        env[spec.magic_cookie.key] = spec.magic_cookie.value
    env[ENV_PROTOCOL_VERSIONS] = ",".join(map(str, spec.protocol_versions))
    env[ENV_UNIX_SOCKET_DIR] = socket_dir
    env[ENV_MIN_PORT], env[ENV_MAX_PORT] = map(str, spec.port_range)
    if client_cert is not None:
        env[ENV_CLIENT_CERT] = client_cert.cert_pem.decode()
    else:
        env.pop(ENV_CLIENT_CERT, None)  # HS-5: an inherited one must not reach the plugin
    # HS-7: go-plugin plugins would expect broker multiplexing, which this host does not do.
    env.pop(ENV_MULTIPLEX_GRPC, None)
    for key, value in spec.env.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


async def spawn(spec: LaunchSpec) -> LaunchedPlugin:
    """Start the process; the caller reads the handshake next."""
    socket_dir = tempfile.mkdtemp(prefix="pluginconf-")  # mkdtemp makes it 0700
    client_cert = (
        generate_certificate("pluginconf-host", spec.auto_mtls_curve) if spec.auto_mtls else None
    )
    try:
        process = await asyncio.create_subprocess_exec(
            *spec.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=build_env(spec, socket_dir, client_cert),
            start_new_session=True,
            limit=_LINE_LIMIT,
        )
    except OSError as exc:
        shutil.rmtree(socket_dir, ignore_errors=True)
        raise errors.LaunchError(
            exec_failure("the plugin", exc, spec.argv[0]), argv=spec.argv
        ) from None
    except BaseException:
        # Cancelled while the process was being made: the directory must not outlive us.
        shutil.rmtree(socket_dir, ignore_errors=True)
        raise
    plugin = LaunchedPlugin(spec, process, socket_dir, client_cert)
    plugin.start_stderr_drain()
    return plugin


async def launch(spec: LaunchSpec) -> LaunchedPlugin:
    """Spawn, read the handshake and connect. On any failure the process is killed and reaped."""
    plugin = await spawn(spec)
    try:
        await plugin.read_handshake()
        await plugin.connect()
    except BaseException:
        await plugin.close()
        raise
    return plugin
