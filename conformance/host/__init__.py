"""The host suite: `pluginconf host -- ADAPTER` drives a host and checks what it does.

Every case loads fake plugins (pluginconf.fake) whose scenarios make them behave or misbehave,
drives the host through its adapter (HostControl, docs/host-adapter.md), and asserts on what
the fakes observed (Observer), not on what the host says it did.
"""

# Reading order; the runner takes the cases from these modules, in this order (a module of a
# subpackage by its dotted name). The order is the run's and the reports'.
MODULES = (
    "capabilities",
    "launch.environment",
    "launch.refusals",
    "launch.start",
    "launch.handshake",
    "launch.tls",
    "launch.transport",
    "launch.health",
    "launch.stdio",
    "hooks.implemented",
    "hooks.activation",
    "hooks.calls",
    "hooks.fan_out",
    "hooks.lifecycle",
    "hooks.start_hooks",
    "hooks.filters",
    "http.exchange",
    "http.streaming",
    "http.backpressure",
    "http.failures",
    "http.request_framing",
    "http.body_limit",
    "supervision.detection",
    "supervision.backoff",
    "supervision.circuit",
    "supervision.circuit_resets",
    "supervision.restart_window",
    "supervision.states",
    "supervision.shutdown",
    "hostapi.timing",
    "hostapi.kv",
    "hostapi.log_config",
    "hostapi.broker",
    "supervision.signals",
    "supervision.resources",
    "supervision.chaos",
)
