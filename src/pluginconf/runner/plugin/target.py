"""What a plugin case is given: the target, its shared process, and fresh ones on demand.

Every process a case starts through the target is stopped, reaped and cleaned up when the case
ends, whatever happened; the shared process belongs to the pool (shared.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pluginconf.host.launcher import build_env, spawn
from pluginconf.protocol.mtls import generate_certificate
from pluginconf.runner.model import Profile, skip
from pluginconf.runner.options import PluginSuiteOptions
from pluginconf.runner.plugin.fresh import FreshPlugin
from pluginconf.runner.plugin.shared import SharedPlugin, SharedPool, ensure_own_address
from pluginconf.runner.targets import AutoMTLS


@dataclass(frozen=True)
class HostExit:
    """What the host-exit probe saw (hostexit_probe.py)."""

    plugin_pid: int | None
    handshake: str | None
    exited_after_s: float | None
    status: int | None
    stderr: str
    # The unix socket the plugin announced, when it was still there after the plugin
    # exited by itself (TR-13); None when it was removed or the plugin did not exit.
    socket_left: str | None = None


def _socket_left(handshake: object, exited_after_s: object) -> str | None:
    if not isinstance(handshake, str) or exited_after_s is None:
        return None
    fields = handshake.split("|")
    if len(fields) < 4 or fields[2] != "unix":
        return None
    return fields[3] if os.path.lexists(fields[3]) else None


# What a case is doing once its set-up steps are done: the evidence of a call that fails
# then must not blame the start of a process that succeeded.
CASE_STEP = "running the case's own calls and checks"

# Why a case that calls the plugin does not run on a netrpc plugin.
NETRPC_REASON = (
    "Mattermost plugins speak go-plugin's netrpc protocol; pluginconf checks gRPC calls only"
)


class PluginTarget:
    def __init__(self, options: PluginSuiteOptions, pool: SharedPool) -> None:
        self.options = options
        self._pool = pool
        self._fresh: list[FreshPlugin] = []
        self.used_shared = False
        # What the case is doing now; a timeout's evidence names it.
        self.current_step = "starting"

    @property
    def profile(self) -> Profile:
        return self.options.effective_profile

    def step(self, text: str) -> None:
        self.current_step = text

    def step_done(self) -> None:
        """The set-up step succeeded: what fails from here on, the case's own calls did."""
        self.current_step = CASE_STEP

    async def shared(self, calls: bool = True) -> SharedPlugin:
        """The shared plugin process, started and (for hooks plugins) activated. A case
        that only looks at the process, its handshake or its files passes ``calls=False``:
        it runs on plugins the suite cannot call (netrpc) too."""
        if calls:
            self.needs_calls()
        self.used_shared = True
        if self.options.one_process_at_a_time and self._pool.current is None:
            await self._close_fresh()
        self.step("starting the shared plugin process")
        shared = await self._pool.get()
        self.step_done()
        return shared

    async def shared_with(self, hook: str) -> SharedPlugin:
        """The shared plugin, or skip the case when it does not implement ``hook``."""
        shared = await self.shared()
        if hook not in shared.implemented:
            skip(f"the plugin does not implement {hook} (Implemented: {shared.implemented})")
        return shared

    def needs_calls(self) -> None:
        """Skip the case when the suite cannot make gRPC calls to the plugin."""
        if not self.options.speaks_grpc:
            skip(NETRPC_REASON)

    def needs_auto_mtls(self) -> None:
        """Skip an AutoMTLS case when the target's host never uses AutoMTLS."""
        if self.options.auto_mtls is AutoMTLS.NEVER:
            skip(
                f"the {self.options.target.name} target's host never uses AutoMTLS "
                "(--auto-mtls never): the plugin is never given PLUGIN_CLIENT_CERT"
            )

    async def _make_room(self) -> None:
        """With one process of the plugin at a time (it serves a fixed address), stop the
        others before another starts, so that no call reaches the wrong one."""
        if not self.options.one_process_at_a_time:
            return
        if self._pool.current is not None:
            self.step("stopping the shared process (one plugin process at a time)")
            await self._pool.close()
        await self._close_fresh()

    async def spawn(self, *, alongside: bool = False, **changes: Any) -> FreshPlugin:
        """Start a new plugin process with the LaunchSpec ``changes``; do not read stdout.
        ``alongside``: keep the other processes running even when the run keeps one at a
        time (only to see what two processes at once do, never to call them)."""
        if not alongside:
            await self._make_room()
        self.step(f"starting a plugin process ({', '.join(changes) or 'as a host does'})")
        tmpdir = tempfile.mkdtemp(prefix="pluginconf-tmp-")
        try:
            launched = await spawn(self.options.launch_spec(tmpdir, **changes))
        except BaseException:
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise
        fresh = FreshPlugin(launched, tmpdir)
        self._fresh.append(fresh)
        self.step_done()
        return fresh

    async def launch(self, connect: bool = True, **changes: Any) -> FreshPlugin:
        """Start a new plugin process, read its handshake, and (by default) connect; a case
        that connects is skipped on plugins the suite cannot call (netrpc)."""
        if connect:
            self.needs_calls()
        fresh = await self.spawn(**changes)
        self.step("reading the handshake of a new plugin process")
        await fresh.launched.read_handshake()
        ensure_own_address(fresh.launched)
        if connect:
            self.step("connecting to a new plugin process")
            await fresh.connect()
        self.step_done()
        return fresh

    async def host_exit(self, guard_s: float = 10.0) -> HostExit:
        """Start the plugin under a host that exits right after the handshake (CT-8, TR-13);
        the probe waits up to ``guard_s`` for the plugin to exit, then kills it."""
        await self._make_room()
        socket_dir = tempfile.mkdtemp(prefix="pluginconf-")
        spec = self.options.launch_spec(tmpdir=socket_dir)
        client = generate_certificate("pluginconf-host") if spec.auto_mtls else None
        env: Mapping[str, str] = build_env(spec, socket_dir, client)
        self.step("starting the plugin under a host that exits after the handshake")
        probe = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pluginconf.runner.plugin.hostexit_probe",
            str(guard_s),
            "--",
            *spec.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
            start_new_session=True,
        )
        try:
            out, err = await asyncio.wait_for(probe.communicate(), guard_s + 30)
            lines = out.decode("utf-8", "replace").strip().splitlines()
            report = json.loads(lines[-1]) if lines else {}
            left = _socket_left(report.get("handshake"), report.get("exited_after_s"))
        finally:
            if probe.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    probe.kill()
                await probe.wait()
            shutil.rmtree(socket_dir, ignore_errors=True)
        self.step_done()
        return HostExit(
            plugin_pid=report.get("plugin_pid"),
            handshake=report.get("handshake"),
            exited_after_s=report.get("exited_after_s"),
            status=report.get("status"),
            stderr=err.decode("utf-8", "replace")[-4000:],
            socket_left=left,
        )

    async def _close_fresh(self) -> None:
        fresh, self._fresh = self._fresh, []
        for plugin in fresh:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(plugin.close(), 30)

    async def aclose(self) -> None:
        """Stop and clean up every process this case started."""
        await self._close_fresh()
