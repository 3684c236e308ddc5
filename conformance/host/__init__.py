"""The host suite: `pluginconf host -- ADAPTER` drives a host and checks what it does.

Every case loads fake plugins (pluginconf.fake) whose scenarios make them behave or misbehave,
drives the host through its adapter (HostControl, docs/host-adapter.md), and asserts on what
the fakes observed (Observer), not on what the host says it did.
"""

# Reading order; the runner takes the cases from these modules, in this order.
MODULES = (
    "capabilities",
    "launch",
    "health",
    "dispatch",
    "filters",
    "serve_http",
    "crash",
    "shutdown",
    "chaos",
)
