"""The reference plugin with one fault switched on: a plugin that breaks one rule on purpose.

    python tests/mutants/reference_mutant.py FAULT [--state-dir DIR]

Each fault is a small, realistic bug in the plugin or in the SDK under it (a mutation of the
SDK's code, applied in this process only), so that a conformance case that should catch the
bug can be shown to catch it (tests/test_mutant_matrix.py). FAULTS lists them with what they
break. The switches live in plugin_faults/, a module per area of the SPEC, here in the tests
and nowhere in the product.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # run as a script from elsewhere, or imported by a test
    sys.path.insert(0, _HERE)

from plugin_faults.common import TABLE, Mutant  # noqa: E402

from pluginconf.plugin import server  # noqa: E402

# Imported in this order, they list their faults in it.
AREAS = (
    "handshake",
    "transport",
    "serving",
    "hooks",
    "behaviours",
    "http",
    "rules_stdio_broker",
    "rules_boundaries",
    "rules_services",
    "rules_calls",
)
for _area in AREAS:
    importlib.import_module(f"plugin_faults.{_area}")

FAULTS = TABLE.faults
HIDDEN = TABLE.hidden  # bugs only fuzzing finds (tests/fuzz/test_fuzz_finds_bugs.py)


def main(argv: list[str]) -> None:
    every = {**FAULTS, **HIDDEN}
    end = argv.index("--state-dir") if "--state-dir" in argv else len(argv)
    names = argv[:end]
    if not names or any(name not in every for name in names):
        listing = "\n  ".join(f"{n}: {d}" for n, (d, _) in every.items())
        sys.stderr.write(
            "usage: reference_mutant.py FAULT [FAULT ...] [--state-dir DIR]\n"
            f"faults:\n  {listing}\n"
        )
        raise SystemExit(2)
    state_dir = argv[end + 1] if end < len(argv) else os.getcwd()
    mutant = Mutant(state_dir)
    for name in names:
        every[name][1](mutant)
    server.serve(mutant.plugin, mutant.config)


if __name__ == "__main__":
    main(sys.argv[1:])
