"""The plugin suite on real plugins from PyPI: every verdict as its expected-verdicts file says.

One test per corpus plugin runs `pluginconf plugin --profile transport` once, under the target
of the plugin's application, and asserts the mapping case -> outcome exactly (a case not in
the file passed), the exit status that follows from it, and that the run left nothing behind.
tests/corpus/README.md describes each plugin and how to refresh a verdict file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pluginconf.runner.registry import load_cases

from .catalogue import CORPUS, WORKATO, CorpusPlugin
from .conftest import REQUIRE_ENV, _unavailable
from .install import CACHE_ENV, CorpusUnavailable, install_binary
from .programs import readme_plugin
from .verdicts import (
    DECISIVE,
    PASSED,
    SuiteRun,
    VerdictFileError,
    _notes,
    format_verdicts,
    load_verdicts,
    parse_verdicts,
    run_suite,
)

_REQUIREMENT_ID = re.compile(r"\b[A-Z]{2,3}-\d+\b")


def _mismatches(expected: dict[str, frozenset[str]], run: SuiteRun) -> list[str]:
    lines = []
    for case_id, outcome in run.outcomes.items():
        wanted = expected.get(case_id, frozenset({PASSED}))
        if outcome not in wanted:
            message = str(run.cases[case_id].get("message", "")).strip().splitlines()
            lines.append(
                f"{case_id}: {outcome}, expected {'|'.join(sorted(wanted))}"
                + (f"\n    {message[0][:300]}" if message else "")
            )
    for case_id in sorted(set(expected) - set(run.outcomes)):
        lines.append(f"{case_id}: listed, but the suite did not run it")
    return lines


@pytest.mark.corpus
@pytest.mark.runs_long(50)
@pytest.mark.timeout(900)
@pytest.mark.parametrize("plugin", CORPUS, ids=lambda plugin: plugin.name)
def test_the_suite_gives_the_expected_verdicts(
    plugin: CorpusPlugin, request: pytest.FixtureRequest
) -> None:
    argv: list[str] = request.getfixturevalue(plugin.fixture)
    expected = load_verdicts(plugin.verdict_path)
    run = run_suite(plugin, argv)
    assert run.cases, f"the suite wrote no report (exit {run.returncode}):\n{run.stderr}"
    assert not run.left_running, f"plugin processes outlived the suite: {run.left_running}"
    wanted = {case_id: verdict.outcomes for case_id, verdict in expected.items()}
    mismatches = _mismatches(wanted, run)
    assert not mismatches, (
        f"{plugin.name}: verdicts differ from {plugin.verdict_path.name}:\n"
        + "\n".join(mismatches)
        + "\n\nThe file the current verdicts need (reasons marked TODO are new):\n"
        + format_verdicts(plugin, run.outcomes, run, expected)
    )
    decisive = sorted(c for c, outcome in run.outcomes.items() if outcome in DECISIVE)
    assert run.returncode == (1 if decisive else 0), (
        f"exit status {run.returncode} with decisive failures {decisive}:\n{run.stdout[-3000:]}"
    )
    assert not run.left_files, f"left in the suite's HOME or TMPDIR: {run.left_files}"


def test_the_go_plugin_1_7_provider_is_expected_to_pass_under_terraform() -> None:
    """The issue's bar: with --target terraform, a provider on go-plugin v1.7.0 exits 0."""
    expected = load_verdicts(WORKATO.verdict_path)
    assert "--target" in WORKATO.target_args and "terraform" in WORKATO.target_args
    assert not [v.case_id for v in expected.values() if v.outcomes & DECISIVE]


@pytest.mark.parametrize("plugin", CORPUS, ids=lambda plugin: plugin.name)
def test_each_verdict_names_a_requirement_of_its_case(plugin: CorpusPlugin) -> None:
    cases = {case.id: case for case in load_cases("plugin")}
    expected = load_verdicts(plugin.verdict_path)
    header = plugin.verdict_path.read_text().splitlines()[0]
    assert header.startswith(f"# {plugin.artefact.package} {plugin.artefact.version} ")
    for verdict in expected.values():
        assert verdict.case_id in cases, f"{verdict.case_id}: no such plugin case"
        named = set(_REQUIREMENT_ID.findall(verdict.reason))
        cited = set(cases[verdict.case_id].requirements)
        assert named & cited, (
            f"{plugin.verdict_path.name}: the reason for {verdict.case_id} names none of its "
            f"requirements {sorted(cited)}: {verdict.reason}"
        )
        assert "TODO" not in verdict.reason, f"{verdict.case_id}: the reason is a draft"


