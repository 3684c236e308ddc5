"""`pluginconf list`: its output meets a reader that goes away."""

from __future__ import annotations

import subprocess

import pytest
from cli_process import PLUGINCONF


@pytest.mark.parametrize("suite", ["plugin", "host"])
def test_a_reader_that_goes_away_ends_the_listing_quietly(suite):
    # A real pipe, closed after one line, as `pluginconf list plugin | head -1` does; the
    # listing is larger than a pipe's buffer, so the writer meets the closed pipe for sure.
    with subprocess.Popen(
        [*PLUGINCONF, "list", suite],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()
        err = process.stderr.read().decode()
        status = process.wait(timeout=60)
    assert first.startswith(f"{suite}/".encode())
    assert status == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert err == ""
