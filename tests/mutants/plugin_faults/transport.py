"""Plugin faults in transport (TR, SV).

The unix socket and its directory, tcp and its ports, signals and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import tempfile
import time
from typing import Any

from plugin_faults.common import Fault, Mutant, fault, patch

from pluginconf.plugin import ServeConfig, server
from pluginconf.plugin.serving import listener, process, services


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
            if os.getppid() != self.host_pid:
                os._exit(0)

    patch(process.PluginProcess, "watch_parent", abrupt)


def _exit_later(seconds: float) -> Fault:
    def delay(m: Mutant) -> None:
        run = server.run

        def late(plugin: Any, config: Any = None, environ: Any = None) -> int:
            code = run(plugin, config, environ)
            time.sleep(seconds)
            return code

        patch(server, "run", late)

    return delay


# Late enough that a loaded machine's calibration (a minimal process's stop, often 0.2 s
# under CI's load) cannot cover it, early enough for CT-10's 2 s.
fault("shutdown-exit-700ms", "exits 700 ms after its server stopped on Shutdown")(_exit_later(0.7))
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
        return services.grpc_controller_pb2.Empty()

    patch(services.ControllerService, "Shutdown", shutdown)
