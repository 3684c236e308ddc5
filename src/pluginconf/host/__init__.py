"""The reference host: launching plugins (launcher), supervising them (supervision/), their
HTTP front (http/) and the adapter the host suite drives (adapter/)."""

from pluginconf.host.launcher import LaunchedPlugin, LaunchSpec, StopReport, launch, spawn

__all__ = ["LaunchSpec", "LaunchedPlugin", "StopReport", "launch", "spawn"]
