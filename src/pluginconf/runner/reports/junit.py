"""The JUnit XML report, written from the JSON report (so that merge-reports writes one too).

One testsuite named after the suite (``pluginconf plugin``), one testcase per case: its
classname is the case's group (``plugin.transport`` for ``plugin/transport/unix-socket-mode``),
its name the last part of the id, and its properties the requirement ids, level, origin and
profile, so that CI dashboards group and filter cases as the suite does. A run that stopped
early gets one errored testcase, ``run``, saying why: CI then shows the reason, not "no
results".
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

# Outcomes that fail the run, and those that do not but are not a pass either.
_FAILING = {"failed": "failure", "xpassed": "failure", "error": "error"}
_SKIPPING = ("skipped", "xfailed", "not_met")


def group_of(case_id: str) -> tuple[str, str]:
    """``plugin/transport/unix-socket-mode`` -> (``plugin.transport``, ``unix-socket-mode``)."""
    group, _, name = case_id.rpartition("/")
    return group.replace("/", "."), name


def _text(value: str) -> str:
    """XML 1.0 cannot carry most control characters; a plugin's output may hold them."""
    return "".join(ch if ch in "\t\n\r" or ord(ch) >= 0x20 else f"\\x{ord(ch):02x}" for ch in value)


def junit_tree(report: dict[str, Any]) -> ET.ElementTree:
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"pluginconf {report['suite']}",
        timestamp=str(report.get("started_at", "")),
        time=f"{float(report['summary'].get('duration_s', 0.0)):.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("pluginconf_version", report.get("pluginconf_version", "")),
        ("target", " ".join(report.get("target", []))),
        ("target_name", report.get("target_name", "")),
        ("profile", report.get("profile", "")),
        *((("shard", f"{s['index']}/{s['count']}"),) if (s := report.get("shard")) else ()),
    ):
        ET.SubElement(properties, "property", name=name, value=_text(str(value)))
    counts = {"failures": 0, "errors": 0, "skipped": 0}
    for case in report["cases"]:
        classname, name = group_of(case["id"])
        element = ET.SubElement(
            suite,
            "testcase",
            classname=classname,
            name=name,
            time=f"{float(case.get('duration_s', 0.0)):.3f}",
        )
        props = ET.SubElement(element, "properties")
        for rid in case.get("requirement", []):
            ET.SubElement(props, "property", name="requirement", value=rid)
        for key in ("level", "origin", "profile", "outcome"):
            if case.get(key):
                ET.SubElement(props, "property", name=key, value=str(case[key]))
        message = _text(str(case.get("message", "")))
        outcome = case["outcome"]
        if outcome in _FAILING:
            tag = _FAILING[outcome]
            if outcome == "xpassed":
                message = f"listed as known failing, but passed: {case.get('known_failing', '')}"
            ET.SubElement(element, tag, message=message[:200]).text = message
            counts["failures" if tag == "failure" else "errors"] += 1
        elif outcome in _SKIPPING:
            why = {"xfailed": "known failing: ", "not_met": "recommendation not met: "}
            text = why.get(outcome, "") + (message or str(case.get("known_failing") or ""))
            ET.SubElement(element, "skipped", message=text[:200]).text = text
            counts["skipped"] += 1
        if case.get("notes"):
            ET.SubElement(element, "system-out").text = _text(str(case["notes"]))
    run = report.get("run") or {}
    tests = len(report["cases"])
    if run.get("reason"):
        element = ET.SubElement(suite, "testcase", classname=report["suite"], name="run", time="0")
        reason = _text(str(run["reason"]))
        ET.SubElement(element, "error", message=reason[:200]).text = reason
        counts["errors"] += 1
        tests += 1
    suite.set("tests", str(tests))
    for key, value in counts.items():
        suite.set(key, str(value))
    ET.indent(suites)
    return ET.ElementTree(suites)


def write_junit(path: str, report: dict[str, Any]) -> None:
    junit_tree(report).write(path, encoding="utf-8", xml_declaration=True)
