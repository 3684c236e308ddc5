"""The host under test: its adapter process, started once per worker and kept while it lives.

The adapter runs in a process group of its own with PLUGINCONF_CONTROL_ADDRESS naming a unix
socket in a private directory; the suite waits (bounded) for HostControl to answer there.
Closing sends SIGTERM (the adapter then stops its plugins), waits, and SIGKILLs the group;
the directory goes with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import signal
import tempfile
import time
from collections import deque
from collections.abc import Mapping, Sequence

import grpc

from pluginconf.control import control_pb2, control_pb2_grpc
from pluginconf.host.errors import describe_exit_status
from pluginconf.host.exec_hints import exec_failure
from pluginconf.host.launcher import read_lines
from pluginconf.runner.plugin.shared import TargetUnusable

CONTROL_ADDRESS_ENV = "PLUGINCONF_CONTROL_ADDRESS"
_STDERR_LINES = 40
_CONTROL_RECEIVE = 16 * 1024 * 1024
_CONTROL_OPTIONS = [
    ("grpc.max_receive_message_length", _CONTROL_RECEIVE),
    # The adapter is still starting when the channel first tries its socket: gRPC's default
    # reconnect backoff (1 s, then longer) would add a second to every start.
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 200),
]
# What the adapter gets to stop its plugins on SIGTERM: the stop sequence's worst case.
_STOP_GRACE_S = 20.0
# Room for the host's socket directory and socket name under the adapter's TMPDIR.
_MAX_WORKDIR = 56
# The adapter inherits these wrong handshake variables, as a host may from its own
# environment. go-plugin's client sets each of them itself, after the inherited environment,
# and Go keeps the last value: every host's own values must take precedence (HS-6).
INHERITED_DECOYS = {
    "PLUGINCONF_MAGIC_COOKIE": "inherited-decoy",
    "PLUGIN_PROTOCOL_VERSIONS": "97,98",
    "PLUGIN_MIN_PORT": "3",
    "PLUGIN_MAX_PORT": "4",
}
# Decoys that only a pluginconf host must scrub (HS-4, HS-23, HS-7): go-plugin's client passes
# them through, and a plugin that gets them refuses to start or serves TLS. Only the cases
# that check those rules give them, to an adapter of their own: one cause, one case.
SCRUBBED_DECOYS = {
    "PLUGIN_UNIX_SOCKET_DIR": "/nonexistent/inherited-decoy",
    "PLUGIN_MULTIPLEX_GRPC": "true",
    "PLUGIN_CLIENT_CERT": "inherited-decoy",
}


def _short_workdir() -> str:
    """A private directory with a short path: the host makes its plugins' socket directories
    in it, and a unix socket path has at most 107 bytes."""
    workdir = tempfile.mkdtemp(prefix="pch-")
    if len(workdir) > _MAX_WORKDIR:
        os.rmdir(workdir)
        workdir = tempfile.mkdtemp(prefix="pch-", dir="/tmp")
    return workdir


class AdapterUnusable(TargetUnusable):
    """The adapter could not be started, or stopped answering; the message says how."""


class AdapterProcess:
    def __init__(
        self,
        argv: Sequence[str],
        start_timeout_s: float,
        env: Mapping[str, str | None],
        inherited: Mapping[str, str] = INHERITED_DECOYS,
    ) -> None:
        self.argv = list(argv)
        self.start_timeout_s = start_timeout_s
        self._env = env
        self.inherited = dict(inherited)
        self.workdir = _short_workdir()
        self.control_target = f"unix:{os.path.join(self.workdir, 'control.sock')}"
        self.process: asyncio.subprocess.Process | None = None
        self.channel: grpc.aio.Channel | None = None
        self.control: control_pb2_grpc.HostControlAsyncStub | None = None
        self.info = control_pb2.HostInfo()
        self.stderr_tail: deque[str] = deque(maxlen=_STDERR_LINES)
        self._drain: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        env = dict(os.environ)
        env.update(self.inherited)
        for key, value in self._env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        env[CONTROL_ADDRESS_ENV] = self.control_target
        # The host's temporary files (its plugins' socket directories, HS-4) go in the
        # suite's directory, so that not even a host killed mid-case leaves them behind.
        tmpdir = os.path.join(self.workdir, "t")
        os.mkdir(tmpdir, 0o700)
        env["TMPDIR"] = tmpdir
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise AdapterUnusable(
                exec_failure("the adapter", exc, self.argv[0])
                + f"\nadapter command: {shlex.join(self.argv)}"
            ) from None
        assert self.process.stderr is not None
        self._drain = asyncio.create_task(self._read_stderr(self.process.stderr))
        # A plugin's 4 MiB answer (TR-10) comes back inside HostControl's own message.
        self.channel = grpc.aio.insecure_channel(self.control_target, options=_CONTROL_OPTIONS)
        self.control = control_pb2_grpc.HostControlStub(self.channel)
        await self._wait_ready()

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        # Drained continuously, so that a chatty adapter never blocks on a full pipe.
        async for text in read_lines(stream):
            self.stderr_tail.append(text)

    async def _wait_ready(self) -> None:
        assert self.process is not None
        assert self.channel is not None
        assert self.control is not None
        deadline = time.monotonic() + self.start_timeout_s
        exited = asyncio.ensure_future(self.process.wait())
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AdapterUnusable(
                        f"the adapter did not serve HostControl at {self.control_target} "
                        f"within --start-timeout {self.start_timeout_s:g}s (it must listen at "
                        f"the address in {CONTROL_ADDRESS_ENV}; if it only needs longer to "
                        f"start, give it more with --start-timeout SECONDS)\n{self.evidence()}"
                    )
                ready = asyncio.ensure_future(self.channel.channel_ready())
                done, _ = await asyncio.wait(
                    {ready, exited}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                ready.cancel()
                if exited in done:
                    await self._settle()
                    raise AdapterUnusable(
                        f"the adapter exited before serving HostControl "
                        f"({describe_exit_status(self.process.returncode or 0)})\n{self.evidence()}"
                    )
                if ready in done:
                    break
            try:
                self.info = await self.control.GetHostInfo(
                    control_pb2.GetHostInfoRequest(), timeout=10
                )
            except grpc.aio.AioRpcError as exc:
                raise AdapterUnusable(
                    f"HostControl.GetHostInfo failed: {exc.code().name}: {exc.details()}\n"
                    f"{self.evidence()}"
                ) from None
        finally:
            exited.cancel()

    async def _settle(self) -> None:
        if self._drain is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._drain), 2.0)

    def evidence(self) -> str:
        lines = "\n  ".join(self.stderr_tail) or "(nothing)"
        return f"adapter command: {shlex.join(self.argv)}\nadapter stderr (last lines):\n  {lines}"

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, sig)

    async def close(self) -> None:
        """SIGTERM, a grace for the adapter to stop its plugins, then SIGKILL; reap; clean up."""
        if self.channel is not None:
            await self.channel.close(None)
            self.channel = None
        process = self.process
        if process is not None:
            if process.returncode is None:
                self._signal(signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), _STOP_GRACE_S)
            # Whatever is left of the group goes too, even after a clean exit.
            self._signal(signal.SIGKILL)
            await process.wait()
        if self._drain is not None:
            self._drain.cancel()
            await asyncio.wait({self._drain})
        shutil.rmtree(self.workdir, ignore_errors=True)
