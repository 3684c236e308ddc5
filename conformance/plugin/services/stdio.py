"""Stdio: the plugin's output reaches the host through GRPCStdio."""

from __future__ import annotations

from pluginconf.runner import Level, Profile, case, fail
from pluginconf.runner.plugin.target import PluginTarget

_OPEN_S = 1.0


@case(
    "plugin/stdio/served",
    requirements=["IO-1"],
    profile=Profile.TRANSPORT,
    level=Level.SHOULD,
)
async def served(t: PluginTarget) -> None:
    """
    Purpose: The host can receive what the plugin prints without reading its pipes.
    Procedure: Open plugin.GRPCStdio/StreamStdio on the plugin, as a host does after its
      health check, and keep it open for 1 s.
    Asserts: The call is not refused (in particular not UNIMPLEMENTED).
    """
    shared = await t.shared()
    if await shared.stdio.wait_ended(_OPEN_S) and shared.stdio.error is not None:
        fail(f"StreamStdio failed: {shared.stdio.error}")
