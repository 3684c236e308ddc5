"""The console of `pluginconf plugin` and `pluginconf host`: the start countdown, alike failures
once, repeats counted, skip reasons, --durations, -x/--maxfail, --last-failed."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_process import PLUGINCONF, run_cli

ROOT = Path(__file__).resolve().parents[3]
FAKE = [sys.executable, str(ROOT / "fake_interpreters" / "fakeplugin")]
MUTANT = [sys.executable, str(ROOT / "tests" / "mutants" / "reference_mutant.py")]
NEVER_STARTS = [sys.executable, "-c", "import time; time.sleep(100)"]


def run(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=timeout, cwd=cwd)


def scenario(tmp_path: Path, name: str, content: dict[str, object]) -> list[str]:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(content))
    return [*FAKE, str(path)]


# -- waiting for the target ----------------------------------------------------------------


def test_a_plugin_that_never_handshakes_gets_a_live_countdown_on_a_terminal():
    master, slave = os.openpty()
    process = subprocess.Popen(
        [*PLUGINCONF, "plugin", "--start-timeout", "4", "--", *NEVER_STARTS],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every writer has gone
                break
            if not chunk:
                break
            seen += chunk
        status = process.wait(timeout=30)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()
    text = seen.decode(errors="replace")
    assert status == 2, text
    assert "waiting for the plugin's handshake:" in text
    assert "left of --start-timeout 4" in text
    # The final error names the option too, and the run gave up after one start timeout.
    assert "printed no handshake within --start-timeout 4s" in text
    assert "give it more with --start-timeout SECONDS" in text


def test_a_host_adapter_that_never_serves_gets_plain_countdown_lines_off_a_terminal():
    started = time.monotonic()
    result = run("host", "--start-timeout", "5", "--", *NEVER_STARTS, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert re.search(
        r"waiting for the host adapter to serve HostControl: \d+s left of --start-timeout 5 ",
        result.stderr,
    ), result.stderr
    assert "within --start-timeout 5s" in result.stderr
    assert "give it more with --start-timeout SECONDS" in result.stderr
    assert "\x1b[" not in result.stderr  # no terminal: no escape sequences
    assert time.monotonic() - started < 30


# -- what the console condenses --------------------------------------------------------------


def test_cases_failing_for_one_cause_print_it_once_with_their_ids(tmp_path):
    # Implemented fails with INTERNAL: every case that asks it fails for that one cause.
    plugin = scenario(tmp_path, "implemented", {"hook_status": {"Implemented": "INTERNAL"}})
    report = tmp_path / "r.json"
    result = run(
        "plugin", "--run", "plugin/hooks/payload-*", "-n", "0", "--json", str(report), "--", *plugin
    )
    assert result.returncode == 1, result.stdout + result.stderr
    cases = json.loads(report.read_text())["cases"]
    failed = [c["id"] for c in cases if c["outcome"] == "failed"]
    assert len(failed) >= 3  # the report still lists every case with its message
    heads = re.findall(r"^FAILED  (\S+)", result.stdout, re.M)
    more = re.findall(r"and (\d+) more cases? failed the same way: (.*)$", result.stdout, re.M)
    assert more, result.stdout
    listed = [i for _, ids in more for i in ids.split(", ")]
    assert sorted(heads + listed) == sorted(failed)
    assert sum(int(n) for n, _ in more) == len(listed)
    assert len(heads) < len(failed)


def test_repeats_on_a_line_are_counted_and_skip_reasons_and_durations_are_printed(tmp_path):
    # Every ExecuteCommand answers UNKNOWN: endurance's first batch repeats it 20 times on a
    # line. No ServeHTTP: the cases that need it skip, for one reason.
    plugin = scenario(
        tmp_path,
        "unknown",
        {"hooks": ["ExecuteCommand"], "hook_status": {"ExecuteCommand": "UNKNOWN"}},
    )
    report = tmp_path / "r.json"
    not_a_dir = tmp_path / "not-a-dir"
    not_a_dir.write_text("")
    result = run(
        "plugin", "-n", "0", "-v", "--json", str(report), "--durations", "2",
        "--cache-dir", str(not_a_dir),
        "--run", "plugin/hooks/endurance", "--run", "plugin/hooks/concurrent-calls",
        "--run", "plugin/hooks/health-under-load", "--", *plugin,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    problem = "ExecuteCommand: UNKNOWN: fakeplugin: ExecuteCommand fails with UNKNOWN"
    assert out.count(problem) == 1, out
    assert "(20 times)" in out
    (endurance,) = [c for c in json.loads(report.read_text())["cases"] if c["outcome"] == "failed"]
    assert endurance["message"].count(problem) >= 20  # the report keeps the evidence whole
    # Skip reasons, one entry for the two cases that share one.
    assert "SKIPPED plugin/hooks/concurrent-calls, plugin/hooks/health-under-load" in out
    assert "the plugin does not implement ServeHTTP" in out
    # With -v, each skip's line gives its reason too.
    assert re.search(
        r"^SKIPPED\s+plugin/hooks/concurrent-calls \(\d+\.\d\ds\)  the plugin does not implement",
        out,
        re.M,
    ), out
    # --durations 2: the two slowest, slowest first.
    assert "the 2 slowest cases" in out
    rows = re.findall(r"^\s+(\d+\.\d\d)s  (\w+)\s+(plugin/\S+)$", out, re.M)
    assert len(rows) == 2 and float(rows[0][0]) >= float(rows[1][0])
    assert out.strip().splitlines()[-1] == "0 passed, 1 failed, 2 skipped"
    # A cache that cannot be written is said, and changes nothing else.
    assert f"could not record failures for --last-failed: {not_a_dir}/lastfailed.json" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


# -- how the run stops, and what it reruns ------------------------------------------------------


@pytest.mark.runs_long(17)
def test_maxfail_stops_the_run_and_last_failed_reruns_what_failed(tmp_path):
    # Every status case fails (off by one); echo/1 passes.
    mutant = [*MUTANT, "status-off-by-one"]
    subset = ["--profile", "sdk", "--run", "plugin/sdk/echo/1", "--run", "plugin/sdk/status/*"]
    report = tmp_path / "r.json"
    (tmp_path / ".pluginconf_cache").mkdir()
    (tmp_path / ".pluginconf_cache" / "lastfailed.json").write_text("{not json")
    # Nothing (readable) recorded yet: --last-failed runs everything. Under xdist (which ends a run it
    # stops as "interrupted"), -x stops it after the first failure and what the workers held.
    first = run(
        "plugin", *subset, "-n", "2", "-x", "--last-failed", "--json", str(report),
        "--", *mutant, cwd=tmp_path,
    )  # fmt: skip
    assert first.returncode == 1, first.stdout + first.stderr
    assert "--last-failed: no failure is recorded for this suite and target" in first.stderr
    assert ".pluginconf_cache/lastfailed.json); running all 11 cases" in first.stderr
    written = json.loads(report.read_text())
    not_run = written["run"]["not_run"]
    assert not_run, first.stdout + first.stderr
    assert f"stopped after 1 failure (--maxfail 1): {len(not_run)} case" in first.stderr
    assert "interrupted" not in first.stderr
    assert written["run"]["reason"] == "stopped after 1 failure (--maxfail 1)"
    ran = {c["id"]: c["outcome"] for c in written["cases"]}
    assert len(ran) + len(not_run) == 11 and not set(ran) & set(not_run)
    failed = sorted(i for i, outcome in ran.items() if outcome == "failed")
    assert failed
    assert (tmp_path / ".pluginconf_cache" / ".gitignore").exists()
    # The rerun: the cases that failed, and where the record is.
    again = run("plugin", *subset, "-n", "0", "--last-failed", "--", *mutant, cwd=tmp_path)
    assert again.returncode == 1, again.stdout + again.stderr
    count = f"{len(failed)} case{'s' if len(failed) > 1 else ''}"
    assert f"--last-failed: running the {count} that failed last time (of 11 selected" in (
        again.stderr
    )
    assert again.stdout.strip().splitlines()[-1] == f"0 passed, {len(failed)} failed, 0 skipped"


def test_bad_console_option_values_are_usage_errors():
    for args, message in (
        (["--maxfail", "x"], "--maxfail 'x': expected a whole number, 0 or more"),
        (["--durations", "-1"], "--durations '-1': expected a whole number, 0 or more"),
    ):
        result = run("plugin", *args, timeout=30)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
        assert "Traceback" not in result.stderr
