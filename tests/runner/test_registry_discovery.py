"""The registry's discovery: modules named by dotted path in subpackages, in MODULES' order,
and no public module of a suite's package left out of MODULES."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from pluginconf.runner.model import CaseDefinitionError
from pluginconf.runner.registry import _check_listed, load_cases


def _package(root: Path, name: str, modules: tuple[str, ...], files: list[str]) -> Path:
    """A package ``name`` under ``root`` with ``MODULES = modules`` and empty ``files``."""
    base = root / name
    base.mkdir()
    (base / "__init__.py").write_text(f"MODULES = {modules!r}\n")
    for file in files:
        path = base / file
        path.parent.mkdir(parents=True, exist_ok=True)
        if not (path.parent / "__init__.py").exists():
            (path.parent / "__init__.py").write_text("")
        path.write_text("")
    return base


def test_a_module_of_a_subpackage_left_out_of_modules_is_an_error(tmp_path, monkeypatch):
    _package(tmp_path, "suite_left_out", ("area.one",), ["area/one.py", "area/two.py"])
    monkeypatch.syspath_prepend(str(tmp_path))
    package = importlib.import_module("suite_left_out")
    with pytest.raises(CaseDefinitionError, match=r"suite_left_out\.area\.two is not in"):
        _check_listed(package, package.MODULES)


def test_private_modules_and_subpackages_need_no_listing(tmp_path, monkeypatch):
    files = ["_helpers.py", "area/_helpers.py", "area/one.py", "_private/three.py"]
    _package(tmp_path, "suite_private", ("area.one",), files)
    monkeypatch.syspath_prepend(str(tmp_path))
    package = importlib.import_module("suite_private")
    _check_listed(package, package.MODULES)


@pytest.mark.parametrize("suite", ["plugin", "host"])
def test_every_case_module_of_the_suites_is_listed_and_found(suite):
    package = importlib.import_module(f"pluginconf.conformance.{suite}")
    sources = {Path(c.source[0]) for c in load_cases(suite)}
    listed = {
        Path(importlib.import_module(f"{package.__name__}.{name}").__file__ or "")
        for name in package.MODULES
    }
    assert sources == listed
