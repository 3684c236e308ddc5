"""Expected-verdict files, and running the plugin suite on a corpus plugin.

A verdict file (tests/corpus/<name>.verdicts) has one line per case whose outcome is not
``passed``: the case id, the outcome, and why, in terms of the plugin's real behaviour and of
the requirement's origin. Lines starting with ``#`` are comments. An outcome may name
alternatives (``not_met|passed``) only where the plugin itself races, and the reason says so.
A reason may end with ``# SUITE?``: a verdict this file records as the suite gives it, which
the corpus' maintainers believe wrong (see the reason).

``python -m tests.corpus.verdicts NAME [--write]`` installs the plugin (as the tests do), runs
the suite once and prints (or writes) the verdict file it would need, keeping the reasons of the
lines that still hold, and the file's notes, and marking new lines ``TODO``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from .catalogue import CORPUS, CorpusPlugin, by_name

PASSED = "passed"
OUTCOMES = {"passed", "failed", "skipped", "xfailed", "xpassed", "error", "not_met"}
# Outcomes that make `pluginconf plugin` exit 1.
DECISIVE = {"failed", "error", "xpassed"}
SUITE_FLAG = "# SUITE?"
SUITE_TIMEOUT_S = 600.0
# Set in the suite's environment, so inherited by every plugin process it starts: what still
# carries it once the suite has exited was left behind.
RUN_MARKER = "PLUGINCONF_CORPUS_RUN"


class VerdictFileError(ValueError):
    pass


@dataclass(frozen=True)
class Expected:
    case_id: str
    outcomes: frozenset[str]
    reason: str
    suite_doubted: bool

    def format_outcome(self) -> str:
        return "|".join(sorted(self.outcomes, key=lambda o: (o == PASSED, o)))


def parse_verdicts(text: str, source: str = "<verdicts>") -> dict[str, Expected]:
    expected: dict[str, Expected] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(None, 2)
        if len(fields) < 3:
            raise VerdictFileError(f"{source}:{number}: expected 'CASE OUTCOME REASON': {raw!r}")
        case_id, outcome_field, reason = fields
        outcomes = frozenset(outcome_field.split("|"))
        unknown = outcomes - OUTCOMES
        if unknown or outcomes == {PASSED}:
            raise VerdictFileError(
                f"{source}:{number}: outcome {outcome_field!r}: expected one or more of "
                f"{', '.join(sorted(OUTCOMES))}, and not passed alone (unlisted cases pass)"
            )
        if case_id in expected:
            raise VerdictFileError(f"{source}:{number}: {case_id} is listed twice")
        expected[case_id] = Expected(case_id, outcomes, reason, SUITE_FLAG in reason)
    return expected


def load_verdicts(path: Path) -> dict[str, Expected]:
    return parse_verdicts(path.read_text(), str(path))


@dataclass(frozen=True)
class SuiteRun:
    returncode: int
    cases: dict[str, dict[str, object]]
    stdout: str
    stderr: str
    # What the run left behind: processes still alive (killed since), files in its TMPDIR
    # and HOME.
    left_running: list[str] = field(default_factory=list)
    left_files: list[str] = field(default_factory=list)

    @property
    def outcomes(self) -> dict[str, str]:
        return {case_id: str(case["outcome"]) for case_id, case in self.cases.items()}


def suite_command(plugin: CorpusPlugin, argv: list[str], report: Path) -> list[str]:
    return [
        sys.executable, "-m", "pluginconf", "plugin",
        "--profile", "transport", *plugin.target_args,
        # One run per plugin; the corpus tests themselves are spread over workers.
        "-n", "0",
        "--json", str(report),
        "--", *argv,
    ]  # fmt: skip


def _suite_environment(workdir: Path, marker: str) -> dict[str, str]:
    """The caller's environment without pytest's variables (plugins that see
    PYTEST_CURRENT_TEST change behaviour), with a private HOME and TMPDIR."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PYTEST_", "XDG_")) and name != "PLUGINCONF_CORPUS_CACHE"
    }
    env.update(HOME=str(workdir / "home"), TMPDIR=str(workdir / "tmp"), **{RUN_MARKER: marker})
    return env


