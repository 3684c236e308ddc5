#!/usr/bin/env python3
"""A plugin that answers the handshake as a Mattermost (go-plugin netrpc) plugin does.

Standard library only. It checks Mattermost's cookie and PLUGIN_PROTOCOL_VERSIONS as
go-plugin's Serve does (the cookie refusal's three lines, exit 1; the highest common version,
else its lowest; a warning for each entry that is not an integer), listens on a private unix
socket, prints ``1|1|unix|PATH|netrpc``, and accepts connections without speaking netrpc (the
conformance suite makes no netrpc call). It ignores SIGINT, and on SIGTERM or its parent's
exit it removes its socket (and the directory it made for it) and exits 0.

    netrpc_plugin.py [--share-socket PATH]

``--share-socket PATH``: listen at PATH whatever the host says, replacing a socket already
there (a plugin on a fixed address).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading

COOKIE = ("MATTERMOST_PLUGIN", "Securely message teams, anywhere.")
VERSIONS = (1,)
NOT_DIRECTLY = (
    "This binary is a plugin. These are not meant to be executed directly.\n"
    "Please execute the program that consumes these plugins, which will\n"
    "load any plugins automatically\n"
)


def negotiate(text: str) -> int:
    offered = set()
    for entry in text.split(",") if text else []:
        # As go's strconv.Atoi: an optional sign and ASCII digits, no whitespace.
        if re.fullmatch(r"[+-]?[0-9]+", entry):
            offered.add(int(entry))
        else:
            sys.stderr.write(f"server sent invalid plugin version {entry!r}\n")
    common = [v for v in VERSIONS if v in offered]
    return max(common) if common else min(VERSIONS)


def main(argv: list[str]) -> int:
    if os.environ.get(COOKIE[0]) != COOKIE[1]:
        sys.stderr.write(NOT_DIRECTLY)
        return 1
    version = negotiate(os.environ.get("PLUGIN_PROTOCOL_VERSIONS", ""))
    own_dir = None
    if "--share-socket" in argv:
        path = argv[argv.index("--share-socket") + 1]
        if os.path.exists(path):
            os.unlink(path)  # as daemons with a fixed path do: it takes another's place
    else:
        parent = os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or None
        if parent is None:
            parent = own_dir = tempfile.mkdtemp(prefix="plugin")
        path = os.path.join(parent, f"plugin{os.getpid()}.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        server.bind(path)
    finally:
        os.umask(old)
    server.listen()
    host = os.getppid()
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())

    def accept() -> None:
        held = []
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            held.append(connection)  # a netrpc host would speak yamux here

    threading.Thread(target=accept, daemon=True).start()
    sys.stdout.write(f"1|{version}|unix|{path}|netrpc\n")
    sys.stdout.flush()
    while not stop.wait(0.05):
        if os.getppid() != host:
            break
    server.close()
    if "--share-socket" not in argv:
        os.unlink(path)
    if own_dir is not None:
        shutil.rmtree(own_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.stdout.flush()
    os._exit(main(sys.argv[1:]))
