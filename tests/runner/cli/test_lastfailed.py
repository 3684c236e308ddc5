"""--last-failed's record (runner/cli/lastfailed.py): what a run leaves, and what reruns."""

from __future__ import annotations

import json

from pluginconf.runner.cli.arguments import DEFAULT_CACHE_DIR
from pluginconf.runner.cli.lastfailed import CACHE_ENV, LastFailed, cache_dir, key, narrow
from pluginconf.runner.model import Case, Outcome, Profile, case
from pluginconf.runner.reports.report import CaseReport, report_for
from pluginconf.runner.reports.result import Result


def _case(case_id: str) -> Case:
    @case(case_id, requirements=["HL-1"], profile=Profile.TRANSPORT)
    async def made(t):
        """
        Purpose: p
        Procedure: q
        Asserts: r
        """

    return made


A, B, C = _case("plugin/x/a"), _case("plugin/x/b"), _case("plugin/x/c")


def _report(made: Case, outcome: Outcome, known: str | None = None) -> CaseReport:
    return report_for(made, Result(made.id, outcome, "evidence", 0.1), known)


def test_a_run_records_its_failures_and_clears_its_passes(tmp_path):
    where = tmp_path / "cache"
    run = key("plugin", ["./p"], "pluginconf")
    assert LastFailed(where).failed(run) == []  # nothing recorded yet
    assert LastFailed(where).record(run, [_report(A, Outcome.FAILED), _report(B, Outcome.ERROR),
                                          _report(C, Outcome.PASSED)]) is None  # fmt: skip
    assert LastFailed(where).failed(run) == ["plugin/x/a", "plugin/x/b"]
    assert (where / ".gitignore").read_text() == "*\n" and (where / "README.md").exists()
    # A later run of A alone clears it and leaves B's failure, which it did not run, recorded.
    LastFailed(where).record(run, [_report(A, Outcome.PASSED)])
    assert LastFailed(where).failed(run) == ["plugin/x/b"]
    # Failures that do not fail the run (skipped, xfailed, not met) are no failures here.
    LastFailed(where).record(run, [_report(B, Outcome.FAILED, known="listed"),
                                   _report(C, Outcome.NOT_MET)])  # fmt: skip
    assert LastFailed(where).failed(run) == []
    assert json.loads((where / "lastfailed.json").read_text()) == {}


def test_runs_of_other_suites_or_targets_are_recorded_apart(tmp_path):
    plugin_run = key("plugin", ["./p"], "pluginconf")
    other_target = key("plugin", ["./p"], "terraform")
    LastFailed(tmp_path).record(plugin_run, [_report(A, Outcome.FAILED)])
    LastFailed(tmp_path).record(other_target, [_report(B, Outcome.FAILED)])
    assert LastFailed(tmp_path).failed(plugin_run) == ["plugin/x/a"]
    assert LastFailed(tmp_path).failed(other_target) == ["plugin/x/b"]


def test_an_unreadable_record_is_as_if_nothing_failed(tmp_path):
    (tmp_path / "lastfailed.json").write_text("{broken")
    assert LastFailed(tmp_path).failed(key("plugin", [], "pluginconf")) == []
    (tmp_path / "lastfailed.json").write_text(json.dumps(["not", "a", "mapping"]))
    assert LastFailed(tmp_path).failed(key("plugin", [], "pluginconf")) == []


def test_a_record_that_cannot_be_written_says_why(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    why = LastFailed(blocked).record("k", [_report(A, Outcome.FAILED)])
    assert why is not None and why.startswith(f"{blocked / 'lastfailed.json'}: ")


def test_narrow_reruns_the_failed_or_everything_with_the_reason(tmp_path):
    rerun, line = narrow([A, B, C], ["plugin/x/b", "plugin/x/z"], tmp_path)
    assert rerun == [B]
    assert line == (
        f"--last-failed: running the 1 case that failed last time (of 3 selected; "
        f"recorded in {tmp_path})"
    )
    everything, line = narrow([A, C], ["plugin/x/b"], tmp_path)
    assert everything == [A, C]
    assert "none of the 1 cases that failed last time is selected" in line
    assert line.endswith("running all 2 cases")
    _, line = narrow([A], [], tmp_path)
    assert "no failure is recorded for this suite and target" in line


def test_the_cache_directory_is_the_option_else_the_environment_else_the_default(
    tmp_path, monkeypatch
):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert str(cache_dir(None)) == DEFAULT_CACHE_DIR
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env"))
    assert cache_dir(None) == tmp_path / "env"
    assert cache_dir(str(tmp_path / "opt")) == tmp_path / "opt"
