"""One entry of the host mutant matrix: a broken host, the cases it must fail, what it breaks."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pluginconf.units import MIB

MUTANT = Path(__file__).resolve().parents[1] / "host_mutant.py"
# CI runs the heavy transfers at a reduced size; the full suite sends 256 MiB.
HEAVY_BYTES = int(os.environ.get("PLUGINCONF_HEAVY_BYTES", str(256 * MIB)))
# Where a case can only fail by waiting for a plugin to become active that never does, the
# suite's start timeout (which bounds that wait, and the adapter's start) is cut from 30 s.
SHORT_START = {"start_timeout_s": 6}


@dataclass(frozen=True)
class HostMutant:
    name: str  # the fault
    breaks: tuple[str, ...]  # case ids (or globs) it must fail
    heavy: bool = False  # runs a heavy case (pytest -m heavy)
    options: dict[str, object] = field(default_factory=dict)  # HostSuiteOptions fields
    # The SPEC requirements the bug breaks, exactly: each failure it causes names one of
    # them, and each is named by one of its failures (the requirement-level matrix).
    violates: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.name}-heavy" if self.heavy else self.name
