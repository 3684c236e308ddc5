"""The host suite: `pluginconf host -- ADAPTER` drives a host and checks what it does.

Its cases arrive with the host conformance suite.
"""

MODULES: tuple[str, ...] = ()
