"""The pluginconf CLI run as a user runs it: a real process, its output captured, no stdin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGINCONF = [sys.executable, "-m", "pluginconf"]


def run_cli(
    *args: str,
    timeout: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PLUGINCONF, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run the entry with ``argv`` in this process: it must end with exit status 2; its
    stderr. For usage errors, which start no plugin."""
    from pluginconf.cli import main

    before = os.environ.get("GRPC_VERBOSITY")
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    finally:  # main() sets it when absent; the tests' environment stays as it was
        if before is None:
            os.environ.pop("GRPC_VERBOSITY", None)
        else:
            os.environ["GRPC_VERBOSITY"] = before
    assert code == 2, argv
    return capsys.readouterr().err
