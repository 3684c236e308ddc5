"""The plugin process that the cases which can share one use, as a session-scoped server.

It is started the way a conformant host starts a plugin (SPEC.md LC-1, BR-2, HA-1, IO-7):
launch and handshake, a StreamStdio subscriber, the broker stream with the suite's HostAPI
served on it, then, for plugins of the hooks protocol, `Implemented`, `OnConfigurationChange`
and `OnActivate`. The pool starts it on first use and starts a new one after a case that
crashed or hung it.

Pool states: empty -> (first use) starting -> ready -> (crash or hang seen) empty;
two failed starts in a row make it `unusable`: later cases fail at once with that reason.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2_grpc

from pluginconf.host.broker import HostBroker
from pluginconf.host.client import health_problem
from pluginconf.host.errors import LaunchError, describe_exit_status
from pluginconf.host.hostapi import InMemoryHostAPI
from pluginconf.host.launcher import LaunchedPlugin, spawn
from pluginconf.protocol.mtls import der_to_pem
from pluginconf.runner.model import Profile
from pluginconf.runner.options import SUITE_CHANNEL_OPTIONS, PluginSuiteOptions
from pluginconf.runner.plugin.addresses import other_listeners
from pluginconf.runner.plugin.stdio import STDERR, StdioCollector
from pluginconf.runner.plugin.tls import TLSChannel, connect_plugin
from pluginconf.v1 import hooks_pb2, hooks_pb2_grpc, hostapi_pb2_grpc

SUITE_PLUGIN_ID = "pluginconf-suite"
# Given in OnConfigurationChange and served by HostAPI GetConfiguration; non-ASCII on purpose.
SUITE_CONFIGURATION = {"suite": "pluginconf", "greeting": "héllo 🧩"}


class TargetUnusable(Exception):
    """The plugin could not be started or activated for a case; the message says how, and
    ``requirements`` which rules that breaks when it is known (empty: the case's own)."""

    def __init__(self, message: str, requirements: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.requirements = requirements


def ensure_own_address(launched: LaunchedPlugin) -> None:
    """A tcp plugin whose announced address another process also listens on is unusable:
    the suite would talk to whichever answers (TR-14)."""
    assert launched.handshake is not None
    others = other_listeners(launched.handshake, launched.pid)
    if others:
        raise TargetUnusable(
            f"the plugin process (pid {launched.pid}) announced {launched.handshake.address}, "
            f"where another process also listens: {'; '.join(others)}. Each plugin process "
            "must serve an address of its own; the suite will not talk to whichever answers",
            requirements=("TR-14",),
        )


def broker_credentials(launched: LaunchedPlugin) -> grpc.ServerCredentials | None:
    """Under AutoMTLS, the servers the suite offers through the broker use the main
    connection's certificates (BR-7); None for a plain start."""
    client, handshake = launched.client_cert, launched.handshake
    if client is None or handshake is None or handshake.server_cert_der is None:
        return None
    return grpc.ssl_server_credentials(
        [(client.key_pem, client.cert_pem)],
        root_certificates=der_to_pem(handshake.server_cert_der),
        require_client_auth=True,
    )


def crash_evidence(launched: LaunchedPlugin, stdio: StdioCollector | None) -> str:
    """How the process ended and the last things it wrote to stderr, pipe and GRPCStdio."""
    status = launched.process.returncode
    parts = [
        "exit status: " + (describe_exit_status(status) if status is not None else "still running")
    ]
    pipe = "\n".join(launched.stderr_tail)
    streamed = stdio.tail(STDERR) if stdio is not None else ""
    for name, text in (("stderr", pipe), ("stderr through GRPCStdio", streamed)):
        if text.strip():
            parts.append(f"{name} (last lines):\n  " + "\n  ".join(text.splitlines()[-20:]))
    return "\n".join(parts)


@dataclass
class Activation:
    """What the plugin answered while being activated."""

    implemented: tuple[str, ...] | None = None  # None: not a hooks plugin (transport profile)
    answers: dict[str, str] = field(default_factory=dict)


class SharedPlugin:
    def __init__(
        self,
        launched: LaunchedPlugin,
        profile: Profile,
        tmpdir: str,
        tls: TLSChannel | None = None,
    ) -> None:
        self.launched = launched
        self.tmpdir = tmpdir
        self.profile = profile
        self._tls = tls
        # None for a plugin the suite does not call (netrpc): only its process is shared.
        self._channel: grpc.aio.Channel | None = launched.channel
        self.hostapi = InMemoryHostAPI(configuration=dict(SUITE_CONFIGURATION))
        self._stdio: StdioCollector | None = None
        self._broker: HostBroker | None = None
        self.broker_id = 0
        self.activation = Activation()

    @property
    def channel(self) -> grpc.aio.Channel:
        assert self._channel is not None, "a case that calls the plugin asks t.shared()"
        return self._channel

    @property
    def hooks(self) -> hooks_pb2_grpc.HooksAsyncStub:
        return hooks_pb2_grpc.HooksStub(self.channel)

    @property
    def health(self) -> health_pb2_grpc.HealthStub:
        return health_pb2_grpc.HealthStub(self.channel)

    @property
    def stdio(self) -> StdioCollector:
        assert self._stdio is not None, "a case that calls the plugin asks t.shared()"
        return self._stdio

    @property
    def implemented(self) -> tuple[str, ...]:
        return self.activation.implemented or ()

    @property
    def pid(self) -> int:
        return self.launched.pid

    def alive(self) -> bool:
        return self.launched.process.returncode is None

    async def wait_exit(self, timeout_s: float) -> bool:
        return await self.launched.wait_exit(timeout_s)

    def evidence(self) -> str:
        return crash_evidence(self.launched, self._stdio)

    @classmethod
    async def start(cls, options: PluginSuiteOptions) -> SharedPlugin:
        tmpdir = tempfile.mkdtemp(prefix="pluginconf-tmp-")
        spec = options.launch_spec(tmpdir, channel_options=SUITE_CHANNEL_OPTIONS)
        try:
            launched = await spawn(spec)
        except BaseException as exc:
            shutil.rmtree(tmpdir, ignore_errors=True)
            if isinstance(exc, LaunchError):
                raise TargetUnusable(f"the plugin could not be started: {exc}") from None
            raise
        try:
            await launched.read_handshake()
            ensure_own_address(launched)
            tls = (
                await connect_plugin(launched, SUITE_CHANNEL_OPTIONS)
                if options.speaks_grpc
                else None
            )
        except BaseException as exc:
            await launched.close()
            shutil.rmtree(tmpdir, ignore_errors=True)
            if isinstance(exc, LaunchError):
                raise TargetUnusable(f"the plugin could not be started: {exc}") from None
            raise
        shared = cls(launched, options.effective_profile, tmpdir, tls)
        try:
            await shared._activate()
        except BaseException:
            await shared.close(deactivate=False)
            raise
        return shared

    async def _activate(self) -> None:
        if self._channel is None:
            return
        # As a host does after its health check (IO-7, BR-13): stdio, then the broker.
        self._stdio = StdioCollector(self._channel)
        self._broker = HostBroker(
            self._channel, self.launched.socket_dir, broker_credentials(self.launched)
        )
        await self._broker.start()
        if not self.profile.includes(Profile.HOOKS):
            return
        servicer = self.hostapi
        self.broker_id = await self._broker.serve(
            lambda server: hostapi_pb2_grpc.add_HostAPIServicer_to_server(servicer, server)
        )
        try:
            reply = await self.hooks.Implemented(hooks_pb2.ImplementedRequest(), timeout=10)
        except grpc.aio.AioRpcError as exc:
            raise TargetUnusable(
                f"Implemented failed with {exc.code().name}: {exc.details()}; the hooks and sdk "
                "profiles need a plugin of the pluginconf.v1 hooks protocol (use --profile "
                "transport for other go-plugin plugins)\n" + self.evidence()
            ) from None
        self.activation.implemented = tuple(reply.hooks)
        steps: list[tuple[str, object]] = [
            (
                "OnConfigurationChange",
                hooks_pb2.OnConfigurationChangeRequest(configuration=SUITE_CONFIGURATION),
            ),
            (
                "OnActivate",
                hooks_pb2.OnActivateRequest(
                    plugin_id=SUITE_PLUGIN_ID, host_api_broker_id=self.broker_id
                ),
            ),
        ]
        for hook, request in steps:
            if hook not in self.implemented:
                continue
            try:
                answer = await getattr(self.hooks, hook)(request, timeout=30)
            except grpc.aio.AioRpcError as exc:
                raise TargetUnusable(
                    f"activating the plugin failed: {hook} ended with {exc.code().name}: "
                    f"{exc.details()}\n" + self.evidence()
                ) from None
            if answer.HasField("error"):
                raise TargetUnusable(
                    f"activating the plugin failed: {hook} answered AppError "
                    f"{answer.error.code!r}: {answer.error.message}"
                )
            self.activation.answers[hook] = "ok"

    async def check_health(self, timeout_s: float = 3.0) -> str | None:
        """None when the plugin answers SERVING in time, else what was wrong."""
        if not self.alive():
            return "the process has exited"
        if self._channel is None:
            return None  # not called: alive is all the suite can tell
        return await health_problem(self.health, timeout_s)

    async def close(self, deactivate: bool = True) -> None:
        """OnDeactivate (when listed), then the stop sequence; always reaps and cleans up."""
        if deactivate and self.alive() and "OnDeactivate" in self.implemented:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.hooks.OnDeactivate(hooks_pb2.OnDeactivateRequest(), timeout=10)
        if self._stdio is not None:
            await self._stdio.close()
        try:
            await self.launched.stop()
        finally:
            if self._broker is not None:
                await self._broker.close()
            if self._tls is not None:
                await self._tls.close()
            shutil.rmtree(self.tmpdir, ignore_errors=True)


class SharedPool:
    """Owns at most one SharedPlugin at a time."""

    def __init__(self, options: PluginSuiteOptions) -> None:
        self._options = options
        self._current: SharedPlugin | None = None
        self._failed_starts = 0
        self._unusable: str | None = None

    @property
    def current(self) -> SharedPlugin | None:
        return self._current

    async def get(self) -> SharedPlugin:
        if self._current is not None:
            return self._current
        if self._unusable is not None:
            raise TargetUnusable(f"{self._unusable}\n(the same failure as in earlier cases)")
        try:
            self._current = await SharedPlugin.start(self._options)
        except TargetUnusable as exc:
            self._failed_starts += 1
            if self._failed_starts >= 2:
                self._unusable = str(exc)
            raise
        self._failed_starts = 0
        return self._current

    async def discard(self) -> None:
        """Stop the current process (it crashed or hung); the next case gets a new one."""
        current, self._current = self._current, None
        if current is not None:
            await current.close(deactivate=False)

    async def close(self) -> None:
        current, self._current = self._current, None
        if current is not None:
            await current.close()
