"""A run of ``pluginconf`` itself (a suite, a fuzz campaign) as a user runs it: its wall time
and its JSON report."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pluginconf.bench.errors import BenchError, last_lines
from pluginconf.bench.processes.lifecycle import kill_group


def _read_report(path: Path) -> dict[str, Any] | None:
    """The JSON report a pluginconf run wrote, or None if it wrote none."""
    try:
        report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return report


async def run_pluginconf(words: list[str], timeout_s: float) -> tuple[float, dict[str, Any]]:
    """Run ``pluginconf WORDS... --json FILE`` in its own session; its wall time in seconds
    and its JSON report. A run that does not exit 0 would time a broken run: BenchError."""
    with tempfile.TemporaryDirectory(prefix="pluginconf-bench-") as tmp:
        path = Path(tmp, "report.json")
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pluginconf", *words, "--json", str(path),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout_s)
        except BaseException:
            # Timed out or cancelled: the run and everything it started go.
            kill_group(process)
            await process.wait()
            raise
        seconds = time.perf_counter() - started
        report = _read_report(path)
    if process.returncode != 0 or report is None:
        tail = last_lines(output.decode(errors="replace"), 15)
        raise BenchError(
            f"`pluginconf {' '.join(words)}` exited with status {process.returncode} "
            f"(0 expected), so its figure would not mean anything; its output ended:\n{tail}"
        )
    return seconds, report
