"""Proof that fuzzing finds what the fixed cases cannot.

Each hidden bug of tests/mutants/reference_mutant.py (HIDDEN) is a realistic fault in the
SDK that the whole plugin suite passes. The fuzzer must find each within a bounded number of
examples, shrink it to a small example, and print a command that replays it exactly.

Each hidden bug of tests/mutants/host_mutant.py (HIDDEN there) is a realistic fault in the
reference host that the whole host suite passes; the host state machine must find it within
a bounded number of runs. Each run of the machine takes seconds, so these are long
(``campaign``, left out of the default run: ``pytest -m campaign tests/test_fuzz_finds_bugs.py``).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from cli_process import PLUGINCONF, run_cli

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "mutants"))

from host_mutant import HIDDEN as HOST_HIDDEN  # noqa: E402
from reference_mutant import HIDDEN  # noqa: E402

MUTANT = [sys.executable, str(ROOT / "tests" / "mutants" / "reference_mutant.py")]
# The fuzzer must find each bug within this many examples (shrinking included).
FIND_WITHIN = 400
# What each bug shrinks to: (the property, words the shrunk example must show).
EXPECTED = {
    "query-requoted": (
        "plugin/serve-http/echo-roundtrip",
        ["FuzzRequest('GET', '/echo', '%2D', ())", "FuzzBody(size=0"],
    ),
    "method-letters-only": (
        "plugin/serve-http/echo-roundtrip",
        ["FuzzRequest('0', '/echo', '', ())", "FuzzBody(size=0"],
    ),
}

HOST_MUTANT = [sys.executable, str(ROOT / "tests" / "mutants" / "host_mutant.py")]
# The host state machine must find each bug within this many runs (shrinking included); a run
# is one example of the property (--examples 10: ten runs). Seed 1 found
# restart-counter-never-resets in its 10 generated runs; shrinking, capped by Hypothesis at
# 5 minutes, brought it to 72 runs and 14 steps.
HOST_FIND_WITHIN = 100
# (the property, words the evidence must show, at most this many steps in the shrunk example)
HOST_EXPECTED = {
    "restart-counter-never-resets": (
        "host/lifecycle/state-machine",
        ["(SV-8, SV-9)", "restart_limit", "must restart the plugin"],
        24,
    ),
}


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=timeout, cwd=ROOT)


def _not_passed(report: Path) -> list[str]:
    """Each case of a JSON report that neither passed nor skipped: id, outcome and message."""
    return [
        f"{c['id']}: {c['outcome']}: {c['message']}"
        for c in json.loads(report.read_text())["cases"]
        if c["outcome"] not in ("passed", "skipped")
    ]


def test_every_hidden_bug_has_an_expectation():
    assert set(EXPECTED) == set(HIDDEN)


# The whole sdk profile, once, with every hidden bug switched on at the same time: a case
# that caught either would fail. 90 s on a loaded two-core machine.
@pytest.mark.runs_long(45)
@pytest.mark.timeout(300)
def test_the_fixed_cases_do_not_find_the_bugs(tmp_path):
    report = tmp_path / "report.json"
    result = run("plugin", "--profile", "sdk", "--json", str(report), "--", *MUTANT, *HIDDEN)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    unexpected = _not_passed(report)
    assert not unexpected, "cases that neither passed nor skipped:\n" + "\n".join(unexpected)


@pytest.mark.runs_long(20)
@pytest.mark.parametrize("bug", sorted(HIDDEN))
def test_fuzzing_finds_the_bug_and_shrinks_it(bug, tmp_path):
    prop, shown = EXPECTED[bug]
    report_path = tmp_path / "fuzz.json"
    args = ["--profile", "sdk", "--seed", "1", "--examples", str(FIND_WITHIN)]
    result = run(
        "fuzz", "plugin", *args, "--property", prop, "--json", str(report_path),
        "--", *MUTANT, bug,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(report_path.read_text())
    assert report["examples"] <= FIND_WITHIN
    [failure] = report["failures"]
    assert failure["property"] == prop
    for words in shown:
        assert words in failure["example"], failure["example"]
    assert "Shrunk example" in result.stdout and failure["reproduce"] in result.stdout

    # The printed command replays exactly that example, once, and fails again.
    replay_json = tmp_path / "replay.json"
    replay = subprocess.run(
        [*PLUGINCONF, *_with_json(failure["reproduce"], replay_json)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert replay.returncode == 1, replay.stdout + replay.stderr
    replayed = json.loads(replay_json.read_text())
    assert replayed["examples"] == 1
    assert replayed["failures"][0]["example"] == failure["example"]


def _with_json(command: str, path: Path) -> list[str]:
    """The printed command's arguments, with --json before the target's ``--``."""
    words = shlex.split(command)
    assert words[0] == "pluginconf"
    split = words.index("--")
    return [*words[1:split], "--json", str(path), *words[split:]]


# -- host bugs -------------------------------------------------------------------------------


def test_every_hidden_host_bug_has_an_expectation():
    assert set(HOST_EXPECTED) == set(HOST_HIDDEN)


@pytest.mark.campaign
@pytest.mark.timeout(600)
@pytest.mark.parametrize("bug", sorted(HOST_HIDDEN))
def test_the_fixed_host_cases_do_not_find_the_bug(bug, tmp_path):
    report = tmp_path / "report.json"
    # A smaller --max-body keeps it fast: the heavy body cases then skip.
    args = ["--json", str(report), "--max-body", str(4 * 1024 * 1024)]
    result = run("host", *args, "--", *HOST_MUTANT, bug)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    unexpected = _not_passed(report)
    assert not unexpected, "cases that neither passed nor skipped:\n" + "\n".join(unexpected)


@pytest.mark.campaign
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("bug", sorted(HOST_HIDDEN))
def test_host_fuzzing_finds_the_bug_and_shrinks_it(bug, tmp_path):
    prop, evidence, max_steps = HOST_EXPECTED[bug]
    report_path = tmp_path / "fuzz.json"
    args = ["--seed", "1", "--examples", "10"]
    result = run(
        "fuzz", "host", *args, "--property", prop, "--json", str(report_path),
        "--", *HOST_MUTANT, bug, timeout=1100,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(report_path.read_text())
    assert report["examples"] <= HOST_FIND_WITHIN
    [failure] = report["failures"]
    assert failure["property"] == prop
    for words in evidence:
        assert words in failure["message"], failure["message"]
    steps = [
        line
        for line in failure["example"].splitlines()
        if line.startswith("state.") and not line.startswith("state.teardown(")
    ]
    assert 1 <= len(steps) <= max_steps, failure["example"]
