"""The plugin suite: `pluginconf plugin -- CMD` plays the host and checks CMD.

Profiles (--profile): transport cases apply to any go-plugin gRPC plugin; hooks cases to any
plugin of the pluginconf.v1 hooks protocol; sdk cases to the conformance plugin, the reference
plugin's behaviour rebuilt with the SDK under test (docs/reference-plugin.md).
"""

# Reading order; the runner takes the cases from these modules, in this order (a module of a
# subpackage by its dotted name). The order is the run's and the reports': cases added later
# come after the first ones rather than beside them, so that the order of a run stays put.
MODULES = (
    "handshake.line",
    "handshake.negotiation",
    "transport.listener",
    "handshake.mtls",
    "services.health",
    "services.controller",
    "services.stdio",
    "broker.stream",
    "hooks.implemented",
    "hooks.payloads",
    "hooks.load",
    "hooks.serve_http",
    "sdk.hooks",
    "sdk.hostapi",
    "sdk.process",
    "sdk.bodies",
    "sdk.streaming",
    "sdk.http",
    # issue 15: requirements no case cited
    "sdk.stdio_buffer",
    "services.health_stopping",
    "handshake.timing",
    "hooks.commands",
    "sdk.broker_dial",
    # issue 15, item 2
    "sdk.drain",
    "broker.offers",
    # issue 15: branches, boundaries, resources and samples the first cases missed
    "sdk.irregular",
    "services.stop_branches",
    "sdk.resources",
    "handshake.mtls_samples",
    "transport.listener_edges",
)
