"""The reference host's adapter with one fault switched on: a host that breaks one rule on purpose.

    python tests/mutants/host_mutant.py FAULT [FAULT...]

Each fault is a small, realistic bug in the reference host (pluginconf.host), patched into
this process only, so that a host case that should catch the bug can be shown to catch it
(tests/test_host_mutant_matrix.py). The process is then `pluginconf reference-host-adapter`,
driven by the host suite as any adapter is. FAULTS lists the faults with what they break;
with no argument this program lists them, and the hidden bugs (HIDDEN) that only fuzzing
finds. The switches live here, in the tests, and nowhere in the product.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import sys
import tempfile
import types
from collections import deque
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from pluginconf.control import control_pb2
from pluginconf.host import (
    adapter_convert,
    adapter_service,
    client,
    environment,
    http_front,
    launcher,
    supervisor,
)
from pluginconf.host.adapter import run_adapter
from pluginconf.host.breaker import CircuitBreaker, CircuitState
from pluginconf.host.client import HookTimeout as HookTimeoutError
from pluginconf.host.client import NotServing, PluginClient, PluginUnavailable
from pluginconf.host.environment import Environment
from pluginconf.host.errors import LaunchError
from pluginconf.host.http_front import HTTPFront, _Exchange
from pluginconf.host.launcher import LaunchedPlugin, LaunchSpec
from pluginconf.host.supervisor import PluginState, Supervisor
from pluginconf.protocol.constants import (
    ENV_CLIENT_CERT,
    ENV_MAX_PORT,
    ENV_MIN_PORT,
    ENV_UNIX_SOCKET_DIR,
)
from pluginconf.v1 import hooks_pb2

MIB = 1024 * 1024


def patch(owner: Any, name: str, value: Any) -> None:
    """Replace ``owner.name``, which must exist: a renamed target must fail loudly."""
    if not hasattr(owner, name):
        raise SystemExit(f"host_mutant: {owner!r} has no attribute {name!r} to patch")
    setattr(owner, name, value)


def shadow(module: types.ModuleType, **overrides: Any) -> types.ModuleType:
    """A stand-in for ``module`` to put in one importer's namespace (with patch): the
    ``overrides`` there, everything else the module's own. The module itself is unchanged."""
    for name in overrides:
        if not hasattr(module, name):
            raise SystemExit(f"host_mutant: {module.__name__} has no attribute {name!r}")

    class Shadow(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            return getattr(module, name)

    stand_in = Shadow(module.__name__)
    stand_in.__dict__.update(overrides)
    return stand_in


async def forever() -> None:
    await asyncio.Event().wait()


Fault = Callable[[], None]
FAULTS: dict[str, tuple[str, Fault]] = {}


def fault(
    name: str, breaks: str, registry: dict[str, tuple[str, Fault]] = FAULTS
) -> Callable[[Fault], Fault]:
    def register(fn: Fault) -> Fault:
        registry[name] = (breaks, fn)
        return fn

    return register


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


@fault("no-process-group", "starts the plugin in the host's own process group (HS-8)")
def _() -> None:
    exec_ = asyncio.create_subprocess_exec

    async def same_group(*argv: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        kwargs["start_new_session"] = False
        return await exec_(*argv, **kwargs)

    patch(launcher, "asyncio", shadow(asyncio, create_subprocess_exec=same_group))


@fault("generic-error-kind", "reports every failure to start as launch_failed (HS-20, HL-6)")
def _() -> None:
    for cls in LaunchError.__subclasses__():
        patch(cls, "kind", LaunchError.kind)
    patch(NotServing, "kind", LaunchError.kind)


@fault("error-without-line", "reports a refused handshake without quoting its line (HS-22)")
def _() -> None:
    launch = Supervisor._launch

    async def unquoted(self: Supervisor) -> None:
        try:
            await launch(self)
        except supervisor._Failure as failure:
            failure.reason = failure.reason.split("; handshake line")[0]
            raise

    patch(Supervisor, "_launch", unquoted)


@fault(
    "refused-left-running",
    "forgets a plugin whose handshake it refused without killing it, as go-plugin's client "
    "does after an unknown network (HS-20)",
)
def _() -> None:
    launch = Supervisor._launch

    async def forgets(self: Supervisor) -> None:
        try:
            await launch(self)
        except supervisor._Failure:
            self.process = None  # dropped, still running
            raise

    patch(Supervisor, "_launch", forgets)


@fault("stderr-tail-one-line", "keeps only the last line of stderr for its errors (HS-22)")
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
    patch(launcher, "NETWORKS", ("unix",))


@fault("mtls-ignored", "starts the plugin without AutoMTLS when the policy asks for it (TLS-8)")
def _() -> None:
    launch_spec = adapter_convert.launch_spec

    def plaintext(manifest: Any, policy: Any) -> LaunchSpec:
        return dataclasses.replace(launch_spec(manifest, policy), auto_mtls=False)

    patch(adapter_convert, "launch_spec", plaintext)


# -- health and activation ------------------------------------------------------------------


@fault("calls-before-serving", "calls Implemented without waiting for SERVING (HL-6, HK-1)")
def _() -> None:
    async def ready_at_once(self: PluginClient) -> None:
        return None

    patch(PluginClient, "wait_serving", ready_at_once)


@fault("checks-empty-service", 'waits for SERVING of the service "", not "plugin" (HL-6)')
def _() -> None:
    patch(client, "HEALTH_SERVICE_NAME", "")


@fault("no-health-checks", "never checks an active plugin's health (SV-7)")
def _() -> None:
    async def never(self: Supervisor, client: PluginClient) -> str:
        await forever()
        return ""

    patch(Supervisor, "_health_loop", never)


@fault(
    "slow-health-poll",
    "polls Health/Check every 500 ms until the plugin reports SERVING, not 100 ms (HL-6)",
)
def _() -> None:
    async def poll(self: PluginClient) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.ready_timeout_s
        request = health_pb2.HealthCheckRequest(service=client.HEALTH_SERVICE_NAME)
        while loop.time() < deadline:
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await self._health.Check(request, timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.5)
        raise NotServing(f"plugin {self.plugin_id!r} never reported SERVING")

    patch(PluginClient, "wait_serving", poll)


@fault("calls-unimplemented-hooks", "sends hooks the plugin did not list in Implemented (HK-5)")
def _() -> None:
    patch(PluginClient, "check_implemented", lambda self, hook: None)


@fault(
    "configuration-error-ignored",
    "activates a plugin whose OnConfigurationChange answered an AppError (LC-4)",
)
def _() -> None:
    call = PluginClient.call

    async def lenient(self: PluginClient, hook: str, request: Any, **kwargs: Any) -> Any:
        reply = await call(self, hook, request, **kwargs)
        if hook == "OnConfigurationChange":
            reply.ClearField("error")
        return reply

    patch(PluginClient, "call", lenient)


@fault("serve-http-deadline", "puts the hook deadline on ServeHTTP calls (SH-23)")
def _() -> None:
    init = _Exchange.__init__

    def with_deadline(
        self: _Exchange, front: HTTPFront, plugin_id: str, hooks: Any, *rest: Any
    ) -> None:
        timeout = front.env.plugins[plugin_id].config.client.hook_timeout_s

        class Timed:
            def ServeHTTP(self, request: Any) -> Any:
                return hooks.ServeHTTP(request, timeout=timeout)

        init(self, front, plugin_id, Timed(), *rest)

    patch(_Exchange, "__init__", with_deadline)


@fault("activation-order-swapped", "sends OnActivate before the configuration (LC-1)")
def _() -> None:
    activate = Supervisor._activate

    async def swapped(self: Supervisor, client: PluginClient, broker_id: int) -> None:
        listed = client.implemented
        try:
            for left_out in ("OnConfigurationChange", "OnActivate"):
                client.implemented = listed - {left_out}
                await activate(self, client, broker_id)
        finally:
            client.implemented = listed

    patch(Supervisor, "_activate", swapped)


@fault(
    "activation-error-restarts", "restarts a plugin whose OnActivate answered an AppError (LC-7)"
)
def _() -> None:
    activate = Supervisor._activate

    async def retried(self: Supervisor, client: PluginClient, broker_id: int) -> None:
        try:
            await activate(self, client, broker_id)
        except supervisor._Failure as failure:
            failure.final = False  # taken for a crash: restarted with backoff
            raise

    patch(Supervisor, "_activate", retried)


@fault(
    "restart-without-configuration",
    "sends the configuration to a plugin's first process only (LC-1)",
)
def _() -> None:
    activate = Supervisor._activate
    configured: set[int] = set()

    async def once(self: Supervisor, client: PluginClient, broker_id: int) -> None:
        listed = client.implemented
        if id(self) in configured:
            client.implemented = listed - {"OnConfigurationChange"}
        configured.add(id(self))
        try:
            await activate(self, client, broker_id)
        finally:
            client.implemented = listed

    patch(Supervisor, "_activate", once)


# -- hooks ----------------------------------------------------------------------------------


@fault("payload-strings-trimmed", "trims the command line before sending it (HK-14)")
def _() -> None:
    execute = Environment.execute_command

    async def trimmed(
        self: Environment, plugin_id: str, request: hooks_pb2.ExecuteCommandRequest
    ) -> Any:
        stripped = hooks_pb2.ExecuteCommandRequest()
        stripped.CopyFrom(request)
        stripped.command = request.command.strip()
        return await execute(self, plugin_id, stripped)

    patch(Environment, "execute_command", trimmed)


@fault("app-error-trips-breaker", "counts an AppError answer as a failure (HK-9, SV-11)")
def _() -> None:
    unary = PluginClient._unary

    async def counted(
        self: PluginClient, hook: str, send: Any, use_breaker: bool, timeout_s: float | None = None
    ) -> Any:
        failures = self.breaker._failures
        reply = await unary(self, hook, send, use_breaker, timeout_s)
        if use_breaker and "error" in reply.DESCRIPTOR.fields_by_name and reply.HasField("error"):
            self.breaker._failures = failures  # a failure where the success was recorded
            self.breaker.record_failure()
        return reply

    patch(PluginClient, "_unary", counted)


@fault("hook-deadline-not-sent", "times hooks out itself and never cancels the call (HK-11)")
def _() -> None:
    unary = PluginClient._unary

    async def local(
        self: PluginClient, hook: str, send: Any, use_breaker: bool, timeout_s: float | None = None
    ) -> Any:
        timeout = self.config.hook_timeout_s if timeout_s is None else timeout_s

        async def without_deadline(_: float) -> Any:
            call = asyncio.ensure_future(send(None))  # no gRPC deadline on the call
            try:
                return await asyncio.wait_for(asyncio.shield(call), timeout)
            except TimeoutError:
                call.add_done_callback(lambda f: f.cancelled() or f.exception())
                raise HookTimeoutError(self.plugin_id, hook, f"no answer in {timeout:g}s") from None

        return await unary(self, hook, without_deadline, use_breaker, timeout_s)

    patch(PluginClient, "_unary", local)


@fault("configuration-changes-concurrent", "sends configuration changes concurrently (LC-3)")
def _() -> None:
    init = Supervisor.__init__

    def unlocked(self: Supervisor, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._configuration_lock = contextlib.nullcontext()  # type: ignore[assignment]

    patch(Supervisor, "__init__", unlocked)


@fault("crash-restarts-all", "restarts every plugin when one crashes (SV-20)")
def _() -> None:
    add = Environment.add

    def restarting_all(self: Environment, plugin_id: str, *args: Any, **kwargs: Any) -> Any:
        crashed = add(self, plugin_id, *args, **kwargs)

        def restart_the_others(event: supervisor.StateEvent) -> None:
            if event.new is not PluginState.CRASHED:
                return
            for other in self.plugins.values():
                if other is not crashed and other.state is PluginState.ACTIVE and other.process:
                    other.process.kill_group()

        crashed.listeners.append(restart_the_others)
        return crashed

    patch(Environment, "add", restarting_all)


@fault(
    "notify-waits-longer",
    "holds the operation that notified a post 1.5 s past the hook deadline (NT-3)",
)
def _() -> None:
    notify = Environment.notify

    async def lingering(self: Environment, post: hooks_pb2.Post) -> Any:
        outcome = await notify(self, post)
        if any(failure is not None for failure in outcome.values()):
            await asyncio.sleep(1.5)  # e.g. waiting for a plugin that timed out to go away
        return outcome

    patch(Environment, "notify", lingering)


@fault(
    "timeout-reported-late",
    "reports a hook call that passed its deadline 1 s after the deadline (HK-11)",
)
def _() -> None:
    unary = PluginClient._unary

    async def late(
        self: PluginClient, hook: str, send: Any, use_breaker: bool, timeout_s: float | None = None
    ) -> Any:
        try:
            return await unary(self, hook, send, use_breaker, timeout_s)
        except HookTimeoutError:
            await asyncio.sleep(1.0)
            raise

    patch(PluginClient, "_unary", late)


@fault("fan-out-sequential", "notifies plugins one after another (NT-2)")
def _() -> None:
    async def sequential(*aws: Any, return_exceptions: bool = False) -> list[Any]:
        return [await aw for aw in aws]

    patch(environment, "asyncio", shadow(asyncio, gather=sequential))


# -- filters --------------------------------------------------------------------------------


@fault("filter-chain-reversed", "runs the filter chain in reverse order (FL-1)")
def _() -> None:
    serving = Environment._serving
    patch(Environment, "_serving", lambda self, hook: serving(self, hook)[::-1])


@fault("keep-takes-response-post", "takes the response's post when a filter keeps it (FL-2)")
def _() -> None:
    call = Supervisor.call

    async def keep_is_modify(
        self: Supervisor, hook: str, request: Any, timeout_s: float | None = None
    ) -> Any:
        reply = await call(self, hook, request, timeout_s)
        if hook == "MessageWillBePosted" and reply.action == hooks_pb2.FILTER_ACTION_KEEP:
            reply.action = hooks_pb2.FILTER_ACTION_MODIFY
            reply.post.SetInParent()  # the empty post a KEEP answer carries
        return reply

    patch(Supervisor, "call", keep_is_modify)


@fault("reject-does-not-stop", "goes on filtering after a plugin rejected the post (FL-4)")
def _() -> None:
    step = Environment._filter_step

    async def go_on(self: Environment, supervisor: Supervisor, result: Any) -> bool:
        await step(self, supervisor, result)
        return False

    patch(Environment, "_filter_step", go_on)


@fault("filter-fails-closed", "rejects the post when a filter fails (FL-5, FL-6)")
def _() -> None:
    step = Environment._filter_step

    async def closed(self: Environment, supervisor: Supervisor, result: Any) -> bool:
        ended = await step(self, supervisor, result)
        if result.steps and result.steps[-1].outcome == "error":
            result.rejected, result.rejected_by = True, supervisor.plugin_id
            result.reason = result.steps[-1].detail
            return True
        return ended

    patch(Environment, "_filter_step", closed)


# -- the HTTP front -------------------------------------------------------------------------


def _exchange_streams(wrap: Callable[[_Exchange], None]) -> None:
    """Let ``wrap`` replace an exchange's receive and send as it is made."""
    init = _Exchange.__init__

    def wrapped(self: _Exchange, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        wrap(self)

    patch(_Exchange, "__init__", wrapped)


@fault("content-length-dropped", "sends content_length -1 (unknown) for every request (SH-7)")
def _() -> None:
    patch(http_front, "_content_length", lambda headers: None)
    patch(http_front, "_unknown_length", lambda headers: -1)


@fault("default-body-limit", "refuses bodies over 100 MiB though no limit is configured (SE-7)")
def _() -> None:
    init, plain = HTTPFront.__init__, http_front._plain

    def limited(self: HTTPFront, env: Environment, max_body_bytes: int | None = None) -> None:
        init(self, env, 100 * MIB if max_body_bytes is None else max_body_bytes)

    async def closing(send: Any, status: int, text: str, extra: Any = None) -> None:
        # As servers do after refusing a body: the connection closes, the client stops sending.
        await plain(send, status, text, [*(extra or []), (b"connection", b"close")])

    patch(HTTPFront, "__init__", limited)
    patch(http_front, "_plain", closing)


@fault("hop-by-hop-forwarded", "forwards the client's hop-by-hop fields (SE-8)")
def _() -> None:
    patch(http_front, "_hop_by_hop", lambda headers: set())


@fault("response-hop-by-hop-forwarded", "passes the plugin's hop-by-hop fields on (SE-8)")
def _() -> None:
    def every_field(headers: Any) -> list[tuple[bytes, bytes]]:
        return [(h.name.lower().encode("latin-1"), v.encode()) for h in headers for v in h.values]

    patch(http_front, "response_headers", every_field)


@fault("response-headers-joined", "joins a response header's values into one line (SE-9)")
def _() -> None:
    def joined(headers: Any) -> list[tuple[bytes, bytes]]:
        return [(h.name.lower().encode(), ", ".join(h.values).encode()) for h in headers]

    patch(http_front, "response_headers", joined)


@fault("status-always-200", "answers 200 whatever status the plugin sent (SE-1)")
def _() -> None:
    def wrap(exchange: _Exchange) -> None:
        send = exchange.send

        async def ok(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "status": 200}
            await send(message)

        exchange.send = ok

    _exchange_streams(wrap)


@fault("last-body-frame-lost", "holds each body frame until the next, dropping the last (SE-10)")
def _() -> None:
    def wrap(exchange: _Exchange) -> None:
        send, held = exchange.send, list[Any]()

        async def lookahead(message: Any) -> None:
            if message["type"] == "http.response.body":
                if held and message.get("more_body", False):
                    await send(held.pop())
                held.clear()  # at the end, the held piece is forgotten
                if message.get("more_body", False):
                    held.append(message)
                    return
            await send(message)

        exchange.send = lookahead

    _exchange_streams(wrap)


@fault(
    "buffers-bodies",
    "reads whole request bodies, and whole responses, before passing them on (SH-15, SH-17, SH-19)",
)
def _() -> None:
    def wrap(exchange: _Exchange) -> None:
        receive, send = exchange.receive, exchange.send
        held: list[Any] = []

        async def whole_request() -> Any:
            message, pieces = await receive(), []
            while message["type"] == "http.request" and message.get("more_body", False):
                pieces.append(message.get("body", b""))
                message = await receive()
            if message["type"] == "http.request":
                pieces.append(message.get("body", b""))
                message = {**message, "body": b"".join(pieces)}
            return message

        async def whole_response(message: Any) -> None:
            if message["type"] == "http.response.start" or message.get("more_body", False):
                held.append(message)
                return
            start, *pieces = [*held, message]
            held.clear()
            await send(start)
            await send({"type": "http.response.body", "body": b"".join(p["body"] for p in pieces)})

        exchange.receive, exchange.send = whole_request, whole_response

    _exchange_streams(wrap)


@fault("client-disconnect-ignored", "stops listening to the client once its body is in (SH-20)")
def _() -> None:
    def wrap(exchange: _Exchange) -> None:
        receive = exchange.receive

        async def deaf() -> Any:
            message = await receive()
            if message["type"] == "http.disconnect":
                await forever()
            return message

        exchange.receive = deaf

    _exchange_streams(wrap)


@fault("502-becomes-500", "answers 500 when the plugin fails before its response (SE-5)")
def _() -> None:
    plain = http_front._plain

    async def internal(send: Any, status: int, text: str, extra: Any = None) -> None:
        await plain(send, 500 if status == 502 else status, text, extra)

    patch(http_front, "_plain", internal)


@fault(
    "truncated-as-complete", "relays responses chunked and ends a cut one normally (SE-6, SE-11)"
)
def _() -> None:
    response_headers = http_front.response_headers
    fail = _Exchange._fail

    def chunked(headers: Any) -> list[tuple[bytes, bytes]]:
        return [(n, v) for n, v in response_headers(headers) if n != b"content-length"]

    async def complete(self: _Exchange, exc: BaseException) -> None:
        if self.started and not self.client_gone:
            self.call.cancel()
            await self.send({"type": "http.response.body", "body": b""})
            return
        await fail(self, exc)

    patch(http_front, "response_headers", chunked)
    patch(_Exchange, "_fail", complete)


@fault("inactive-404", "answers 404 for a plugin that is not running (SE-3)")
def _() -> None:
    plain = http_front._plain

    async def not_found(send: Any, status: int, text: str, extra: Any = None) -> None:
        await (plain(send, 404, text) if status == 503 else plain(send, status, text, extra))

    patch(http_front, "_plain", not_found)


@fault("serve-http-unlisted", "routes HTTP to every plugin, listed ServeHTTP or not (SE-2)")
def _() -> None:
    load = PluginClient.load_implemented

    async def assumed(self: PluginClient) -> frozenset[str]:
        self.implemented = await load(self) | {"ServeHTTP"}
        return self.implemented

    patch(PluginClient, "load_implemented", assumed)


# -- crashes --------------------------------------------------------------------------------


@fault("no-restart", "gives a plugin up at its first crash (SV-8, SV-9)")
def _() -> None:
    crashed = Supervisor._crashed

    async def final(self: Supervisor, failure: Any, active_for_s: float) -> None:
        await crashed(self, failure, active_for_s)
        if self.state is PluginState.CRASHED:
            await self._transition(
                PluginState.FAILED,
                f"not restarted: {failure.reason}",
                error_kind=failure.error_kind,
            )

    patch(Supervisor, "_crashed", final)


@fault("exit-unwatched", "notices a plugin's exit only at the next health check (SV-3, SV-4)")
def _() -> None:
    watch = Supervisor._watch

    async def health_only(self: Supervisor) -> Any:
        assert self.process is not None
        process = self.process.process
        wait = process.wait

        def unwatched() -> Any:
            process.wait = wait  # type: ignore[method-assign]  # later waits are real
            return forever()

        process.wait = unwatched  # type: ignore[method-assign]  # the watch's own wait
        return await watch(self)

    patch(Supervisor, "_watch", health_only)


@fault(
    "exit-noticed-late",
    "notices a plugin's exit 25 s after it happened, and checks no active plugin's health (SV-3)",
)
def _() -> None:
    watch = Supervisor._watch

    async def never(self: Supervisor, client: PluginClient) -> str:
        await forever()
        return ""

    async def late(self: Supervisor) -> Any:
        assert self.process is not None
        process = self.process.process
        wait = process.wait

        async def delayed() -> int:
            process.wait = wait  # type: ignore[method-assign]  # later waits are real
            status = await wait()
            await asyncio.sleep(25.0)
            return status

        process.wait = delayed  # type: ignore[method-assign]  # the watch's own wait
        return await watch(self)

    patch(Supervisor, "_watch", late)
    patch(Supervisor, "_health_loop", never)


@fault("exit-zero-is-stop", "takes a plugin's exit with status 0 as a stop (SV-6)")
def _() -> None:
    watch = Supervisor._watch

    async def zero_is_stop(self: Supervisor) -> Any:
        outcome = await watch(self)
        return None if outcome is not None and outcome.exit_status == 0 else outcome

    patch(Supervisor, "_watch", zero_is_stop)


@fault(
    "retries-until-deadline", "retries a call to a plugin that went away until its deadline (SV-5)"
)
def _() -> None:
    unary = PluginClient._unary

    async def retrying(
        self: PluginClient, hook: str, send: Any, use_breaker: bool, timeout_s: float | None = None
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.config.hook_timeout_s if timeout_s is None else timeout_s)
        while True:
            try:
                return await unary(self, hook, send, use_breaker, deadline - loop.time())
            except (PluginUnavailable, grpc.aio.UsageError):  # UsageError: channel closed
                if loop.time() + 0.1 >= deadline:
                    raise PluginUnavailable(
                        self.plugin_id, hook, "retried until the deadline"
                    ) from None
                await asyncio.sleep(0.1)  # the plugin may be back: try again

    patch(PluginClient, "_unary", retrying)


@fault(
    "no-supervision",
    "declares no restarts, health checks or circuit breaker, and has none: a plugin that "
    "crashes stays down, as under go-plugin's client (SV-7, SV-8, SV-11)",
)
def _() -> None:
    patch(
        adapter_service,
        "EVERY_CAPABILITY",
        control_pb2.HostCapabilities(http_front=True, auto_mtls=True, host_api=True),
    )
    crashed = Supervisor._crashed

    async def final(self: Supervisor, failure: Any, active_for_s: float) -> None:
        await crashed(self, failure, active_for_s)
        if self.state is PluginState.CRASHED:
            await self._transition(
                PluginState.FAILED,
                f"not restarted: {failure.reason}",
                error_kind=failure.error_kind,
            )

    async def never(self: Supervisor, client: PluginClient) -> str:
        await forever()
        return ""

    patch(Supervisor, "_crashed", final)
    patch(Supervisor, "_health_loop", never)
    patch(CircuitBreaker, "record_failure", lambda self: None)


@fault("no-backoff", "restarts a failed plugin at once (SV-8)")
def _() -> None:
    patch(Supervisor, "_backoff_delay", lambda self: 0.0)


@fault("backoff-too-long", "waits 500 ms more than the backoff allows before a restart (SV-8)")
def _() -> None:
    def longer(self: Supervisor) -> float:
        config = self.config
        ceiling = min(config.backoff_max_s, config.backoff_base_s * 2 ** (self._consecutive - 1))
        return ceiling + 0.5

    patch(Supervisor, "_backoff_delay", longer)


@fault("no-circuit-breaker", "never opens a plugin's circuit (SV-11, SE-4)")
def _() -> None:
    patch(CircuitBreaker, "record_failure", lambda self: None)


@fault("half-open-lets-all-through", "lets every call through a half-open circuit (SV-12)")
def _() -> None:
    allow = CircuitBreaker.allow

    def every_call(self: CircuitBreaker) -> bool:
        return allow(self) or self.state is CircuitState.HALF_OPEN

    patch(CircuitBreaker, "allow", every_call)


@fault("deactivate-through-circuit", "sends OnDeactivate through the circuit breaker (SV-13)")
def _() -> None:
    call = PluginClient.call

    async def breakered(self: PluginClient, hook: str, request: Any, **kwargs: Any) -> Any:
        if hook == "OnDeactivate":
            kwargs["use_breaker"] = True
        return await call(self, hook, request, **kwargs)

    patch(PluginClient, "call", breakered)


# -- stopping -------------------------------------------------------------------------------


@fault("socket-dir-kept", "never removes a plugin's socket directory (SV-18)")
def _() -> None:
    patch(launcher, "shutil", shadow(shutil, rmtree=lambda *args, **kwargs: None))


@fault("no-on-deactivate", "stops a plugin without OnDeactivate (SV-14, LC-9)")
def _() -> None:
    stop_sequence = Supervisor._stop_sequence

    async def without(self: Supervisor) -> None:
        if self.client is not None:
            self.client.implemented -= {"OnDeactivate"}
        await stop_sequence(self)

    patch(Supervisor, "_stop_sequence", without)


@fault("deactivate-unlisted", "sends OnDeactivate to a plugin that does not list it (LC-9)")
def _() -> None:
    stop_sequence = Supervisor._stop_sequence

    async def always(self: Supervisor) -> None:
        if self.client is not None:
            self.client.implemented |= {"OnDeactivate"}
        await stop_sequence(self)

    patch(Supervisor, "_stop_sequence", always)


@fault(
    "no-sigterm-step",
    "goes from the exit wait straight to SIGKILL, as go-plugin's client does (SV-22)",
)
def _() -> None:
    signal_group = LaunchedPlugin._signal_group

    def without_sigterm(self: LaunchedPlugin, sig: signal.Signals) -> None:
        if sig is not signal.SIGTERM:
            signal_group(self, sig)

    patch(LaunchedPlugin, "_signal_group", without_sigterm)


@fault(
    "kills-pid-only",
    "signals the plugin's process, never its process group, as go-plugin's client does "
    "(HS-25, SV-16, SV-22)",
)
def _() -> None:
    def process_only(self: LaunchedPlugin, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.process.pid, sig)

    patch(LaunchedPlugin, "_signal_group", process_only)


@fault("stop-waits-tripled", "waits three times each wait of the stop sequence (SV-22)")
def _() -> None:
    config = adapter_convert.supervisor_config

    def tripled(policy: Any, base: Any = None) -> Any:
        made = config(policy, base)
        return dataclasses.replace(
            made,
            shutdown_timeout_s=3 * made.shutdown_timeout_s,
            exit_grace_s=3 * made.exit_grace_s,
            term_grace_s=3 * made.term_grace_s,
        )

    patch(adapter_convert, "supervisor_config", tripled)


@fault("never-sigkill", "escalates to SIGTERM at most, then leaves the plugin running (SV-14)")
def _() -> None:
    signal_group = LaunchedPlugin._signal_group

    def no_sigkill(self: LaunchedPlugin, sig: signal.Signals) -> None:
        signal_group(self, signal.SIGTERM if sig is signal.SIGKILL else sig)

    async def gives_up(self: LaunchedPlugin) -> None:
        self.kill_group()
        await self.wait_exit(1.0)

    patch(LaunchedPlugin, "_signal_group", no_sigkill)
    patch(LaunchedPlugin, "kill", gives_up)


# -- hidden bugs: found by fuzzing, not by any fixed case (tests/test_fuzz_finds_bugs.py) ----
# Not in FAULTS: the host mutant matrix wants a case that fails for each of those.

HIDDEN: dict[str, tuple[str, Fault]] = {}


def hidden(name: str, breaks: str) -> Callable[[Fault], Fault]:
    return fault(name, breaks, HIDDEN)


class _AgesFromTheNewest(deque[float]):
    """Failure times whose "oldest" is read from the wrong end: the supervisor's pruning
    compares the newest failure with the window, finds it recent, and drops nothing."""

    def __getitem__(self, index: Any) -> Any:
        return super().__getitem__(-1 if index == 0 else index)


@hidden(
    "restart-counter-never-resets",
    "counts every failure since the plugin was enabled against restart_limit, ignoring "
    "restart_window (SV-8, SV-9): the window's pruning reads the wrong end of the history",
)
def _() -> None:
    init = Supervisor.__init__

    def never_pruned(self: Supervisor, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._failure_times = _AgesFromTheNewest()

    patch(Supervisor, "__init__", never_pruned)


def main(argv: list[str]) -> None:
    every = {**FAULTS, **HIDDEN}
    names = "\n  ".join(f"{n}: {d}" for n, (d, _) in FAULTS.items())
    hidden_names = "\n  ".join(f"{n}: {d}" for n, (d, _) in HIDDEN.items())
    listing = f"faults:\n  {names}\nhidden (tests/test_fuzz_finds_bugs.py):\n  {hidden_names}"
    if not argv:
        print(listing)
        raise SystemExit(0)
    unknown = [name for name in argv if name not in every]
    if unknown:
        sys.stderr.write(f"usage: host_mutant.py FAULT [FAULT...]\n{listing}\n")
        raise SystemExit(2)
    for name in argv:
        every[name][1]()
    raise SystemExit(run_adapter())


if __name__ == "__main__":
    main(sys.argv[1:])