def test_a_verdict_file_is_parsed_strictly() -> None:
    text = (
        "# header\n"
        "plugin/a/b  not_met  CT-8 (pluginconf): does not watch its host\n"
        "plugin/a/c  not_met|passed  TR-13 (pluginconf): a race  # SUITE? see the report\n"
    )
    parsed = parse_verdicts(text)
    assert parsed["plugin/a/b"].outcomes == {"not_met"}
    assert parsed["plugin/a/c"].outcomes == {"not_met", "passed"}
    assert parsed["plugin/a/c"].suite_doubted and not parsed["plugin/a/b"].suite_doubted
    for bad in ("plugin/a/b  passed  listed", "plugin/a/b  flaky  x", "plugin/a/b  failed"):
        with pytest.raises(VerdictFileError):
            parse_verdicts(bad)
    with pytest.raises(VerdictFileError, match="twice"):
        parse_verdicts("plugin/a/b failed x\nplugin/a/b failed y\n")


def test_the_printed_file_keeps_reasons_that_hold_and_drafts_new_ones() -> None:
    known = parse_verdicts(
        "plugin/x/kept  not_met  CT-8 (pluginconf): kept reason\n"
        "plugin/x/gone  failed  TR-1 (go-plugin 1.5.0): now passes\n"
    )
    cases: dict[str, dict[str, object]] = {
        "plugin/x/kept": {"outcome": "not_met"},
        "plugin/x/gone": {"outcome": "passed"},
        "plugin/x/new": {
            "outcome": "failed",
            "requirement": ["HS-10"],
            "origin": "go-plugin",
            "message": "offered 1,1001, no handshake\nmore",
        },
    }
    run = SuiteRun(1, cases, "", "")
    text = format_verdicts(WORKATO, run.outcomes, run, known, ["# a note"])
    rows = [line for line in text.splitlines() if not line.startswith("#")]
    assert rows == [
        "plugin/x/kept  not_met  CT-8 (pluginconf): kept reason",
        "plugin/x/new   failed   TODO HS-10 (go-plugin): offered 1,1001, no handshake",
    ]
    assert "# a note" in text.splitlines()
    assert parse_verdicts(text.replace("TODO ", ""))["plugin/x/new"].outcomes == {"failed"}


def test_the_readme_plugin_is_the_python_block_under_its_heading() -> None:
    metadata = (
        "## Quick start\n```bash\npip install\n```\n### Plugin (async)\n\n"
        "```python\n# my_plugin.py\nprint('plugin')\n```\n### Host (async)\n```python\nhost\n```\n"
    )
    assert readme_plugin(metadata) == "# my_plugin.py\nprint('plugin')\n"


@pytest.mark.parametrize("plugin", CORPUS, ids=lambda plugin: plugin.name)
def test_each_verdict_file_is_as_the_printer_writes_it(plugin: CorpusPlugin) -> None:
    """A refresh (python -m tests.corpus.verdicts NAME --write) of unchanged verdicts
    changes nothing: the header, the notes, the order and the alignment are the printer's."""
    text = plugin.verdict_path.read_text()
    known = load_verdicts(plugin.verdict_path)
    cases: dict[str, dict[str, object]] = {
        case_id: {"outcome": sorted(verdict.outcomes)[0]} for case_id, verdict in known.items()
    }
    run = SuiteRun(0, cases, "", "")
    assert format_verdicts(plugin, run.outcomes, run, known, _notes(text, plugin)) == text


def test_an_unreachable_index_is_reported_as_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip against an index that refuses connections: CorpusUnavailable (skip, or fail under
    PLUGINCONF_REQUIRE_CORPUS=1), not an install error."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    for name in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    with pytest.raises(CorpusUnavailable, match="cannot be reached"):
        install_binary(WORKATO)
    # The failed build left no entry that a later run would take as complete.
    assert not list((tmp_path / "cache").glob("*/.complete"))


def test_unavailable_skips_or_fails_as_ci_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no network"):
        _unavailable("no network")
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="no network"):
        _unavailable("no network")
