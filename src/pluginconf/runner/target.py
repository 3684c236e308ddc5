"""What a plugin case is given: the target, its shared process, and fresh ones on demand.

Every process a case starts through the target is stopped, reaped and cleaned up when the case
ends, whatever happened; the shared process belongs to the pool (shared.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pluginconf.host.launcher import build_env, spawn
from pluginconf.runner.fresh import FreshPlugin
from pluginconf.runner.model import Profile, skip
from pluginconf.runner.options import PluginSuiteOptions
from pluginconf.runner.shared import SharedPlugin, SharedPool


@dataclass(frozen=True)
class HostExit:
    """What the host-exit probe saw (hostexit_probe.py)."""

    plugin_pid: int | None
    handshake: str | None
    exited_after_s: float | None
    status: int | None
    stderr: str


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

    async def shared(self) -> SharedPlugin:
        """The shared plugin process, started and (for hooks plugins) activated."""
        self.used_shared = True
        self.step("starting the shared plugin process")
        return await self._pool.get()

    async def shared_with(self, hook: str) -> SharedPlugin:
        """The shared plugin, or skip the case when it does not implement ``hook``."""
        shared = await self.shared()
        if hook not in shared.implemented:
            skip(f"the plugin does not implement {hook} (Implemented: {shared.implemented})")
        return shared

    async def spawn(self, **changes: Any) -> FreshPlugin:
        """Start a new plugin process with the LaunchSpec ``changes``; do not read stdout."""
        self.step(f"starting a plugin process ({', '.join(changes) or 'as a host does'})")
        tmpdir = tempfile.mkdtemp(prefix="pluginconf-tmp-")
        try:
            launched = await spawn(self.options.launch_spec(tmpdir, **changes))
        except BaseException:
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise
        fresh = FreshPlugin(launched, tmpdir)
        self._fresh.append(fresh)
        return fresh

    async def launch(self, connect: bool = True, **changes: Any) -> FreshPlugin:
        """Start a new plugin process, read its handshake, and (by default) connect."""
        fresh = await self.spawn(**changes)
        self.step("reading the handshake of a new plugin process")
        await fresh.launched.read_handshake()
        if connect:
            self.step("connecting to a new plugin process")
            await fresh.connect()
        return fresh

    async def host_exit(self, bound_s: float = 5.0) -> HostExit:
        """Start the plugin under a host that exits right after the handshake (CT-8)."""
        socket_dir = tempfile.mkdtemp(prefix="pluginconf-")
        spec = self.options.launch_spec(tmpdir=socket_dir)
        env: Mapping[str, str] = build_env(spec, socket_dir, None)
        self.step("starting the plugin under a host that exits after the handshake")
        probe = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pluginconf.runner.hostexit_probe",
            str(bound_s),
            "--",
            *spec.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
            start_new_session=True,
        )
        try:
            out, err = await asyncio.wait_for(probe.communicate(), bound_s + 30)
        finally:
            if probe.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    probe.kill()
                await probe.wait()
            shutil.rmtree(socket_dir, ignore_errors=True)
        lines = out.decode("utf-8", "replace").strip().splitlines()
        report = json.loads(lines[-1]) if lines else {}
        return HostExit(
            plugin_pid=report.get("plugin_pid"),
            handshake=report.get("handshake"),
            exited_after_s=report.get("exited_after_s"),
            status=report.get("status"),
            stderr=err.decode("utf-8", "replace")[-4000:],
        )

    async def aclose(self) -> None:
        """Stop and clean up every process this case started."""
        fresh, self._fresh = self._fresh, []
        for plugin in fresh:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(plugin.close(), 30)
