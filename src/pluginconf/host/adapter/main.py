"""`pluginconf reference-host-adapter`: the reference host, driven by the host conformance suite.

The suite starts this program with PLUGINCONF_CONTROL_ADDRESS set to a gRPC target and drives
one Environment through HostControl (service.py). The host's real HTTP front
(HTTPFront under uvicorn) listens on 127.0.0.1 on a port of the system's choosing, announced
by GetHostInfo.

It stops, leaving no plugin process and no socket directory behind, on SIGTERM or SIGINT
(every plugin by the stop sequence, concurrently: SV-19) and when its parent process goes
away; then it exits 0. Exit status 2: PLUGINCONF_CONTROL_ADDRESS missing or unusable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import stat
import sys
from collections.abc import Iterator

import grpc
import uvicorn

from pluginconf import __version__
from pluginconf.control import control_pb2_grpc
from pluginconf.host.adapter.service import HostControlService
from pluginconf.host.environment import Environment
from pluginconf.host.errors import HostError
from pluginconf.host.http.front import HTTPFront

log = logging.getLogger("pluginconf.host.adapter")

ENV_CONTROL_ADDRESS = "PLUGINCONF_CONTROL_ADDRESS"
EXIT_OK = 0
EXIT_USAGE = 2
NAME = f"pluginconf reference host {__version__} (adapter)"
PARENT_POLL_S = 0.2
_FRONT_START_S = 10.0
_FRONT_STOP_S = 5.0
_CONTROL_GRACE_S = 1.0


class AdapterError(HostError):
    """The adapter cannot serve; the message says what to set or fix."""


class _FrontServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the adapter handles SIGTERM and SIGINT itself, with the plugins to stop


class HTTPFrontRunner:
    """HTTPFront under uvicorn on 127.0.0.1, port chosen by the system."""

    def __init__(self, env: Environment) -> None:
        self._sock = _listen_loopback()
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            HTTPFront(env),
            lifespan="off",  # the suite enables plugins through HostControl
            log_config=None,  # keep the adapter's logging
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = _FrontServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        try:
            async with asyncio.timeout(_FRONT_START_S):
                while not self._server.started:
                    if self._task.done():
                        break
                    await asyncio.sleep(0.01)  # uvicorn offers no event for "started"
        except TimeoutError:
            pass
        if not self._server.started:
            await self.stop()
            raise AdapterError(f"the HTTP front did not start within {_FRONT_START_S:g}s")

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=_FRONT_STOP_S)
            if not done:
                self._task.cancel()
                await asyncio.wait({self._task})
            if not self._task.cancelled() and self._task.exception() is not None:
                log.warning("the HTTP front stopped with %r", self._task.exception())
        self._sock.close()


def _listen_loopback() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise AdapterError(f"cannot listen for HTTP on 127.0.0.1: {exc.strerror or exc}") from None
    return sock


def start_control_server(address: str, service: HostControlService) -> grpc.aio.Server:
    server = grpc.aio.server()
    control_pb2_grpc.add_HostControlServicer_to_server(service, server)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:
        raise AdapterError(_bind_problem(address, "it could not be bound")) from None
    if port == 0:  # older grpcio reports a failed bind this way
        raise AdapterError(_bind_problem(address, "it could not be bound"))
    return server


def _bind_problem(address: str, problem: str) -> str:
    return (
        f"cannot serve HostControl on {ENV_CONTROL_ADDRESS}={address!r}: {problem}; set it to "
        "a gRPC address this process can listen on, e.g. unix:/tmp/DIR/control.sock "
        "(DIR must exist) or 127.0.0.1:PORT"
    )


async def watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    """Set ``stop`` once the process that started us is gone (we were re-parented)."""
    while os.getppid() == parent_pid:  # noqa: ASYNC110
        await asyncio.sleep(PARENT_POLL_S)  # the kernel tells no one; poll it
    log.warning("the parent process %d went away: stopping every plugin", parent_pid)
    stop.set()


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _signalled, sig, stop)


def _signalled(sig: signal.Signals, stop: asyncio.Event) -> None:
    log.info("%s: stopping every plugin", sig.name)
    stop.set()


async def serve(address: str, parent_pid: int) -> None:
    """Serve until a signal or the parent's exit; every plugin is stopped before returning."""
    stop = asyncio.Event()
    _on_signals(stop)
    env = Environment()
    front = HTTPFrontRunner(env)
    service = HostControlService(env, front.base_url, NAME)
    control: grpc.aio.Server | None = None
    try:
        control = start_control_server(address, service)
        await front.start()
        await control.start()
        log.info("HostControl on %s, HTTP front on %s", address, front.base_url)
        await _until_stopped(stop, parent_pid)
    finally:
        service.stop_accepting()  # no plugin may start from here on
        # Plugins by the stop sequence, all at once (SV-19); meanwhile the front drains.
        for outcome in await asyncio.gather(env.stop_all(), front.stop(), return_exceptions=True):
            if isinstance(outcome, BaseException):
                log.error("while stopping: %r", outcome)
        service.end_watches()  # after the plugins, so that watchers see them stop
        if control is not None:
            await control.stop(_CONTROL_GRACE_S)
            _remove_unix_socket(address)


async def _until_stopped(stop: asyncio.Event, parent_pid: int) -> None:
    parent = asyncio.create_task(watch_parent(parent_pid, stop))
    try:
        await stop.wait()
    finally:
        parent.cancel()


def _remove_unix_socket(address: str) -> None:
    """The control socket is ours to remove: gRPC leaves the file behind."""
    if address.startswith("unix://"):
        path = address[len("unix://") :]
    elif address.startswith("unix:"):
        path = address[len("unix:") :]
    else:
        return
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)


def run_adapter(verbose: bool = False) -> int:
    parent_pid = os.getppid()
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    address = os.environ.get(ENV_CONTROL_ADDRESS, "").strip()
    if not address:
        print(
            f"pluginconf reference-host-adapter: {ENV_CONTROL_ADDRESS} is not set; set it to "
            "the gRPC address to serve HostControl on, e.g. unix:/tmp/DIR/control.sock "
            "(the host conformance suite, `pluginconf host`, sets it)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        asyncio.run(serve(address, parent_pid))
    except AdapterError as exc:
        print(f"pluginconf reference-host-adapter: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK
