"""The host side: launching, connecting to and stopping plugins."""

from pluginconf.host.launcher import LaunchedPlugin, LaunchSpec, StopReport, launch, spawn

__all__ = ["LaunchSpec", "LaunchedPlugin", "StopReport", "launch", "spawn"]
