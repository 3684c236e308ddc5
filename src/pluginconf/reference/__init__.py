"""The reference plugin: every hook, behaviour set by the request (docs/reference-plugin.md)."""

from pluginconf.reference.generator import generate_bytes
from pluginconf.reference.plugin import ReferencePlugin, main

__all__ = ["ReferencePlugin", "generate_bytes", "main"]
