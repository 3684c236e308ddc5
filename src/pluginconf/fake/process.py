"""fakeplugin's process: its phases from start to exit, as its scenario says.

Run as ``python -m pluginconf.fake SCENARIO.json`` or ``fake_interpreters/fakeplugin
SCENARIO.json`` (fake_interpreters/README.md lists the scenario keys). What is conformant is
the SDK's own code: the serving phase is the SDK's ``PluginProcess`` (fake.serving overrides its
steps), the hooks are a ``pluginconf.plugin.Plugin`` served by the SDK's ``HooksService``, and
the listener, broker, stdio capture, cookie check and version negotiation are the SDK's too.
What must break the protocol is done in the overridden steps and here: the handshake line is
written raw (or a bad one, or none), and the health and controller services are the fake's
(fake.services), so that they can hang, report NOT_SERVING, flap, or ignore Shutdown.

Process phases, in order:
  started     record opened, "started" recorded; cookie checked (exit 1 as the SDK does)
  pre-serve   grandchild, early stderr flood, noise lines, slow start; or one of the
              non-serving endings: never handshake, a literal line, exit, closed stdout
  serving     gRPC server listening, stdio captured, handshake written
  stopping    on Shutdown, SIGTERM or the host's exit (unless ignored): health NOT_SERVING,
              in-flight calls get the SDK's grace, socket removed, exit 0
A crash ends any phase at once with ``os._exit``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import NoReturn

from pluginconf.fake.record import ObserverUnreachable, Recorder, started_fields
from pluginconf.fake.scenario.model import (
    EXIT_SCENARIO_ERROR,
    Flood,
    Scenario,
)
from pluginconf.fake.serving import FakeProcess, fake_auto_mtls
from pluginconf.plugin import ServeConfig, ServeConfigError
from pluginconf.plugin.server import COOKIE_EXPLANATION, check_cookie
from pluginconf.plugin.serving.mtls import auto_mtls_from_env
from pluginconf.protocol.constants import (
    ENV_PROTOCOL_VERSIONS,
    MagicCookie,
)
from pluginconf.protocol.versions import negotiate_version, parse_protocol_versions

log = logging.getLogger("fakeplugin")


class Runner:
    """The fake's process: its stop requests (signals, the host's exit, Shutdown), its
    crashes, and the phases before and around serving."""

    def __init__(
        self,
        scenario: Scenario,
        rec: Recorder,
        config: ServeConfig,
        app_version: int,
        environ: Mapping[str, str],
    ) -> None:
        self.scenario = scenario
        self.rec = rec
        self.config = config
        self.app_version = app_version
        self.environ = environ
        self.host_pid = os.getppid()
        self.stop_reason = ""
        self._stop: asyncio.Event | None = None

    # -- stopping and crashing ------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        assert self._stop is not None
        if not self._stop.is_set():
            self.stop_reason = reason
            self._stop.set()

    def crash(self, reason: str) -> NoReturn:
        code = self.scenario.crash.exit_code if self.scenario.crash else 3
        self.rec.event("exiting", reason=reason, status=code)
        log.warning("crashing as the scenario asks (%s), exit status %d", reason, code)
        os._exit(code)

    def _on_signal(self, sig: signal.Signals) -> None:
        ignored = sig == signal.SIGINT or self.scenario.ignore_shutdown
        self.rec.event("signal", signal=sig.name, ignored=ignored)
        if not ignored:
            self.request_stop(sig.name)

    async def _watch_host(self) -> None:
        # Not the SDK's PluginProcess.watch_parent: this one runs from the start, so that the
        # phases before serving notice the host's exit too, and it records what it saw.
        if self.host_pid == 1:
            return  # started by init: no host to outlive
        while True:
            await asyncio.sleep(self.config.parent_check_interval_s)
            if os.getppid() != self.host_pid:
                self.rec.event("host_gone", host_pid=self.host_pid)
                self.request_stop("host_gone")
                return

    async def wait_stop(self, timeout_s: float | None = None) -> bool:
        """Wait for a stop request; True if one came within ``timeout_s``."""
        assert self._stop is not None
        try:
            await asyncio.wait_for(self._stop.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    # -- phases -----------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        # From the start, not at the handshake as the SDK's announce step: every phase stops on
        # them, and the scenario may ignore them (recorded either way).
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        watcher = asyncio.ensure_future(self._watch_host())
        try:
            return await self._run()
        finally:
            watcher.cancel()

    async def _run(self) -> int:
        scenario = self.scenario
        if scenario.spawn_grandchild is not None:
            self._spawn_grandchild(scenario.spawn_grandchild.seconds)
        if scenario.flood_stderr is not None and scenario.flood_stderr.when == "before":
            self.start_flood(os.dup(2), scenario.flood_stderr, "stderr")
        if scenario.noise_before_handshake:
            self.rec.event("noise", lines=len(scenario.noise_before_handshake))
        for line in scenario.noise_before_handshake:
            os.write(1, (line + "\n").encode())
        if scenario.slow_start_s and await self.wait_stop(scenario.slow_start_s):
            return 0
        fault = scenario.handshake
        if scenario.never_handshake:
            await self.wait_stop()
            return 0
        if fault is None:
            return await self._serve()
        if fault.exit_before is not None:
            message = fault.stderr
            if message is None:
                message = (
                    f"fakeplugin: exiting with status {fault.exit_before} before the handshake, "
                    "as the scenario asks"
                )
            os.write(2, (message + "\n").encode())
            self.stop_reason = "handshake.exit_before"
            return fault.exit_before
        if fault.close_stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.close(devnull)
            self.rec.event("stdout_closed")
        else:
            assert fault.line is not None
            line = fault.line
            # Only a line that is otherwise a whole handshake gets a sixth field.
            whole = fault.with_certificate and line.count("|") == 4
            tls = auto_mtls_from_env(self.environ) if whole else None
            if tls is not None:
                line += "|" + base64.b64encode(tls.cert_der).decode("ascii").rstrip("=")
            self.rec.event("handshake", line=line)
            os.write(1, (line + "\n").encode())
        await self.wait_stop()
        return 0

    def _spawn_grandchild(self, seconds: float) -> None:
        # Same process group (no new session): only a host that kills the group ends it.
        child = subprocess.Popen(
            ["sleep", f"{seconds:g}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        threading.Thread(target=child.wait, name="grandchild-reaper", daemon=True).start()
        self.rec.event("grandchild", grandchild_pid=child.pid, seconds=seconds)
        log.info("grandchild pid %d", child.pid)

    def start_flood(self, fd: int, spec: Flood, stream: str) -> None:
        total = spec.bytes
        line = b"x" * (spec.line_bytes - 1) + b"\n"

        def flood() -> None:
            self.rec.event("flood_started", bytes=total, stream=stream, line_bytes=len(line))
            block = line * max(1, 65536 // len(line))
            left = total
            try:
                while left > 0:
                    view = memoryview(block)[: min(left, len(block))]
                    while view:
                        written = os.write(fd, view)
                        view = view[written:]
                        left -= written
            except OSError as exc:
                self.rec.event("flood_failed", bytes=total - left, error=str(exc), stream=stream)
                return
            finally:
                os.close(fd)
            self.rec.event("flood_done", bytes=total, stream=stream)

        threading.Thread(target=flood, name="stderr-flood", daemon=True).start()

    async def _serve(self) -> int:
        tls, sixth = fake_auto_mtls(self.scenario.tls, self.environ)
        return await FakeProcess(self, tls, sixth).run()


def _log_to(fd: int) -> None:
    stream = os.fdopen(fd, "w", buffering=1, closefd=True)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for name in ("pluginconf", "fakeplugin"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _exit_unusable(scenario: Scenario, message: str) -> NoReturn:
    """Exit 2 (as for a bad scenario): the record cannot be made."""
    sys.stderr.write(f"fakeplugin: scenario {scenario.path}: {message}\n")
    sys.stderr.flush()
    # os._exit: a gRPC channel may hold threads that a normal exit would wait for.
    os._exit(EXIT_SCENARIO_ERROR)


def run(scenario: Scenario) -> NoReturn:
    """Be the plugin the scenario describes, then exit the process."""
    config = ServeConfig(
        magic_cookie=MagicCookie(*scenario.magic_cookie),
        protocol_versions=scenario.protocol_versions,
        network="tcp" if scenario.network == "tcp" else "unix",
    )
    environ = os.environ
    try:
        rec = Recorder(scenario.record)
    except OSError as exc:
        _exit_unusable(scenario, f"record.file: cannot open: {exc}")
    try:
        rec.first("started", **started_fields(scenario, config))
    except ObserverUnreachable as exc:
        _exit_unusable(
            scenario,
            f"record.observer: {exc}; expected the suite's Observer service "
            "(pluginconf.conformance.v1.Observer) listening there: start it before the plugin, "
            "or fix the address",
        )
    _log_to(os.dup(2))
    status, reason, problem = 1, "magic_cookie", ""
    if check_cookie(config, environ):
        offered, invalid = parse_protocol_versions(environ.get(ENV_PROTOCOL_VERSIONS, ""))
        for entry in invalid:
            log.warning("%s: ignoring %r, not an integer", ENV_PROTOCOL_VERSIONS, entry)
        version, _ = negotiate_version(config.protocol_versions, offered)
        runner = Runner(scenario, rec, config, version, environ)
        try:
            status = asyncio.run(runner.run())
            reason = runner.stop_reason
        except ServeConfigError as exc:
            sys.stderr.write(f"plugin cannot serve: {exc}\n")
            status, reason, problem = 1, "cannot_serve", str(exc)
    else:
        sys.stderr.write(COOKIE_EXPLANATION)
        problem = f"{config.magic_cookie.key} is not {config.magic_cookie.value!r}"
    # ``problem``: why the fake refused to serve, for the suite's evidence.
    rec.event("exiting", reason=reason, status=status, **({"problem": problem} if problem else {}))
    sys.stderr.flush()
    os._exit(status)
