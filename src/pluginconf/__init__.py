"""pluginconf: conformance suite and reference implementations for go-plugin style gRPC plugins."""

__version__ = "0.1.0"