def _carrying(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.environ().get(RUN_MARKER) == marker:
                found.append(process)
    return found


def _reap_left(marker: str) -> list[str]:
    """Kill and describe the processes of this run still alive after the suite exited."""
    left = _carrying(marker)
    described = []
    for process in left:
        with contextlib.suppress(psutil.Error):
            described.append(f"{process.pid}: {' '.join(process.cmdline())}")
            process.kill()
    psutil.wait_procs(left, timeout=5)
    return described


def run_suite(plugin: CorpusPlugin, argv: list[str]) -> SuiteRun:
    """One `pluginconf plugin` run as a subprocess, in its own session, with a HOME and a
    TMPDIR of its own (short: unix socket paths must fit in 108 bytes), all reaped after."""
    marker = secrets.token_hex(8)
    with tempfile.TemporaryDirectory(prefix="corpus-") as name:
        workdir = Path(name)
        for sub in ("home", "tmp"):
            (workdir / sub).mkdir()
        report = workdir / "report.json"
        process = subprocess.Popen(
            suite_command(plugin, argv, report),
            env=_suite_environment(workdir, marker),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=SUITE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            stderr += f"\n(the suite did not finish within {SUITE_TIMEOUT_S:g} s and was killed)"
        finally:
            left_running = _reap_left(marker)
        left_files = sorted(
            str(path.relative_to(workdir))
            for sub in ("home", "tmp")
            for path in (workdir / sub).rglob("*")
        )
        cases: dict[str, dict[str, object]] = {}
        if report.is_file():
            cases = {case["id"]: case for case in json.loads(report.read_text())["cases"]}
    return SuiteRun(process.returncode, cases, stdout, stderr, left_running, left_files)


def _first_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


def draft_reason(case: dict[str, object]) -> str:
    requirements = case.get("requirement") or []
    ids = " ".join(str(r) for r in requirements) if isinstance(requirements, list) else ""
    return f"TODO {ids} ({case.get('origin', '?')}): {_first_line(case.get('message', ''))}"


_GENERATED_HEADER = ("Built on:", "Suite:", "Every case not listed passed.")


def _notes(text: str, plugin: CorpusPlugin) -> list[str]:
    """The comment lines of an existing file that the header does not regenerate."""
    package = f"# {plugin.artefact.package} {plugin.artefact.version} "
    return [
        line
        for line in text.splitlines()
        if line.startswith("#")
        and not line.startswith(package)
        and not line[1:].strip().startswith(_GENERATED_HEADER)
    ]


def format_verdicts(
    plugin: CorpusPlugin,
    outcomes: dict[str, str],
    run: SuiteRun,
    known: dict[str, Expected],
    notes: list[str] | None = None,
) -> str:
    """The verdict file for ``outcomes``: the reasons of ``known`` where they still hold,
    and the ``notes`` (comment lines) of the file it replaces."""
    artefact = plugin.artefact
    lines = [
        f"# {artefact.package} {artefact.version} ({artefact.filename}, sha256 {artefact.sha256})",
        f"# Built on: {plugin.built_on}",
        f"# Suite: pluginconf plugin --profile transport {' '.join(plugin.target_args)}",
        "# Every case not listed passed. Columns: case, outcome, reason.",
        *(notes or []),
    ]
    rows = []
    for case_id, outcome in outcomes.items():
        previous = known.get(case_id)
        if previous is not None and outcome in previous.outcomes:
            rows.append((case_id, previous.format_outcome(), previous.reason))
        elif outcome != PASSED:
            rows.append((case_id, outcome, draft_reason(run.cases[case_id])))
    case_width = max((len(case_id) for case_id, _, _ in rows), default=0)
    outcome_width = max((len(outcome) for _, outcome, _ in rows), default=0)
    for case_id, outcome, reason in rows:
        lines.append(f"{case_id.ljust(case_width)}  {outcome.ljust(outcome_width)}  {reason}")
    return "\n".join(lines) + "\n"


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.corpus.verdicts",
        description=(
            "Install a corpus plugin as the tests do, run the plugin suite on it once and print "
            "the verdict file its current verdicts need: the reasons of lines that still hold "
            "are kept, new lines have a TODO reason drafted from the report."
        ),
    )
    parser.add_argument("name", choices=[plugin.name for plugin in CORPUS])
    parser.add_argument(
        "--write", action="store_true", help="replace tests/corpus/NAME.verdicts instead"
    )
    options = parser.parse_args(args)
    plugin = by_name(options.name)
    from .programs import program  # installing needs pip and the network: only here

    with tempfile.TemporaryDirectory(prefix="corpus-program-") as workdir:
        argv = program(plugin, Path(workdir))
        run = run_suite(plugin, argv)
    if not run.cases:
        print(run.stdout + run.stderr, file=sys.stderr)
        return 2
    existing = plugin.verdict_path.read_text() if plugin.verdict_path.exists() else ""
    known = parse_verdicts(existing, str(plugin.verdict_path))
    text = format_verdicts(plugin, run.outcomes, run, known, _notes(existing, plugin))
    if options.write:
        plugin.verdict_path.write_text(text)
    else:
        sys.stdout.write(text)
    print(f"exit status {run.returncode}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
