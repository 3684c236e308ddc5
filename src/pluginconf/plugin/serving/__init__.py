"""The plugin process's machinery: its start-up steps, gRPC services, listener and stdio.

``PluginProcess`` (serving.process) runs one process from listening to stopped, as a sequence of
overridable steps; ``auto_mtls_from_env`` (serving.mtls) makes its AutoMTLS contexts.
"""
