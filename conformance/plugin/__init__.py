"""The plugin suite: `pluginconf plugin -- CMD` plays the host and checks CMD.

Profiles (--profile): transport cases apply to any go-plugin gRPC plugin; hooks cases to any
plugin of the pluginconf.v1 hooks protocol; sdk cases to the conformance plugin, the reference
plugin's behaviour rebuilt with the SDK under test (docs/reference-plugin.md).
"""

# Reading order; the runner takes the cases from these modules, in this order.
MODULES = (
    "handshake",
    "listener",
    "mtls",
    "health",
    "controller",
    "stdio",
    "broker",
    "hooks",
    "serve_http",
    "sdk_hooks",
    "sdk_bodies",
    "sdk_streaming",
    "sdk_http",
)
