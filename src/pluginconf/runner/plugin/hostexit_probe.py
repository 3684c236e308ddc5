"""A host that dies: how the plugin suite checks that a plugin outlives its host by < 2 s (CT-8).

Run as ``python -m pluginconf.runner.plugin.hostexit_probe TIMEOUT -- PLUGIN_CMD...`` with the
plugin's environment already set. The probe makes itself the child subreaper, forks a
"host" that starts the plugin (its own process group, stdin /dev/null, stdout a pipe),
reads its handshake line and exits at once. The plugin is re-parented to the probe, which
waits up to TIMEOUT seconds for it to exit, reaps it, kills what is left of its process
group, and prints one JSON line:

  {"plugin_pid": P, "handshake": LINE, "exited_after_s": S or null, "status": N or null}

``exited_after_s`` counts from the host's exit. The plugin's stderr is the probe's.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def _host(argv: list[str], report: int, timeout_s: float) -> None:
    # Bounded: a host that never sees a handshake dies too (SIGALRM's default action).
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    plugin = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=True
    )
    os.write(report, json.dumps({"plugin_pid": plugin.pid}).encode() + b"\n")
    assert plugin.stdout is not None
    line = plugin.stdout.readline().decode("utf-8", "replace").rstrip("\n")
    os.write(report, json.dumps({"handshake": line}).encode() + b"\n")
    os._exit(0)  # the host dies without stopping its plugin


def _wait_exit(pid: int, timeout_s: float) -> int | None:
    """Reap ``pid`` if it exits within ``timeout_s``; its wait status, or None."""
    fd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([fd], [], [], timeout_s)
    finally:
        os.close(fd)
    if not ready:
        return None
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _reap_orphans(bound_s: float) -> None:
    """Reap what else was re-parented to us (what the plugin left behind), for a bounded time."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError

    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, bound_s)
    try:
        while True:
            os.waitpid(-1, 0)
    except (ChildProcessError, TimeoutError):
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def main(args: list[str]) -> int:
    if len(args) < 3 or args[1] != "--":
        print("usage: hostexit_probe TIMEOUT -- PLUGIN_CMD...", file=sys.stderr)
        return 2
    timeout_s, argv = float(args[0]), args[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("hostexit_probe: cannot become a child subreaper", file=sys.stderr)
        return 2
    read_end, write_end = os.pipe()
    host = os.fork()
    if host == 0:
        os.close(read_end)
        _host(argv, write_end, timeout_s)
    os.close(write_end)
    os.waitpid(host, 0)
    host_exited = time.monotonic()
    started: dict[str, object] = {}
    with os.fdopen(read_end, "rb") as report:
        for line in report.read().splitlines():
            started.update(json.loads(line))
    pid = started.get("plugin_pid")
    result: dict[str, object] = {"handshake": None, **started, "exited_after_s": None}
    result["status"] = None
    if isinstance(pid, int):
        status = _wait_exit(pid, timeout_s)
        if status is None:
            os.killpg(pid, signal.SIGKILL)
            _, _ = os.waitpid(pid, 0)
        else:
            result.update(exited_after_s=time.monotonic() - host_exited, status=status)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # whatever the plugin left in its group
    _reap_orphans(bound_s=2.0)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
