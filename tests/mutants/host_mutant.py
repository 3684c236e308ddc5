"""The reference host's adapter with one fault switched on: a host that breaks one rule on purpose.

    python tests/mutants/host_mutant.py FAULT [FAULT...]

Each fault is a small, realistic bug in the reference host (pluginconf.host), patched into
this process only, so that a host case that should catch the bug can be shown to catch it
(tests/test_host_mutant_matrix.py). The process is then `pluginconf reference-host-adapter`,
driven by the host suite as any adapter is. FAULTS lists the faults with what they break;
with no argument this program lists them, and the hidden bugs (HIDDEN) that only fuzzing
finds. The faults live in host_faults/, a module per area of the SPEC, here in the tests and
nowhere in the product.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # run as a script from elsewhere, or imported by a test
    sys.path.insert(0, _HERE)

from host_faults.common import TABLE  # noqa: E402

from pluginconf.host.adapter.main import run_adapter  # noqa: E402

# Imported in this order, they list their faults in it.
AREAS = (
    "launch",
    "hooks",
    "http",
    "supervision",
    "hostapi",
    "broker",
    "rules_launch",
    "rules_http",
    "rules_tls",
    "rules_lifecycle",
    "rules_framing",
)
for _area in AREAS:
    importlib.import_module(f"host_faults.{_area}")

FAULTS = TABLE.faults
HIDDEN = (
    TABLE.hidden
)  # not in FAULTS: the host mutant matrix wants a case that fails for each of those


def main(argv: list[str]) -> None:
    every = {**FAULTS, **HIDDEN}
    names = "\n  ".join(f"{n}: {d}" for n, (d, _) in FAULTS.items())
    hidden_names = "\n  ".join(f"{n}: {d}" for n, (d, _) in HIDDEN.items())
    listing = f"faults:\n  {names}\nhidden (tests/fuzz/test_fuzz_finds_bugs.py):\n  {hidden_names}"
    if not argv:
        print(listing)
        raise SystemExit(0)
    unknown = [name for name in argv if name not in every]
    if unknown:
        sys.stderr.write(f"usage: host_mutant.py FAULT [FAULT...]\n{listing}\n")
        raise SystemExit(2)
    for name in argv:
        every[name][1]()
    raise SystemExit(run_adapter())


if __name__ == "__main__":
    main(sys.argv[1:])
