"""--shard I/N on plugin and host, and merge-reports: real CLI runs of a few fast cases."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from cli_process import run_cli
from conftest import test_plugin

from pluginconf.cli import main

HANDSHAKE = "plugin/handshake/*"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=120, cwd=cwd)


def _load(path: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(path.read_text())
    return report


CASES = ["plugin/handshake/line-format", "plugin/handshake/first-bytes",
         "plugin/hooks/command-response-type"]  # fmt: skip  # the last fails on this plugin


def test_shards_cover_the_selection_and_merge_into_the_whole_runs_report(
    tmp_path, capsys, monkeypatch
):
    args = [a for c in CASES for a in ("--run", c)]
    statuses = []
    for index in (1, 2):
        result = run("plugin", *args, "--shard", f"{index}/2", "-n", "0", "--json",
                     f"s{index}.json", "--", *test_plugin("configurable"), cwd=tmp_path)  # fmt: skip
        assert f"shard {index}/2: " in result.stdout, result.stdout + result.stderr
        statuses.append(result.returncode)
    assert sorted(statuses) == [0, 1]  # one shard holds the failure
    one, two = _load(tmp_path / "s1.json"), _load(tmp_path / "s2.json")
    assert one["shard"] == {"index": 1, "count": 2, "of_cases": 3}
    assert one["options"]["shard"] == "1/2"
    ids_one, ids_two = [c["id"] for c in one["cases"]], [c["id"] for c in two["cases"]]
    assert ids_one == sorted(CASES)[0::2] and ids_two == sorted(CASES)[1::2]

    result = run("merge-reports", "s2.json", "s1.json", "--json", "m.json", "--junit-xml",
                 "m.xml", "--html", "m.html", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr  # as the whole run: a failure
    assert "2 passed, 1 failed" in result.stdout
    merged = _load(tmp_path / "m.json")
    assert [c["id"] for c in merged["cases"]] == CASES  # the whole run's order
    assert merged["run"] == {"completed": True, "exit_status": 1, "reason": "", "not_run": []}
    assert merged["shards"] == 2 and len(merged["merged_from"]) == 2
    assert "shard" not in merged["options"] and merged["options"]["run"] == CASES
    suite = ET.parse(tmp_path / "m.xml").getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("3", "1")
    assert "merged from" in (tmp_path / "m.html").read_text()

    monkeypatch.chdir(tmp_path)  # the reports named as a user would
    # Refused: a shard twice, a missing shard, a report of another run, overlapping cases,
    # what is not a report.
    _refused(tmp_path, ["s1.json", "s1.json"], "are both shard 1/2", capsys)
    _refused(tmp_path, ["s1.json"], "shard 2/2 missing", capsys)
    (tmp_path / "other.json").write_text(json.dumps(dict(two, target=["./other"])))
    _refused(tmp_path, ["s1.json", "other.json"], "target is ./other in one", capsys)
    options = dict(two["options"], skip=["plugin/x"])
    (tmp_path / "opts.json").write_text(json.dumps(dict(two, options=options)))
    _refused(tmp_path, ["s1.json", "opts.json"], "different options: skip is", capsys)
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps(dict(one, shard=None)))
    _refused(tmp_path, ["a.json", "b.json"], f"{ids_one[0]} is in both a.json and b.json", capsys)
    (tmp_path / "garbage.json").write_text("{not json")
    _refused(tmp_path, ["s1.json", "garbage.json"], "garbage.json: not a JSON report", capsys)
    _refused(tmp_path, ["s1.json", "missing.json"], "missing.json: cannot read it", capsys)
    (tmp_path / "damaged.json").write_text(json.dumps(dict(two, cases=[1])))
    _refused(tmp_path, ["s1.json", "damaged.json"], "damaged.json: a damaged report", capsys)
    (tmp_path / "fuzz.json").write_text(json.dumps({"target": "plugin", "failures": []}))
    _refused(tmp_path, ["fuzz.json"], "not a pluginconf report", capsys)


def _refused(
    _cwd: Path, paths: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["merge-reports", *paths])
    err = capsys.readouterr().err
    assert status == 2, err
    assert message in err, err


def test_a_host_shard_runs_its_slice(tmp_path):
    cases = ["host/launch/environment", "host/broker/stream-order", "host/hostapi/configuration"]
    args = [a for c in cases for a in ("--run", c)]
    result = run("host", *args, "--shard", "2/2", "-n", "0", "--json", "h.json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    report = _load(tmp_path / "h.json")
    assert report["shard"] == {"index": 2, "count": 2, "of_cases": 3}
    assert [c["id"] for c in report["cases"]] == sorted(cases)[1::2]


@pytest.mark.parametrize(
    ("shard", "message"),
    [
        ("0/2", "'0/2': I must be between 1 and N"),
        ("3/2", "'3/2': I must be between 1 and N"),
        ("1/0", "'1/0': I must be between 1 and N, and N at least 1"),
        ("x", "'x': expected I/N"),
        ("1/2/3", "'1/2/3': expected I/N"),
    ],
)
def test_a_bad_shard_is_a_usage_error(shard, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["host", "--shard", shard])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_an_empty_shard_is_a_usage_error(capsys):
    status = main(["plugin", "--run", "plugin/handshake/line-format", "--shard", "2/2"])
    assert status == 2
    assert "this shard has no case, since the selection has only 1" in capsys.readouterr().err


def test_a_shard_that_did_not_complete_gives_the_merged_run_its_status(tmp_path, capsys):
    """An interrupted shard: the whole run would have been interrupted too (130)."""
    args = ["--run", "plugin/handshake/line-format", "--run", "plugin/handshake/first-bytes"]
    for index in (1, 2):
        status = main(["plugin", *args, "--shard", f"{index}/2", "-n", "0", "--json",
                       str(tmp_path / f"s{index}.json")])  # fmt: skip
        assert status == 0
    two = json.loads((tmp_path / "s2.json").read_text())
    not_run = two["cases"][0]["id"]
    stopped = {"completed": False, "exit_status": 130, "reason": "interrupted by SIGINT",
               "not_run": [not_run]}  # fmt: skip
    (tmp_path / "s2.json").write_text(json.dumps(dict(two, cases=[], run=stopped)))
    capsys.readouterr()
    status = main(["merge-reports", str(tmp_path / "s1.json"), str(tmp_path / "s2.json"),
                   "--json", str(tmp_path / "m.json")])  # fmt: skip
    assert status == 130, capsys.readouterr()
    merged = json.loads((tmp_path / "m.json").read_text())
    assert merged["run"]["completed"] is False and merged["run"]["not_run"] == [not_run]
    assert "interrupted by SIGINT" in merged["run"]["reason"]
