"""--known-failing FILE: cases that are expected to fail, each with the reason.

One entry per line: a case id or glob, then optionally whitespace and the reason; `#` starts
a comment. A listed case that fails is reported as xfailed; one that passes is xpassed and
fails the run, so that the list cannot go stale.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pluginconf.runner.registry import SelectionError


@dataclass(frozen=True)
class KnownFailing:
    entries: dict[str, str] = field(default_factory=dict)  # pattern -> reason
    source: str = ""

    def reason_for(self, case_id: str) -> str | None:
        for pattern, reason in self.entries.items():
            if fnmatch.fnmatchcase(case_id, pattern):
                return reason or f"listed in {self.source}"
        return None


def load_known_failing(path: str | None, case_ids: Sequence[str]) -> KnownFailing:
    if path is None:
        return KnownFailing()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SelectionError(f"--known-failing {path}: cannot read it: {exc.strerror}") from None
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        pattern, _, reason = content.partition(" ")
        if not fnmatch.filter(case_ids, pattern):
            raise SelectionError(
                f"--known-failing {path}, line {number}: {pattern!r} matches no case; "
                "`pluginconf list` shows the ids"
            )
        entries[pattern] = reason.strip()
    return KnownFailing(entries, path)
