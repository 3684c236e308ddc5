"""`--html FILE`: the JSON report as one self-contained page.

Inline CSS and script, no server, no external asset: it opens from a CI artifact or a mail
attachment as it is. It shows the summary, then every case, failures first, each with its
requirements (id, level, origin, text) and its evidence. Outcome links filter the cases; the
filter lives in the URL fragment (``report.html#outcome=failed,error``) so that a filtered
view can be linked to. Without script, every case shows.
"""

from __future__ import annotations

from html import escape
from typing import Any

# Display order: what needs attention first.
OUTCOME_ORDER = ("failed", "error", "xpassed", "not_met", "xfailed", "skipped", "passed")
_LABEL = {"not_met": "not met"}

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .3em}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}
.meta td{border:0;padding:.1em .6em .1em 0}
pre{white-space:pre-wrap;margin:.2em 0;font-size:12px;background:#f8f8f8;padding:.4em}
.o{font-weight:bold;white-space:nowrap}
.failed .o,.error .o,.xpassed .o{color:#b00}
.passed .o{color:#070}
.skipped .o,.xfailed .o,.not_met .o{color:#a60}
#filters a{margin-right:.8em}
#filters a.on{font-weight:bold}
.req{font-size:12px;color:#444}
td.ev{width:45%}
.status-1,.status-2{color:#b00}
"""

# Reads the fragment, shows only the rows of the outcomes it names, marks the active link.
_SCRIPT = """
(function () {
  function apply() {
    var m = /(?:^|[#&])outcome=([^&]*)/.exec(location.hash);
    var wanted = m && m[1] ? m[1].split(',') : null;
    var rows = document.querySelectorAll('tr.case');
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var on = !wanted || wanted.indexOf(rows[i].getAttribute('data-outcome')) >= 0;
      rows[i].hidden = !on;
      if (on) { shown++; }
    }
    document.getElementById('shown').textContent =
      shown + ' of ' + rows.length + ' cases shown' +
      (wanted ? ' (' + wanted.join(', ') + ')' : '');
    var links = document.querySelectorAll('#filters a');
    for (var j = 0; j < links.length; j++) {
      var f = links[j].getAttribute('data-filter');
      links[j].className = (wanted ? wanted.join(',') === f : f === '') ? 'on' : '';
    }
    document.body.setAttribute('data-filtered', wanted ? wanted.join(',') : 'all');
  }
  window.addEventListener('hashchange', apply);
  apply();
})();
"""


def _requirements(case: dict[str, Any], texts: dict[str, Any]) -> str:
    items = []
    violated = set(case.get("violated", []))
    for rid in case.get("requirement", []):
        known = texts.get(rid, {})
        mark = " (broken)" if rid in violated else ""
        items.append(
            f'<div class="req"><b>{escape(rid)}</b>{mark} '
            f"[{escape(known.get('level', ''))}, {escape(known.get('origin', ''))}] "
            f"{escape(known.get('text', ''))}</div>"
        )
    return "".join(items)


def _evidence(case: dict[str, Any]) -> str:
    parts = []
    if case.get("message"):
        parts.append(f"<pre>{escape(case['message'])}</pre>")
    if case.get("known_failing") and case["outcome"] == "xpassed":
        parts.append(
            f"<div>listed as known failing ({escape(case['known_failing'])}), but passed: "
            "remove it from the list</div>"
        )
    elif case.get("known_failing"):
        parts.append(f"<div>known failing: {escape(case['known_failing'])}</div>")
    if case.get("notes"):
        parts.append(
            f"<details><summary>notes</summary><pre>{escape(case['notes'])}</pre></details>"
        )
    return "".join(parts)


def render_html(report: dict[str, Any]) -> str:
    cases = sorted(
        report["cases"],
        key=lambda c: OUTCOME_ORDER.index(c["outcome"]) if c["outcome"] in OUTCOME_ORDER else 0,
    )  # sorted() is stable: within an outcome, the run's order
    summary = report["summary"]
    run = report.get("run") or {}
    shard = report.get("shard")
    status = run.get("exit_status")
    title = f"pluginconf {report['suite']}: {' '.join(report.get('target', []))}"
    meta = [
        ("target", " ".join(report.get("target", []))),
        (
            "rules",
            str(report.get("target_name", "")) + (" (strict)" if report.get("strict") else ""),
        ),
        ("profile", str(report.get("profile", ""))),
        ("started", str(report.get("started_at", ""))),
        ("duration", f"{float(summary.get('duration_s', 0.0)):.1f} s"),
        ("pluginconf", str(report.get("pluginconf_version", ""))),
        *((("shard", f"{shard['index']}/{shard['count']}"),) if shard else ()),
        *(
            (("merged from", f"{len(report['merged_from'])} reports"),)
            if report.get("merged_from")
            else ()
        ),
        ("exit status", "" if status is None else str(status)),
        *((("stopped", str(run["reason"])),) if run.get("reason") else ()),
    ]
    counts = [(o, int(summary.get(k, 0))) for o, k in _SUMMARY_KEYS]
    filters = ['<a href="#" data-filter="">all</a>'] + [
        f'<a href="#outcome={o}" data-filter="{o}">{_LABEL.get(o, o)} ({n})</a>'
        for o, n in counts
        if n
    ]
    texts = report.get("requirements", {})
    rows = []
    for case in cases:
        outcome = case["outcome"]
        rows.append(
            f'<tr class="case {escape(outcome)}" data-outcome="{escape(outcome)}" '
            f'id="{escape(case["id"])}">'
            f'<td class="o">{escape(_LABEL.get(outcome, outcome))}</td>'
            f"<td><code>{escape(case['id'])}</code>{_requirements(case, texts)}</td>"
            f"<td>{escape(str(case.get('level', '')))}</td>"
            f"<td>{escape(str(case.get('origin', '')))}</td>"
            f"<td>{float(case.get('duration_s', 0.0)):.2f}s</td>"
            f'<td class="ev">{_evidence(case)}</td></tr>'
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{_CSS}</style></head>
<body data-filtered="all">
<h1>{escape(title)}</h1>
<table class="meta">{
        "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in meta)
    }</table>
<p id="summary" class="status-{escape(str(status))}">{_summary(counts)}</p>
<p id="filters">{"".join(filters)}</p>
<p id="shown">{len(cases)} cases</p>
<table id="cases"><thead><tr><th>outcome</th><th>case and requirements</th><th>level</th>
<th>origin</th><th>time</th><th>evidence</th></tr></thead>
<tbody>
{"".join(rows)}
</tbody></table>
<script>{_SCRIPT}</script>
</body></html>
"""


# Outcome -> summary key (errors and recommendations not met have their own names).
_SUMMARY_KEYS = tuple(
    (o, {"error": "errors", "not_met": "recommendations_not_met"}.get(o, o)) for o in OUTCOME_ORDER
)


def _summary(counts: list[tuple[str, int]]) -> str:
    total = sum(n for _, n in counts)
    shown = [
        f'<span class="count" data-outcome="{o}">{n} {_LABEL.get(o, o)}</span>'
        for o, n in counts
        if n
    ]
    head = f"{total} case{'' if total == 1 else 's'}"
    return head + (": " + ", ".join(shown) if shown else ": none ran")


def write_html(path: str, report: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(render_html(report))
