"""Regenerate the summary of the mutant matrices that the runner ships, or check it.

    python tools/genmutants.py           # write conformance/mutants.json
    python tools/genmutants.py --check   # exit 1 if it is stale

The matrices (tests/test_mutant_matrix.py, tests/test_host_mutant_matrix.py) say which
requirements each mutant violates and which cases must fail; `pluginconf list --coverage`
prints them beside the cases, from this file, so that an installed runner needs no tests/.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

from _generated import write_or_check

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "conformance" / "mutants.json"
MATRICES = {
    "plugin": ("test_mutant_matrix", "MUTANTS"),
    "host": ("test_host_mutant_matrix", "HOST_MUTANTS"),
}


def _load(name: str) -> ModuleType:
    path = ROOT / "tests" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_matrix_{name}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def render() -> str:
    summary: dict[str, list[dict[str, object]]] = {}
    for suite, (module_name, attribute) in MATRICES.items():
        module = _load(module_name)
        entries = []
        for mutant in getattr(module, attribute):
            entries.append(
                {
                    "name": getattr(mutant, "id", mutant.name),
                    "violates": list(mutant.violates),
                    "cases": module._selected(mutant),
                }
            )
        summary[suite] = entries
    return json.dumps(summary, indent=1) + "\n"


def main() -> int:
    return write_or_check(__doc__.splitlines()[0], OUTPUT, render, "genmutants.py")


if __name__ == "__main__":
    sys.exit(main())
