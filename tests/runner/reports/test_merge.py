"""merge-reports' joining (runner/reports/merge.py): order, counts, status, and refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pluginconf.runner.registry import load_cases
from pluginconf.runner.reports.merge import MergeError, merge

IDS = [c.id for c in load_cases("plugin")]


def _shard(
    tmp_path: Path, name: str, cases: list[tuple[str, str]], shard: dict[str, int] | None
) -> str:
    report = {
        "suite": "plugin",
        "target": ["./p"],
        "profile": "sdk",
        "target_name": "pluginconf",
        "strict": False,
        "pluginconf_version": "1",
        "schema_version": 2,
        "started_at": f"2026-01-01T00:00:0{len(name)}+00:00",
        "options": {"run": [], "workers": name, "shard": None},
        "summary": {"duration_s": float(len(cases))},
        "cases": [{"id": i, "outcome": o, "requirement": []} for i, o in cases],
        "run": {"completed": True, "exit_status": 0, "reason": "", "not_run": []},
        "shard": shard,
        "requirements": {},
    }
    path = tmp_path / name
    path.write_text(json.dumps(report))
    return str(path)


def test_shards_join_in_the_whole_runs_order_with_its_counts_and_status(tmp_path):
    one = _shard(tmp_path, "a.json", [(IDS[3], "not_met"), (IDS[0], "passed")],
                 {"index": 1, "count": 2})  # fmt: skip
    two = _shard(tmp_path, "bb.json", [(IDS[2], "error"), (IDS[1], "skipped")],
                 {"index": 2, "count": 2})  # fmt: skip
    merged, status = merge([two, one])
    assert [c["id"] for c in merged["cases"]] == IDS[:4]
    assert status == 1  # an error fails the whole run
    summary = merged["summary"]
    assert (summary["passed"], summary["errors"], summary["skipped"]) == (1, 1, 1)
    assert summary["recommendations_not_met"] == 1 and summary["duration_s"] == 2.0
    assert merged["started_at"] == "2026-01-01T00:00:06+00:00"  # the earliest
    assert merged["shards"] == 2 and merged["shard"] is None
    assert "workers" not in merged["options"] and "shard" not in merged["options"]
    assert [m["path"] for m in merged["merged_from"]] == [two, one]


def test_reports_that_are_not_shards_join_too(tmp_path):
    one = _shard(tmp_path, "a.json", [(IDS[0], "passed")], None)
    two = _shard(tmp_path, "b.json", [(IDS[1], "xfailed")], None)
    merged, status = merge([one, two])
    assert status == 0 and merged["shards"] == 0


def test_shards_of_different_splits_or_mixed_with_whole_runs_are_refused(tmp_path):
    half = _shard(tmp_path, "a.json", [(IDS[0], "passed")], {"index": 1, "count": 2})
    third = _shard(tmp_path, "b.json", [(IDS[1], "passed")], {"index": 2, "count": 3})
    whole = _shard(tmp_path, "c.json", [(IDS[2], "passed")], None)
    with pytest.raises(MergeError, match=r"shards of different splits \(2, 3 shards\)"):
        merge([half, third])
    with pytest.raises(MergeError, match=r"c\.json is not a shard"):
        merge([half, whole])


def test_several_missing_shards_are_all_named(tmp_path):
    first = _shard(tmp_path, "a.json", [(IDS[0], "passed")], {"index": 1, "count": 3})
    with pytest.raises(MergeError, match="shards 2/3, 3/3 missing: give the reports of all 3"):
        merge([first])


def test_a_report_of_another_suite_or_shape_is_refused(tmp_path):
    host = tmp_path / "host.json"
    host.write_text(json.dumps({"suite": "fuzz", "cases": [], "summary": {}}))
    with pytest.raises(MergeError, match=r"host\.json: not a pluginconf report"):
        merge([str(host)])
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    with pytest.raises(MergeError, match=r"list\.json: not a pluginconf report"):
        merge([str(listed)])
    damaged: dict[str, Any] = {"suite": "plugin", "cases": [{"id": 1}], "summary": {}}
    (tmp_path / "d.json").write_text(json.dumps(damaged))
    with pytest.raises(MergeError, match=r"d\.json: a damaged report"):
        merge([str(tmp_path / "d.json")])
