"""`pluginconf merge-reports`: the JSON reports of a run's shards joined into one report.

The joined report is the one the whole run would have written, and its exit status the one
the whole run would have had: 0 or 1 as the cases decide, or the status of a shard that did
not complete (2: it could not start its target; 130/143: it was interrupted). Reports of
different suites, targets, rules, options or pluginconf versions, a case in two reports, and
an incomplete set of shards are refused: a joined report must not claim what no run showed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pluginconf.runner.registry import load_cases
from pluginconf.runner.reports.report import (
    EXIT_FAILURES,
    EXIT_OK,
    EXIT_USAGE,
    NOT_MET_KEY,
    SUMMARY_KEYS,
)

# What every report of one run must agree on (top-level keys, then option names).
_SAME = ("suite", "target", "profile", "target_name", "strict", "pluginconf_version")
# Options that may differ between shards of one run.
_PER_SHARD_OPTIONS = ("workers", "shard")
_FAILING = ("failed", "error", "xpassed")


class MergeError(Exception):
    """Reports that cannot be joined; the message says which and why."""


def _load(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            report = json.load(fh)
    except OSError as exc:
        raise MergeError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MergeError(f"{path}: not a JSON report ({exc})") from None
    if (
        not isinstance(report, dict)
        or not all(k in report for k in ("suite", "cases", "summary"))
        or report["suite"] not in ("plugin", "host")
    ):
        raise MergeError(
            f"{path}: not a pluginconf report (expected the JSON of pluginconf plugin|host "
            "--json, with suite, summary and cases)"
        )
    cases, summary = report["cases"], report["summary"]
    if (
        not isinstance(summary, dict)
        or not isinstance(cases, list)
        or not all(
            isinstance(c, dict)
            and isinstance(c.get("id"), str)
            and isinstance(c.get("outcome"), str)
            for c in cases
        )
    ):
        raise MergeError(
            f"{path}: a damaged report (summary must be an object, cases a list of objects "
            "with id and outcome); write it again with --json"
        )
    return report


def _describe(value: Any) -> str:
    return " ".join(value) if isinstance(value, list) else json.dumps(value)


def _check_same(paths: list[str], reports: list[dict[str, Any]]) -> None:
    first, base = paths[0], reports[0]
    for path, report in zip(paths[1:], reports[1:], strict=True):
        for key in _SAME:
            if report.get(key) != base.get(key):
                raise MergeError(
                    f"{path} and {first} are reports of different runs: {key} is "
                    f"{_describe(report.get(key))} in one and {_describe(base.get(key))} in the "
                    "other; merge only the shards of one run"
                )
        ours = {
            k: v for k, v in (report.get("options") or {}).items() if k not in _PER_SHARD_OPTIONS
        }
        theirs = {
            k: v for k, v in (base.get("options") or {}).items() if k not in _PER_SHARD_OPTIONS
        }
        for key in sorted(ours.keys() | theirs.keys()):
            if ours.get(key) != theirs.get(key):
                raise MergeError(
                    f"{path} and {first} were run with different options: {key} is "
                    f"{_describe(ours.get(key))} in one and {_describe(theirs.get(key))} in the "
                    "other; the shards of one run share every option but --shard and -n"
                )


def _check_shards(paths: list[str], reports: list[dict[str, Any]]) -> list[int]:
    """The shard indexes; the set must be complete when the reports are shards."""
    shards = [r.get("shard") for r in reports]
    if all(s is None for s in shards):
        return []
    if any(s is None for s in shards):
        path = paths[shards.index(None)]
        raise MergeError(f"{path} is not a shard (no --shard), the others are; merge shards only")
    counts = {s["count"] for s in shards if s is not None}
    if len(counts) > 1:
        raise MergeError(
            f"the reports are shards of different splits ({', '.join(map(str, sorted(counts)))} "
            "shards); merge the shards of one run"
        )
    count = counts.pop()
    seen: dict[int, str] = {}
    for path, shard in zip(paths, shards, strict=True):
        assert shard is not None
        if shard["index"] in seen:
            raise MergeError(
                f"{path} and {seen[shard['index']]} are both shard {shard['index']}/{count}"
            )
        seen[shard["index"]] = path
    missing = sorted(set(range(1, count + 1)) - seen.keys())
    if missing:
        raise MergeError(
            f"shard{'s' if len(missing) > 1 else ''} {', '.join(f'{i}/{count}' for i in missing)} "
            f"missing: give the reports of all {count} shards"
        )
    return sorted(seen)


def merge(paths: list[str]) -> tuple[dict[str, Any], int]:
    """The joined report and the exit status of the whole run; MergeError when refused."""
    reports = [_load(p) for p in paths]
    _check_same(paths, reports)
    shards = _check_shards(paths, reports)
    owner: dict[str, str] = {}
    cases: list[dict[str, Any]] = []
    for path, report in zip(paths, reports, strict=True):
        for case in report["cases"]:
            if case["id"] in owner:
                raise MergeError(
                    f"{case['id']} is in both {owner[case['id']]} and {path}: the reports overlap; "
                    "merge the disjoint shards of one run"
                )
            owner[case["id"]] = path
            cases.append(case)
    # In the order the whole run would have listed them.
    order = {c.id: i for i, c in enumerate(load_cases(reports[0]["suite"]))}
    cases.sort(key=lambda c: (order.get(c["id"], len(order)), str(c["id"])))
    duration = max(float(r["summary"].get("duration_s", 0.0)) for r in reports)
    counts = {key: 0 for key in (*SUMMARY_KEYS, NOT_MET_KEY)}
    for case in cases:
        key = {"error": "errors", "not_met": NOT_MET_KEY}.get(case["outcome"], case["outcome"])
        counts[key] = counts.get(key, 0) + 1
    runs = [r.get("run") or {} for r in reports]
    stopped = [
        (p, run) for p, run in zip(paths, runs, strict=True) if run.get("completed") is False
    ]
    if stopped:
        status = int(stopped[0][1].get("exit_status") or EXIT_FAILURES)
    else:
        status = EXIT_FAILURES if any(c["outcome"] in _FAILING for c in cases) else EXIT_OK
    requirements: dict[str, Any] = {}
    for report in reports:
        requirements.update(report.get("requirements") or {})
    base = reports[0]
    options = {k: v for k, v in (base.get("options") or {}).items() if k not in _PER_SHARD_OPTIONS}
    merged: dict[str, Any] = {
        **{key: base.get(key) for key in ("suite", "target", "profile")},
        "summary": {**counts, "duration_s": round(duration, 3)},
        "cases": cases,
        "schema_version": base.get("schema_version"),
        "pluginconf_version": base.get("pluginconf_version"),
        "started_at": min(str(r.get("started_at", "")) for r in reports),
        "target_name": base.get("target_name"),
        "strict": base.get("strict"),
        "options": options,
        "run": {
            "completed": not stopped,
            "exit_status": status,
            "reason": "; ".join(f"{p}: {run.get('reason', '')}" for p, run in stopped),
            "not_run": sorted(i for run in runs for i in run.get("not_run", [])),
        },
        "shard": None,
        "requirements": dict(sorted(requirements.items())),
        "merged_from": [
            {
                "path": path,
                "shard": report.get("shard"),
                "started_at": report.get("started_at"),
                "duration_s": report["summary"].get("duration_s"),
                "exit_status": (report.get("run") or {}).get("exit_status"),
                "cases": len(report["cases"]),
            }
            for path, report in zip(paths, reports, strict=True)
        ],
        "shards": len(shards),
    }
    return merged, status


def run_merge(
    paths: list[str], json_out: str | None, junit_out: str | None, html_out: str | None
) -> int:
    from pluginconf.runner.cli.command import check_report_path
    from pluginconf.runner.reports.html import write_html
    from pluginconf.runner.reports.junit import write_junit
    from pluginconf.runner.reports.report import write_json

    try:
        for option, path in (
            ("--json", json_out),
            ("--junit-xml", junit_out),
            ("--html", html_out),
        ):
            check_report_path(option, path)
        merged, status = merge(paths)
    except (ValueError, MergeError) as exc:
        print(f"pluginconf merge-reports: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if json_out:
        write_json(json_out, merged)
    if junit_out:
        write_junit(junit_out, merged)
    if html_out:
        write_html(html_out, merged)
    summary = merged["summary"]
    print(
        f"{len(paths)} reports, {len(merged['cases'])} cases: {summary['passed']} passed, "
        f"{summary['failed']} failed, {summary['skipped']} skipped"
        + (f", {summary['errors']} errors" if summary["errors"] else "")
        + f"; exit status {status}"
    )
    return status
