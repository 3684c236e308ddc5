"""Entry point of pluginconf.fuzz.pytest_plugin: inert without the suite extra."""

from pluginconf.pytest_entry import hooks_of

globals().update(hooks_of("pluginconf.fuzz.pytest_plugin"))
