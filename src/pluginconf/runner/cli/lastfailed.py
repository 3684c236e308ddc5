"""--last-failed: which cases failed in the previous run of a suite against a target.

As pytest's cache (.pytest_cache), a small JSON file in a cache directory, by default
.pluginconf_cache in the current directory. It maps each suite and target (the command under
test and the --target preset) to the ids of the cases that failed there. A run removes the
cases that ran and did not fail, and adds those that did; cases it did not run keep their
entry, so that `--last-failed --run 'plugin/sdk/*'` leaves the others' failures recorded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from pluginconf.runner.cli.arguments import DEFAULT_CACHE_DIR
from pluginconf.runner.model import Case
from pluginconf.runner.reports.report import CaseReport

CACHE_ENV = "PLUGINCONF_CACHE_DIR"
_FILE = "lastfailed.json"
_README = (
    "This directory holds pluginconf's record of failed cases, for --last-failed.\n"
    "It can be removed at any time.\n"
)


def cache_dir(option: str | None) -> Path:
    return Path(option or os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR)


def key(suite: str, target: Sequence[str], target_name: str) -> str:
    return json.dumps([suite, list(target), target_name])


class LastFailed:
    def __init__(self, directory: Path) -> None:
        self.path = directory / _FILE
        self._entries: dict[str, list[str]] = {}
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # none yet, or unreadable: as if no run had failed
        if isinstance(loaded, dict):
            self._entries = {
                k: [str(i) for i in v] for k, v in loaded.items() if isinstance(v, list)
            }

    def failed(self, run_key: str) -> list[str]:
        return list(self._entries.get(run_key, []))

    def record(self, run_key: str, reports: Iterable[CaseReport]) -> str | None:
        """Update the entry with a run's results; why the file could not be written, if not."""
        failed = set(self._entries.get(run_key, []))
        for report in reports:
            if report.fails_run:
                failed.add(report.id)
            else:
                failed.discard(report.id)
        if failed:
            self._entries[run_key] = sorted(failed)
        else:
            self._entries.pop(run_key, None)
        directory = self.path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            # Kept out of version control, as pytest keeps .pytest_cache.
            if not (directory / ".gitignore").exists():
                (directory / ".gitignore").write_text("*\n", encoding="utf-8")
                (directory / "README.md").write_text(_README, encoding="utf-8")
            partial = self.path.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps(self._entries, indent=1) + "\n", encoding="utf-8")
            partial.replace(self.path)
        except OSError as exc:
            return f"{self.path}: {exc.strerror or exc}"
        return None


def narrow(selected: Sequence[Case], failed: Sequence[str], where: Path) -> tuple[list[Case], str]:
    """The cases --last-failed runs, and the line that says which and why: those of
    ``selected`` that failed last time, or, when none did (or none is recorded), all of them,
    as pytest does."""
    rerun = [c for c in selected if c.id in set(failed)]
    if rerun:
        cases = "case" if len(rerun) == 1 else "cases"
        return rerun, (
            f"--last-failed: running the {len(rerun)} {cases} that failed last time "
            f"(of {len(selected)} selected; recorded in {where})"
        )
    why = (
        "no failure is recorded for this suite and target"
        if not failed
        else f"none of the {len(failed)} cases that failed last time is selected"
    )
    return list(selected), f"--last-failed: {why} ({where}); running all {len(selected)} cases"
