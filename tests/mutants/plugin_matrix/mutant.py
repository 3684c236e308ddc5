"""One entry of the plugin mutant matrix: a broken plugin, the cases it must fail, what it breaks."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pluginconf.runner.model import Outcome

ROOT = Path(__file__).resolve().parents[3]
MUTANT = ROOT / "tests" / "mutants" / "reference_mutant.py"
FAKEPLUGIN = ROOT / "fake_interpreters" / "fakeplugin"


@dataclass(frozen=True)
class Mutant:
    name: str
    breaks: tuple[str, ...]  # case ids (or globs) it must fail
    scenario: dict[str, object] | None = None  # a fakeplugin scenario instead of a fault
    options: dict[str, object] = field(default_factory=dict)
    # For some cases, exactly which requirements the failure names, and the outcome it
    # comes to under --target go-plugin (FAILED, or NOT_MET for pluginconf's own rules).
    verdicts: dict[str, tuple[tuple[str, ...], Outcome]] = field(default_factory=dict)
    # The SPEC requirements the bug breaks, exactly: each failure it causes names one of
    # them, and each is named by one of its failures (the requirement-level matrix).
    violates: tuple[str, ...] = ()

    def command(self, tmp_path: Path) -> tuple[str, ...]:
        if self.scenario is None:
            return (sys.executable, str(MUTANT), self.name, "--state-dir", str(tmp_path))
        path = tmp_path / f"{self.name}.json"
        path.write_text(json.dumps(self.scenario))
        return (sys.executable, str(FAKEPLUGIN), str(path))
