"""Entry point of pluginconf.runner.pytest_plugin: inert without the suite extra."""

from pluginconf.pytest_entry import hooks_of

globals().update(hooks_of("pluginconf.runner.pytest_plugin"))
