"""The pytest11 entry points, which pytest loads in every project where pluginconf is installed.

With the slim install (the SDK alone) the suite's modules cannot be imported; the entry points
then register nothing, so that a plugin project's own pytest runs unhindered.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from pluginconf.extras import missing_extra


def hooks_of(module_name: str) -> dict[str, Any]:
    """The pytest hooks of ``module_name``, or none when the suite extra is not installed."""
    try:
        module: ModuleType = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if missing_extra(exc) is None:
            raise
        return {}
    return {name: value for name, value in vars(module).items() if name.startswith("pytest_")}
