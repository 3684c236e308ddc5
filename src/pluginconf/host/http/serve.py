"""`pluginconf serve`: the reference host as a real server over a plugin directory.

uvicorn serves the HTTP front. Its lifespan enables every plugin at start-up and, when
uvicorn stops on SIGTERM or SIGINT, stops them all by the stop sequence before exiting.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import sys
from pathlib import Path

import uvicorn

from pluginconf.host.environment import Environment
from pluginconf.host.errors import HostError
from pluginconf.host.http.front import HTTPFront
from pluginconf.host.launcher import LaunchSpec
from pluginconf.host.manifest import load_directory

log = logging.getLogger("pluginconf.host.serve")


def build_environment(plugins_dir: Path) -> tuple[Environment, list[str]]:
    """The environment for a plugin directory, and the problems of manifests left out."""
    manifests, problems = load_directory(plugins_dir)
    env = Environment()
    for m in manifests:
        spec = LaunchSpec(
            argv=m.argv,
            plugin_id=m.id,
            magic_cookie=m.magic_cookie,
            protocol_versions=m.protocol_versions,
            env=dict(m.env),
        )
        env.add(m.id, spec, m.configuration)
    return env, [str(p) for p in problems]


def listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound before any plugin starts: a busy port is a usage error,
    not plugins started and stopped again (uvicorn binds only after its lifespan)."""
    try:
        return socket.create_server((host, port), backlog=2048)
    except OSError as exc:
        # create_server's own strerror carries a "(while attempting to bind ...)" tail.
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        hint = ""
        if exc.errno == errno.EADDRINUSE:
            hint = "; another process listens there: choose another --port, or stop it"
        elif exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(
            exc, socket.gaierror
        ):
            hint = "; --host must be an address of this machine (127.0.0.1, 0.0.0.0, ...)"
        elif exc.errno == errno.EACCES:
            hint = "; ports below 1024 need privileges: choose another --port"
        raise ServeError(f"cannot listen on {host}:{port}: {reason}{hint}") from None


class ServeError(HostError):
    """`pluginconf serve` cannot start: exit 2 with this message."""


def run_server(plugins_dir: str, host: str, port: int, max_body: int | None) -> int:
    root = Path(plugins_dir)
    if not root.is_dir():
        print(f"pluginconf serve: --plugins {plugins_dir!r} is not a directory", file=sys.stderr)
        return 2
    try:
        sock = listen(host, port)
    except ServeError as exc:
        print(f"pluginconf serve: {exc}", file=sys.stderr)
        return 2
    try:
        return _serve(root, sock, host, port, max_body)
    finally:
        sock.close()


def _serve(root: Path, sock: socket.socket, host: str, port: int, max_body: int | None) -> int:
    env, problems = build_environment(root)
    for problem in problems:
        print(f"pluginconf serve: skipping a plugin: {problem}", file=sys.stderr)
    if not env.plugins:
        print(f"pluginconf serve: no usable plugin.toml under {root}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    front = HTTPFront(env, max_body_bytes=max_body)
    config = uvicorn.Config(front, host=host, port=port, lifespan="on", log_level="info")
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal into the
    # handler it found: make that a no-op, so that a clean stop exits 0.
    received: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: received.append(signum))
    log.info("listening on http://%s:%d", host, port)
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))
    if received:
        log.info("stopped by %s", signal.Signals(received[0]).name)
    return 0
