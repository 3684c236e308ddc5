"""The conformance runner: cases (model), finding them (registry), running them (engine),
the pytest plugin (pytest_plugin), the command line (command) and the reports (report)."""

from pluginconf.runner.model import (
    Case,
    CaseFailed,
    CaseFamily,
    CaseSkipped,
    Level,
    Outcome,
    Profile,
    case,
    case_each,
    check,
    expect,
    fail,
    skip,
)

__all__ = [
    "Case",
    "CaseFailed",
    "CaseFamily",
    "CaseSkipped",
    "Level",
    "Outcome",
    "Profile",
    "case",
    "case_each",
    "check",
    "expect",
    "fail",
    "skip",
]
