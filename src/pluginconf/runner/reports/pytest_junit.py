"""pytest --junitxml for the suite's cases: named as pluginconf --junit-xml names them.

pytest's junitxml plugin would give every case the classname ``pluginconf`` (the node id's
first part) and the suite the name ``pytest``. Its plugin object (found by what it offers,
since pytest does not name it) lets a plugin set a test case's attributes, as the
record_xml_attribute fixture does; a suite name the user set (junit_suite_name) is kept.
"""

from __future__ import annotations

from typing import Any

import pytest

from pluginconf.runner.reports.junit import group_of

_PYTEST_DEFAULT_SUITE_NAME = "pytest"


def _logxml(config: pytest.Config) -> Any | None:
    for plugin in config.pluginmanager.get_plugins():
        if hasattr(plugin, "node_reporter") and hasattr(plugin, "suite_name"):
            return plugin
    return None


class JunitNaming:
    """Registered by the suite's pytest plugin when it runs cases."""

    def __init__(self, config: pytest.Config, suite: str, prefix: str) -> None:
        self._config = config
        self._suite = suite
        self._prefix = prefix

    def pytest_sessionstart(self) -> None:
        # The testsuite is named after the suite (``pluginconf plugin``), unless set.
        xml = _logxml(self._config)
        if xml is not None and xml.suite_name == _PYTEST_DEFAULT_SUITE_NAME:
            xml.suite_name = f"pluginconf {self._suite}"

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Before junitxml records it: classname the case's group (``plugin.transport``),
        # name the rest of its id.
        if not report.nodeid.startswith(self._prefix):
            return
        xml = _logxml(self._config)
        if xml is None:
            return
        classname, name = group_of(report.nodeid[len(self._prefix) :])
        reporter = xml.node_reporter(report)
        reporter.add_attribute("classname", classname)
        reporter.add_attribute("name", name)
