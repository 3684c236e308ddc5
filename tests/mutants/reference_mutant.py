"""The reference plugin with one fault switched on: a plugin that breaks one rule on purpose.

    python tests/mutants/reference_mutant.py FAULT [--state-dir DIR]

Each fault is a small, realistic bug in the plugin or in the SDK under it (a mutation of the
SDK's code, applied in this process only), so that a conformance case that should catch the
bug can be shown to catch it (tests/test_mutant_matrix.py). FAULTS lists them with what they
break. The switches live here, in the tests, and nowhere in the product.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import tempfile
import time
import types
from collections.abc import Callable
from typing import Any

import grpc

from pluginconf.goplugin import grpc_stdio_pb2
from pluginconf.plugin import AppError, Plugin, ServeConfig, asgi, hooks, listener, server, stdio
from pluginconf.plugin import broker as plugin_broker
from pluginconf.protocol import mtls
from pluginconf.reference.generator import iter_bytes
from pluginconf.reference.http_app import ReferenceApp
from pluginconf.reference.plugin import ReferencePlugin
from pluginconf.v1 import hooks_pb2

MIB = 1024 * 1024


def patch(owner: Any, name: str, value: Any) -> None:
    """Replace ``owner.name``, which must exist: a renamed target must fail loudly."""
    if not hasattr(owner, name):
        raise SystemExit(f"reference_mutant: {owner!r} has no attribute {name!r} to patch")
    setattr(owner, name, value)


class Mutant:
    def __init__(self, state_dir: str) -> None:
        self.plugin: ReferencePlugin = ReferencePlugin()
        self.config = ServeConfig()
        self.state_dir = state_dir


Fault = Callable[[Mutant], None]
FAULTS: dict[str, tuple[str, Fault]] = {}


def fault(
    name: str, breaks: str, registry: dict[str, tuple[str, Fault]] = FAULTS
) -> Callable[[Fault], Fault]:
    def register(fn: Fault) -> Fault:
        registry[name] = (breaks, fn)
        return fn

    return register


# -- handshake and transport -----------------------------------------------------------


@fault("handshake-crlf", "the handshake line ends with \\r\\n")
def _(m: Mutant) -> None:
    original = server.HandshakeLine.format
    patch(server.HandshakeLine, "format", lambda self: original(self) + "\r")


@fault("listen-after-handshake", "the gRPC server starts 3 s after the handshake is printed")
def _(m: Mutant) -> None:
    make_server = grpc.aio.server

    class Late:
        def __init__(self, real: Any) -> None:
            self._real = real

        def __getattr__(self, name: str) -> Any:
            return getattr(self._real, name)

        async def start(self) -> None:
            async def later() -> None:
                await asyncio.sleep(3)
                await self._real.start()

            self._task = asyncio.ensure_future(later())

    patch(grpc.aio, "server", lambda *a, **k: Late(make_server(*a, **k)))


@fault("ignore-cookie", "serves without the magic cookie")
def _(m: Mutant) -> None:
    patch(server, "check_cookie", lambda config, environ: True)


@fault(
    "cookie-unrelated-message",
    "without its cookie, exits 1 with an unrelated configuration error on stderr",
)
def _(m: Mutant) -> None:
    check = server.check_cookie

    def unrelated(config: Any, environ: Any) -> bool:
        if not check(config, environ):
            sys.stderr.write("plugin configuration error: /etc/reference-plugin.conf not found\n")
            os._exit(1)
        return True

    patch(server, "check_cookie", unrelated)


@fault("cookie-slow-refusal", "takes 6 s to refuse a start without its cookie")
def _(m: Mutant) -> None:
    check = server.check_cookie

    def slow(config: Any, environ: Any) -> bool:
        if check(config, environ):
            return True
        time.sleep(6)
        return False

    patch(server, "check_cookie", slow)


@fault("cookie-after-listen", "listens before it checks the cookie, and leaves its socket")
def _(m: Mutant) -> None:
    check = server.check_cookie

    def listened(config: Any, environ: Any) -> bool:
        if check(config, environ):
            return True
        directory = environ.get("PLUGIN_UNIX_SOCKET_DIR") or tempfile.gettempdir()
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(os.path.join(directory, "plugin.sock"))
        sock.listen()
        return False

    patch(server, "check_cookie", listened)


@fault("version-lowest", "speaks 1 and 2 and picks the lowest common version")
def _(m: Mutant) -> None:
    m.config = ServeConfig(protocol_versions=(1, 2))

    def lowest(supported: Any, offered: Any) -> tuple[int, bool]:
        common = sorted(set(supported) & set(offered))
        return (common[0], True) if common else (min(supported), False)

    patch(server, "negotiate_version", lowest)


@fault("version-exit-none-common", "exits when no version is common")
def _(m: Mutant) -> None:
    negotiate = server.negotiate_version

    def strict(supported: Any, offered: Any) -> tuple[int, bool]:
        version, agreed = negotiate(supported, offered)
        if not agreed:
            sys.stderr.write("no common version\n")
            os._exit(1)
        return version, agreed

    patch(server, "negotiate_version", strict)


@fault("version-invalid-fatal", "exits on a malformed PLUGIN_PROTOCOL_VERSIONS entry")
def _(m: Mutant) -> None:
    parse = server.parse_protocol_versions

    def strict(text: str) -> Any:
        offered, invalid = parse(text)
        if invalid:
            sys.stderr.write(f"bad version list {text!r}\n")
            os._exit(1)
        return offered, invalid

    patch(server, "parse_protocol_versions", strict)


@fault("socket-outside-dir", "ignores PLUGIN_UNIX_SOCKET_DIR")
def _(m: Mutant) -> None:
    unix_path = listener.Listener._unix_path

    def own_dir(self: Any) -> str:
        self._environ = {k: v for k, v in self._environ.items() if k != "PLUGIN_UNIX_SOCKET_DIR"}
        return unix_path(self)

    patch(listener.Listener, "_unix_path", own_dir)


@fault("socket-world-accessible", "creates its socket with no umask at all (mode 0777)")
def _(m: Mutant) -> None:
    class NoUmask:
        def __enter__(self) -> None:
            os.umask(0)

        def __exit__(self, *exc: object) -> None:
            pass

    patch(listener, "_private_umask", NoUmask)


@fault(
    "socket-in-tmpdir",
    "without PLUGIN_UNIX_SOCKET_DIR, puts its socket straight into TMPDIR (as go-plugin does)",
)
def _(m: Mutant) -> None:
    unix_path = listener.Listener._unix_path

    def in_tmpdir(self: Any) -> str:
        if self._environ.get("PLUGIN_UNIX_SOCKET_DIR"):
            return unix_path(self)
        return os.path.join(tempfile.gettempdir(), f"plugin{os.getpid()}.sock")

    patch(listener.Listener, "_unix_path", in_tmpdir)


@fault("own-dir-left", "removes its socket but not the directory it made for it")
def _(m: Mutant) -> None:
    remove = listener.Listener.remove

    def keep_dir(self: Any) -> None:
        self._own_dir = None
        remove(self)

    patch(listener.Listener, "remove", keep_dir)


@fault("sigterm-default", "dies by SIGTERM without cleaning up, as go-plugin plugins do")
def _(m: Mutant) -> None:
    loop_class = asyncio.SelectorEventLoop
    add = loop_class.add_signal_handler

    def not_term(self: Any, sig: int, callback: Any, *args: Any) -> None:
        if sig != signal.SIGTERM:
            add(self, sig, callback, *args)

    patch(loop_class, "add_signal_handler", not_term)


@fault("sigterm-slow", "stops 2 s after SIGTERM")
def _(m: Mutant) -> None:
    loop_class = asyncio.SelectorEventLoop
    add = loop_class.add_signal_handler

    def late(self: Any, sig: int, callback: Any, *args: Any) -> None:
        if sig == signal.SIGTERM:
            add(self, sig, lambda: self.call_later(2.0, callback, *args))
        else:
            add(self, sig, callback, *args)

    patch(loop_class, "add_signal_handler", late)


@fault("host-exit-no-cleanup", "exits at once when its host has gone, leaving its socket")
def _(m: Mutant) -> None:
    async def abrupt(self: Any, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(0.05)
            if os.getppid() != self._host_pid:
                os._exit(0)

    patch(server.PluginProcess, "_watch_parent", abrupt)


def _exit_later(seconds: float) -> Fault:
    def delay(m: Mutant) -> None:
        run = server.run

        def late(plugin: Any, config: Any = None, environ: Any = None) -> int:
            code = run(plugin, config, environ)
            time.sleep(seconds)
            return code

        patch(server, "run", late)

    return delay


fault("shutdown-exit-300ms", "exits 300 ms after its server stopped on Shutdown")(_exit_later(0.3))
fault("shutdown-exit-3s", "exits 3 s after its server stopped on Shutdown")(_exit_later(3.0))


@fault("tcp", "listens on tcp although unix sockets exist")
def _(m: Mutant) -> None:
    m.config = ServeConfig(network="tcp")


@fault("tcp-ignore-port-range", "listens on tcp on any port, ignoring PLUGIN_MIN/MAX_PORT")
def _(m: Mutant) -> None:
    m.config = ServeConfig(network="tcp")
    patch(listener, "_port_range", lambda environ: None)


@fault("port-error-exit-0", "exits 0 when it cannot listen, as go-plugin's Serve returns")
def _(m: Mutant) -> None:
    m.config = ServeConfig(network="tcp")
    run = server.run
    patch(
        server, "run", lambda plugin, config=None, environ=None: run(plugin, config, environ) and 0
    )


@fault("port-range-unbounded", "takes ports outside 1..65535 for no range: any free port")
def _(m: Mutant) -> None:
    m.config = ServeConfig(network="tcp")
    port_range = listener._port_range

    def lenient(environ: Any) -> Any:
        low, high = environ.get("PLUGIN_MIN_PORT", ""), environ.get("PLUGIN_MAX_PORT", "")
        if low.isdigit() and high.isdigit() and int(low) <= int(high) and int(high) > 65535:
            return None
        return port_range(environ)

    patch(listener, "_port_range", lenient)


def _fixed_port(state_dir: str) -> int:
    """One port for every process of the mutant in ``state_dir``: the first one picks it."""
    path = os.path.join(state_dir, "fixed-port")
    with contextlib.suppress(FileExistsError):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        scratch = f"{path}.{os.getpid()}"
        with open(scratch, "w", encoding="ascii") as fh:
            fh.write(str(port))
        try:
            os.link(scratch, path)  # atomic: the first process's port wins
        finally:
            os.unlink(scratch)
    with open(path, encoding="ascii") as fh:
        return int(fh.read())


def _listen_on_fixed_port(m: Mutant, exclusive: bool) -> None:
    port = _fixed_port(m.state_dir)
    options = (("grpc.so_reuseport", 0),) if exclusive else ()
    m.config = ServeConfig(network="tcp", grpc_options=options)
    patch(listener, "_candidate_ports", lambda port_range: iter([port]))


@fault(
    "tcp-fixed-port",
    "listens on one fixed port, which its processes share (SO_REUSEPORT, as grpcio binds)",
)
def _(m: Mutant) -> None:
    _listen_on_fixed_port(m, exclusive=False)


@fault("tcp-fixed-port-exclusive", "listens on one fixed port; a second process cannot start")
def _(m: Mutant) -> None:
    _listen_on_fixed_port(m, exclusive=True)


@fault("exit-without-cleanup", "exits at once on Shutdown, leaving its socket file behind")
def _(m: Mutant) -> None:
    async def shutdown(self: Any, request: Any, context: Any) -> Any:
        asyncio.get_running_loop().call_later(0.05, os._exit, 0)
        return server.grpc_controller_pb2.Empty()

    patch(server.ControllerService, "Shutdown", shutdown)


@fault("receive-limit-1mib", "accepts messages of at most 1 MiB")
def _(m: Mutant) -> None:
    m.config = ServeConfig(grpc_options=(("grpc.max_receive_message_length", MIB),))


@fault("mtls-required", "refuses to start without PLUGIN_CLIENT_CERT: AutoMTLS only")
def _(m: Mutant) -> None:
    run = server.run

    def mtls_only(plugin: Any, config: Any = None, environ: Any = None) -> int:
        if not os.environ.get("PLUGIN_CLIENT_CERT"):
            sys.stderr.write("this plugin serves AutoMTLS only: PLUGIN_CLIENT_CERT is not set\n")
            return 1
        return run(plugin, config, environ)

    patch(server, "run", mtls_only)


@fault("mtls-ignored", "ignores PLUGIN_CLIENT_CERT and serves plaintext")
def _(m: Mutant) -> None:
    patch(server, "_auto_mtls", lambda environ: None)


@fault("mtls-fixed-key", "keeps its key pair in a file and reuses it")
def _(m: Mutant) -> None:
    path = os.path.join(m.state_dir, "mutant-key.json")

    def cached(organization: str = "pluginconf", curve: str = "P-256") -> mtls.CertificatePair:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                saved = json.load(fh)
            return mtls.CertificatePair(
                saved["cert"].encode(), saved["key"].encode(), bytes.fromhex(saved["der"])
            )
        pair = mtls.generate_certificate(organization, curve)
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(
                {
                    "cert": pair.cert_pem.decode(),
                    "key": pair.key_pem.decode(),
                    "der": pair.cert_der.hex(),
                },
                fh,
            )
        return pair

    patch(server, "generate_certificate", cached)


@fault("mtls-no-client-auth", "serves TLS without asking for a client certificate")
def _(m: Mutant) -> None:
    make = server.server_context

    def lax(cert_pem: bytes, key_pem: bytes, client_ca_pem: bytes) -> Any:
        import ssl

        ctx = make(cert_pem, key_pem, client_ca_pem)
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    patch(server, "server_context", lax)


@fault("mtls-tls-1.0", "accepts TLS 1.0 and 1.1 on AutoMTLS connections")
def _(m: Mutant) -> None:
    make = server.server_context

    def old(cert_pem: bytes, key_pem: bytes, client_ca_pem: bytes) -> Any:
        import ssl
        import warnings

        ctx = make(cert_pem, key_pem, client_ca_pem)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        return ctx

    patch(server, "server_context", old)


@fault("mtls-p521", "makes its AutoMTLS key on P-521, as go-plugin does")
def _(m: Mutant) -> None:
    make = server.generate_certificate
    patch(server, "generate_certificate", lambda *args: make("pluginconf", "P-521"))


@fault("mtls-bad-cert-ignored", "serves plaintext when PLUGIN_CLIENT_CERT is not a certificate")
def _(m: Mutant) -> None:
    auto = server._auto_mtls

    def lenient(environ: Any) -> Any:
        try:
            return auto(environ)
        except server.ServeConfigError:
            return None

    patch(server, "_auto_mtls", lenient)


@fault("health-any-service", "answers SERVING for any service name")
def _(m: Mutant) -> None:
    from grpc_health.v1 import health_pb2

    class AnyService(server.HealthService):  # type: ignore[misc]
        async def Check(self, request: Any, context: Any) -> Any:
            return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    patch(server, "HealthService", AnyService)


@fault("exit-status-1", "exits with status 1 after a graceful stop")
def _(m: Mutant) -> None:
    run = server.run
    patch(
        server, "run", lambda plugin, config=None, environ=None: run(plugin, config, environ) or 1
    )


@fault("sigint-exits", "does not ignore SIGINT")
def _(m: Mutant) -> None:
    real = signal

    class Signals(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        @staticmethod
        def signal(sig: int, handler: Any) -> Any:
            if sig == real.SIGINT:
                return real.getsignal(sig)
            return real.signal(sig, handler)

    patch(server, "signal", Signals("signal"))


@fault("ignore-host-exit", "does not notice its host's exit")
def _(m: Mutant) -> None:
    async def never(self: Any, stop: asyncio.Event) -> None:
        await stop.wait()

    patch(server.PluginProcess, "_watch_parent", never)


@fault("no-stdio", "does not serve plugin.GRPCStdio")
def _(m: Mutant) -> None:
    real = server.grpc_stdio_pb2_grpc
    stub = types.SimpleNamespace(**vars(real))
    stub.add_GRPCStdioServicer_to_server = lambda servicer, srv: None
    patch(server, "grpc_stdio_pb2_grpc", stub)


@fault("broker-ends-on-unusable", "ends the broker stream on an announcement it cannot use")
def _(m: Mutant) -> None:
    from pluginconf._grpc_compat import EOF

    async def read(self: Any, context: Any) -> None:
        while True:
            info = await context.read()
            if info is EOF or info.network not in ("unix", "tcp"):
                return
            async with self._arrived:
                self._known[info.service_id] = info
                self._arrived.notify_all()

    patch(plugin_broker.PluginBroker, "_read", read)


# -- hooks ------------------------------------------------------------------------------


@fault("implemented-lie", "does not list ExecuteCommand, which it answers")
def _(m: Mutant) -> None:
    answer = hooks.HooksService.Implemented

    async def lying(self: Any, request: Any, context: Any) -> Any:
        reply = await answer(self, request, context)
        return hooks_pb2.ImplementedResponse(
            hooks=[h for h in reply.hooks if h != "ExecuteCommand"]
        )

    patch(hooks.HooksService, "Implemented", lying)


@fault("implemented-duplicates", "lists ServeHTTP twice")
def _(m: Mutant) -> None:
    answer = hooks.HooksService.Implemented

    async def twice(self: Any, request: Any, context: Any) -> Any:
        reply = await answer(self, request, context)
        return hooks_pb2.ImplementedResponse(hooks=[*reply.hooks, "ServeHTTP"])

    patch(hooks.HooksService, "Implemented", twice)


@fault("exit-on-deactivate", "exits as soon as it is deactivated")
def _(m: Mutant) -> None:
    async def deactivate(request: Any) -> Any:
        os._exit(0)

    m.plugin.on_deactivate = deactivate  # type: ignore[method-assign]


@fault("exception-escapes", "lets a handler's exception escape (UNKNOWN) on an empty command")
def _(m: Mutant) -> None:
    execute = m.plugin.execute_command

    async def fragile(request: Any) -> Any:
        if not request.command:
            raise ValueError("empty command")
        return await execute(request)

    m.plugin.execute_command = fragile  # type: ignore[method-assign]

    async def call(self: Any, rpc: str, handler: Any, make_error: Any, context: Any) -> Any:
        try:
            return await handler()
        except AppError as exc:
            return make_error(exc)

    patch(hooks.HooksService, "_call", call)


@fault("crash-on-non-bmp", "dies on a post with characters outside the BMP")
def _(m: Mutant) -> None:
    filter_post = m.plugin.message_will_be_posted

    async def fragile(request: Any) -> Any:
        if any(ord(c) > 0xFFFF for c in request.post.message):
            os._exit(3)
        return await filter_post(request)

    m.plugin.message_will_be_posted = fragile  # type: ignore[method-assign]


@fault("oversize-answer", "answers a long command with twice its text (over 4 MiB)")
def _(m: Mutant) -> None:
    async def doubling(request: Any) -> Any:
        return hooks_pb2.ExecuteCommandResponse(text=request.command * 2, response_type="ephemeral")

    m.plugin.execute_command = doubling  # type: ignore[method-assign]


@fault("serialized-calls", "handles one hook call at a time, ServeHTTP included")
def _(m: Mutant) -> None:
    lock: list[asyncio.Lock] = []

    def the_lock() -> asyncio.Lock:
        if not lock:
            lock.append(asyncio.Lock())
        return lock[0]

    call = hooks.HooksService._call
    serve_http = hooks.HooksService.ServeHTTP

    async def one_call(self: Any, *args: Any) -> Any:
        async with the_lock():
            return await call(self, *args)

    async def one_stream(self: Any, request_iterator: Any, context: Any) -> None:
        async with the_lock():
            await serve_http(self, request_iterator, context)

    patch(hooks.HooksService, "_call", one_call)
    patch(hooks.HooksService, "ServeHTTP", one_stream)


@fault("rpc-limit", "caps its server at 12 concurrent calls, long-lived streams included")
def _(m: Mutant) -> None:
    make_server = grpc.aio.server
    patch(grpc.aio, "server", lambda *a, **k: make_server(*a, **k, maximum_concurrent_rpcs=12))


@fault("fd-leak", "opens a descriptor on every command and never closes it")
def _(m: Mutant) -> None:
    execute = m.plugin.execute_command
    leaked: list[int] = []

    async def leaking(request: Any) -> Any:
        leaked.append(os.open(os.devnull, os.O_RDONLY))
        return await execute(request)

    m.plugin.execute_command = leaking  # type: ignore[method-assign]


@fault("body-before-init", "sends a body frame before the response init")
def _(m: Mutant) -> None:
    send = asgi.Exchange.send

    async def early(self: Any, message: Any) -> None:
        if message["type"] == "http.response.start":
            await self._write(hooks_pb2.HTTPResponseFrame(body=b"!"))
        await send(self, message)

    patch(asgi.Exchange, "send", early)


# -- the conformance plugin's behaviours (sdk) ---------------------------------------------


@fault("no-posts-hook", "does not implement MessageHasBeenPosted")
def _(m: Mutant) -> None:
    class WithoutPosts(ReferencePlugin):
        message_has_been_posted = Plugin.message_has_been_posted  # type: ignore[assignment]

    m.plugin = WithoutPosts()


@fault("filter-broken", "keeps as modify, drops props on modify, rejects without a reason")
def _(m: Mutant) -> None:
    async def broken(request: Any) -> Any:
        message = request.post.message
        if "[reject]" in message:
            return hooks_pb2.MessageWillBePostedResponse(action=hooks_pb2.FILTER_ACTION_REJECT)
        post = hooks_pb2.Post(
            id=request.post.id, message=message.replace("[rewrite]", "[rewritten]")
        )
        return hooks_pb2.MessageWillBePostedResponse(
            action=hooks_pb2.FILTER_ACTION_MODIFY, post=post
        )

    m.plugin.message_will_be_posted = broken  # type: ignore[method-assign]


@fault("command-strips", "strips the text of /echo")
def _(m: Mutant) -> None:
    async def echo(rest: str) -> Any:
        return hooks_pb2.ExecuteCommandResponse(text=rest.strip(), response_type="ephemeral")

    m.plugin._commands["/echo"] = echo


@fault("unknown-command-crashes", "fails with an internal error on an unknown command")
def _(m: Mutant) -> None:
    execute = m.plugin.execute_command

    async def crashing(request: Any) -> Any:
        name = request.command.partition(" ")[0]
        if name not in m.plugin._commands and name not in ("/kv", "/hostconfig", "/log"):
            raise KeyError(name)
        return await execute(request)

    m.plugin.execute_command = crashing  # type: ignore[method-assign]


@fault("lifecycle-unlogged", "does not log OnDeactivate in /lifecycle")
def _(m: Mutant) -> None:
    async def deactivate(request: Any) -> Any:
        return hooks_pb2.OnDeactivateResponse()

    m.plugin.on_deactivate = deactivate  # type: ignore[method-assign]


@fault("config-unsorted", "answers /config with its keys unsorted and ASCII-escaped")
def _(m: Mutant) -> None:
    async def config(rest: str) -> Any:
        return hooks_pb2.ExecuteCommandResponse(
            text=json.dumps(m.plugin.configuration), response_type="ephemeral"
        )

    m.plugin._commands["/config"] = config


@fault("kv-local", "keeps /kv data in the plugin instead of the host's store")
def _(m: Mutant) -> None:
    store: dict[str, str] = {}
    host_command = m.plugin._host_command

    async def local(name: str, rest: str) -> str:
        if name != "/kv":
            return await host_command(name, rest)
        match rest.split(" "):
            case ["set", key, *value]:
                store[key] = " ".join(value)
                return "ok"
            case ["get", key]:
                return store.get(key, "(not found)")
            case ["delete", key]:
                return "deleted" if store.pop(key, None) is not None else "absent"
            case ["cas", key, old, new]:
                if store.get(key, "-") == old:
                    store[key] = new
                    return "swapped"
                return "not swapped"
        raise AppError("invalid_argument", "usage")

    m.plugin._host_command = local  # type: ignore[method-assign]


@fault("log-dropped", "answers /log without logging through the host")
def _(m: Mutant) -> None:
    host_command = m.plugin._host_command

    async def dropping(name: str, rest: str) -> str:
        return "logged" if name == "/log" else await host_command(name, rest)

    m.plugin._host_command = dropping  # type: ignore[method-assign]


@fault("broker-no-wait", "gives up a broker dial at once when the id is not yet announced")
def _(m: Mutant) -> None:
    m.config = ServeConfig(broker_dial_timeout_s=0.05)


@fault("no-hostapi-crashes", "fails with an internal error when there is no HostAPI")
def _(m: Mutant) -> None:
    host_command = m.plugin._host_command

    async def crashing(name: str, rest: str) -> str:
        if m.plugin._host_api is None:
            raise RuntimeError("no host api")
        return await host_command(name, rest)

    m.plugin._host_command = crashing  # type: ignore[method-assign]


@fault("stdio-swapped", "sends stdout as STDERR and stderr as STDOUT")
def _(m: Mutant) -> None:
    swap = {
        grpc_stdio_pb2.StdioData.STDOUT: grpc_stdio_pb2.StdioData.STDERR,
        grpc_stdio_pb2.StdioData.STDERR: grpc_stdio_pb2.StdioData.STDOUT,
    }
    stream = stdio.StdioService.StreamStdio

    async def swapped(self: Any, request: Any, context: Any) -> Any:
        async for item in stream(self, request, context):
            yield grpc_stdio_pb2.StdioData(channel=swap[item.channel], data=item.data)

    patch(stdio.StdioService, "StreamStdio", swapped)


@fault("stdio-replayed", "replays everything already sent to each new StreamStdio")
def _(m: Mutant) -> None:
    sent: list[Any] = []

    async def replaying(self: Any, request: Any, context: Any) -> Any:
        for item in list(sent):
            yield item
        async for channel, data in self._capture.drain():
            item = grpc_stdio_pb2.StdioData(channel=channel, data=data)
            sent.append(item)
            yield item

    patch(stdio.StdioService, "StreamStdio", replaying)


@fault("no-grace", "cancels calls in progress at Shutdown")
def _(m: Mutant) -> None:
    m.config = ServeConfig(shutdown_grace_s=0.0)


def _replace_route(m: Mutant, route: str, handler: Any) -> None:
    app: ReferenceApp = m.plugin.app
    app._routes[route] = handler


@fault("echo-flip-65536", "flips the byte at offset 65536 of an echo")
def _(m: Mutant) -> None:
    async def echo(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        offset = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = bytearray(message.get("body", b""))
            if offset <= 65536 < offset + len(body):
                body[65536 - offset] ^= 0xFF
            offset += len(body)
            more = message.get("more_body", False)
            await send({"type": "http.response.body", "body": bytes(body), "more_body": more})
            if not more:
                return

    _replace_route(m, "/echo", echo)


@fault("echo-appends-newline", "adds a newline at the end of an echo")
def _(m: Mutant) -> None:
    echo = m.plugin.app.echo

    async def appending(scope: Any, receive: Any, send: Any) -> None:
        async def send_more(message: Any) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                message = {**message, "body": bytes(message.get("body", b"")) + b"\n"}
            await send(message)

        await echo(scope, receive, send_more)

    _replace_route(m, "/echo", appending)


@fault("bytes-extra-byte", "sends one byte more than /bytes asks for")
def _(m: Mutant) -> None:
    async def generated(scope: Any, receive: Any, send: Any) -> None:
        query = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if "=" in p)
        n, seed = int(query["n"]), int(query.get("seed", "0"))
        headers = [(b"content-length", str(n).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for piece in iter_bytes(n + 1, seed):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    _replace_route(m, "/bytes", generated)


@fault("oversize-frames", "sends response bodies in 5 MiB frames")
def _(m: Mutant) -> None:
    init = asgi.Exchange.__init__

    def big(self: Any, context: Any, chunk_bytes: int = 5 * MIB) -> None:
        init(self, context, 5 * MIB)

    patch(asgi.Exchange, "__init__", big)


@fault("echo-buffers", "reads the whole request body before echoing any of it")
def _(m: Mutant) -> None:
    async def echo(scope: Any, receive: Any, send: Any) -> None:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": bytes(body)})

    _replace_route(m, "/echo", echo)


@fault("flush-ignored", "holds flushed pieces back until the response ends")
def _(m: Mutant) -> None:
    send = asgi.Exchange.send

    async def holding(self: Any, message: Any) -> None:
        if message["type"] == "http.response.body" and message.get("more_body", False):
            self._held = getattr(self, "_held", b"") + bytes(message.get("body", b""))
            return
        if message["type"] == "http.response.body":
            message = {
                **message,
                "body": getattr(self, "_held", b"") + bytes(message.get("body", b"")),
            }
        await send(self, message)

    patch(asgi.Exchange, "send", holding)


@fault("disconnect-swallowed", "never gives the handler http.disconnect when the client leaves")
def _(m: Mutant) -> None:
    receive = asgi.Exchange.receive

    async def swallowing(self: Any) -> Any:
        message = await receive(self)
        if message["type"] == "http.disconnect":
            await asyncio.Event().wait()  # the bug: the handler waits until it is cancelled
        return message

    patch(asgi.Exchange, "receive", swallowing)


@fault("half-close-is-end", "takes a request stream that stops without end for a complete body")
def _(m: Mutant) -> None:
    receive = asgi.Exchange.receive

    async def lenient(self: Any) -> Any:
        message = await receive(self)
        if message["type"] == "http.disconnect" and not self.request_complete:
            self.disconnected = False
            self.request_complete = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return message

    patch(asgi.Exchange, "receive", lenient)


@fault("first-header-value", "passes only the first value of each request header")
def _(m: Mutant) -> None:
    build = asgi.build_scope

    def first_only(init: Any, state: Any) -> Any:
        scope = build(init, state)
        seen: set[bytes] = set()
        kept = []
        for name, value in scope["headers"]:
            if name not in seen:
                seen.add(name)
                kept.append((name, value))
        scope["headers"] = kept
        return scope

    patch(asgi, "build_scope", first_only)


@fault("path-decoded", "gives the handler a decoded raw_path and query")
def _(m: Mutant) -> None:
    from urllib.parse import unquote

    build = asgi.build_scope

    def decoded(init: Any, state: Any) -> Any:
        scope = build(init, state)
        scope["raw_path"] = scope["path"].encode()
        scope["query_string"] = unquote(scope["query_string"].decode()).encode()
        return scope

    patch(asgi, "build_scope", decoded)


@fault("headers-ungrouped", "sends one response header per value")
def _(m: Mutant) -> None:
    def ungrouped(raw: Any) -> Any:
        return [
            hooks_pb2.HTTPHeader(name=bytes(n).decode().lower(), values=[bytes(v).decode()])
            for n, v in raw or ()
        ]

    patch(asgi, "group_headers", ungrouped)


@fault("status-off-by-one", "answers /status/N with N + 1")
def _(m: Mutant) -> None:
    async def status(scope: Any, receive: Any, send: Any) -> None:
        code = int(scope["path"].rsplit("/", 1)[1]) + 1
        await send({"type": "http.response.start", "status": code, "headers": []})
        await send({"type": "http.response.body", "body": f"status {code}\n".encode()})

    patch(m.plugin.app, "status", status)


@fault("handler-error-as-status", "ends the call with INTERNAL when a handler fails early")
def _(m: Mutant) -> None:
    fail = asgi.Exchange._fail

    async def aborting(self: Any, error: str) -> None:
        if not self.response_started:
            await self._context.abort(grpc.StatusCode.INTERNAL, error)
        await fail(self, error)

    patch(asgi.Exchange, "_fail", aborting)


@fault("truncation-hidden", "ends a failed response as if it were complete")
def _(m: Mutant) -> None:
    fail = asgi.Exchange._fail

    async def hiding(self: Any, error: str) -> None:
        if self.response_started and not self.response_ended:
            await self._write(hooks_pb2.HTTPResponseFrame(end=hooks_pb2.HTTPResponseEnd()))
            self.response_ended = True
            return
        await fail(self, error)

    patch(asgi.Exchange, "_fail", hiding)


@fault("delay-ignored", "answers /delay at once")
def _(m: Mutant) -> None:
    async def delay(scope: Any, receive: Any, send: Any) -> None:
        ms = scope["query_string"].decode().partition("ms=")[2]
        body = f"delayed {ms} ms\n".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    _replace_route(m, "/delay", delay)


# -- hidden bugs: found by fuzzing, not by any fixed case (tests/test_fuzz_finds_bugs.py) ----

HIDDEN: dict[str, tuple[str, Fault]] = {}


def hidden(name: str, breaks: str) -> Callable[[Fault], Fault]:
    return fault(name, breaks, HIDDEN)


@hidden(
    "chunk-off-by-one",
    "drops the last byte of a response piece one byte past a 64 KiB boundary "
    "(65536*k + 1 bytes, k >= 1), an off-by-one in the frame splitter",
)
def _(m: Mutant) -> None:
    send = asgi.Exchange.send

    async def off_by_one(self: Any, message: Any) -> None:
        body = message.get("body", b"")
        if message["type"] == "http.response.body" and len(body) % 65536 == 1 < len(body):
            message = {**message, "body": body[:-1]}
        await send(self, message)

    patch(asgi.Exchange, "send", off_by_one)


@hidden(
    "fourth-header-value",
    "gives the handler at most three values of a request header (a fixed-size buffer)",
)
def _(m: Mutant) -> None:
    build = asgi.build_scope

    def three_at_most(init: Any, state: Any) -> Any:
        scope = build(init, state)
        seen: dict[bytes, int] = {}
        kept = []
        for name, value in scope["headers"]:
            seen[name] = seen.get(name, 0) + 1
            if seen[name] <= 3:
                kept.append((name, value))
        scope["headers"] = kept
        return scope

    patch(asgi, "build_scope", three_at_most)


def main(argv: list[str]) -> None:
    every = {**FAULTS, **HIDDEN}
    if not argv or argv[0] not in every:
        names = "\n  ".join(f"{n}: {d}" for n, (d, _) in every.items())
        sys.stderr.write(
            f"usage: reference_mutant.py FAULT [--state-dir DIR]\nfaults:\n  {names}\n"
        )
        raise SystemExit(2)
    state_dir = argv[argv.index("--state-dir") + 1] if "--state-dir" in argv else os.getcwd()
    mutant = Mutant(state_dir)
    every[argv[0]][1](mutant)
    server.serve(mutant.plugin, mutant.config)


if __name__ == "__main__":
    main(sys.argv[1:])
