"""The conformance suite as a pytest plugin, for a project's own test run.

Registered through the ``pytest11`` entry point and inert unless asked for:

    pytest --pluginconf-plugin-cmd "./my-plugin --flag"          # CMD in shell words
    pytest --pluginconf-plugin-cmd reference                     # the bundled plugin
    pytest --pluginconf-plugin-cmd ./my-plugin --pluginconf-profile transport -n 2
    pytest --pluginconf-host-cmd "./my-host-adapter"               # the host suite
    pytest --pluginconf-host-cmd reference                          # the bundled host

Each selected case becomes a test item ``pluginconf::<case id>`` (select with ``-k``, or
``--pluginconf-run``/``--pluginconf-skip`` globs). Each pytest process (every xdist worker)
runs its cases in one event loop of its own, with one shared plugin process and fresh ones
for the cases about launching (the host suite: one adapter process and the fakes each case
loads); everything is stopped and reaped at the end of the session.
A failed MUST case fails its test with the evidence as the message; a failed SHOULD case is
an xfail; ``--pluginconf-known-failing FILE`` turns listed cases into strict xfails.
``pluginconf plugin`` is this plugin under a console of its own (command.py).
"""

from __future__ import annotations

import asyncio
import json
import shlex
from dataclasses import dataclass, replace
from typing import Any

import pytest

from pluginconf.protocol.constants import MagicCookie
from pluginconf.runner.arguments import DEFAULT_HOST_MAX_BODY, DEFAULT_MAX_BODY
from pluginconf.runner.engine import SuiteSession
from pluginconf.runner.host_session import HostSuiteSession
from pluginconf.runner.known_failing import KnownFailing, load_known_failing
from pluginconf.runner.model import Case, CaseResult, Level, Outcome, Profile
from pluginconf.runner.options import HostSuiteOptions, PluginSuiteOptions
from pluginconf.runner.preflight import PreflightError, check_target
from pluginconf.runner.registry import Selection, SelectionError, load_cases
from pluginconf.runner.targets import DEFAULT_TARGET, AutoMTLS, target_named
from pluginconf.runner.verdict import judge

NODE_PREFIX = "pluginconf::"
# The user property carrying a case's result, as JSON, to the controller (xdist) and reports.
RESULT_PROPERTY = "pluginconf"
REFERENCE_WORD = "reference"


# The host suite has one profile: every host case needs the pluginconf.v1 hooks protocol.
HOST_PROFILE = Profile.HOOKS


@dataclass(frozen=True)
class SuiteConfig:
    options: PluginSuiteOptions | HostSuiteOptions
    cases: list[Case]
    known: KnownFailing
    preflight: bool


_CONFIG = pytest.StashKey[SuiteConfig]()
_RUNNER = pytest.StashKey["CaseRunner"]()


def parse_versions(text: str) -> tuple[int, ...]:
    try:
        versions = tuple(int(v) for v in text.split(","))
    except ValueError:
        versions = ()
    if not versions or any(v < 0 for v in versions):
        raise ValueError(
            f"protocol versions {text!r} are not a comma-separated list of non-negative "
            "integers, e.g. 5,6"
        )
    return versions


def build_options(
    command: list[str],
    *,
    profile: str | None,
    magic_cookie: str | None,
    protocol_versions: str | None,
    start_timeout: float,
    max_body: int,
    target: str = DEFAULT_TARGET,
    strict: bool = False,
    auto_mtls: str | None = None,
) -> PluginSuiteOptions:
    """Options from command-line values, the target's preset filling what is not given;
    ValueError names the bad one and what to give."""
    if start_timeout <= 0:
        raise ValueError(f"--start-timeout {start_timeout:g} must be more than 0 seconds")
    if max_body < 0:
        raise ValueError(f"--max-body {max_body} must be 0 or more bytes")
    preset = target_named(target)
    return PluginSuiteOptions(
        command=tuple(command),
        profile=Profile(profile) if profile else None,
        magic_cookie=(
            MagicCookie.parse(magic_cookie) if magic_cookie is not None else preset.magic_cookie
        ),
        protocol_versions=(
            parse_versions(protocol_versions)
            if protocol_versions is not None
            else preset.protocol_versions
        ),
        start_timeout_s=start_timeout,
        max_body=max_body,
        target=preset,
        strict=strict,
        auto_mtls=AutoMTLS(auto_mtls) if auto_mtls is not None else preset.auto_mtls,
    )


def build_host_options(
    command: list[str],
    *,
    start_timeout: float,
    max_body: int,
    target: str = DEFAULT_TARGET,
    strict: bool = False,
    auto_mtls: str | None = None,
) -> HostSuiteOptions:
    """Host suite options from command-line values; ValueError names the bad one."""
    if start_timeout <= 0:
        raise ValueError(f"--start-timeout {start_timeout:g} must be more than 0 seconds")
    if max_body < 0:
        raise ValueError(f"--max-body {max_body} must be 0 or more bytes")
    preset = target_named(target)
    return HostSuiteOptions(
        command=tuple(command),
        start_timeout_s=start_timeout,
        max_body=max_body,
        target=preset,
        strict=strict,
        auto_mtls=AutoMTLS(auto_mtls) if auto_mtls is not None else AutoMTLS.AUTO,
    )


class CaseRunner:
    """One event loop and one suite session per pytest process, made on first use."""

    def __init__(self, options: PluginSuiteOptions | HostSuiteOptions) -> None:
        self._options = options
        self._loop: asyncio.Runner | None = None
        self._session: SuiteSession | HostSuiteSession | None = None

    def run(self, case: Case) -> CaseResult:
        if self._loop is None:
            self._loop = asyncio.Runner()
            if isinstance(self._options, HostSuiteOptions):
                self._session = HostSuiteSession(self._options)
            else:
                self._session = SuiteSession(self._options)
        assert self._session is not None
        return self._loop.run(self._session.run(case))

    def close(self) -> None:
        if self._loop is not None and self._session is not None:
            self._loop.run(self._session.aclose())
            self._loop.close()
            self._loop = None


class CaseFailure(Exception):
    """A MUST case failed; the message is the evidence."""


class SuiteDefect(Exception):
    """The suite itself failed while running a case."""


class CaseItem(pytest.Item):
    def __init__(self, *, case: Case, known_failing: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.known_failing = known_failing

    def runtest(self) -> None:
        suite = self.config.stash[_CONFIG]
        result = self.config.stash[_RUNNER].run(self.case)
        judged = judge(
            self.case, result.outcome, result.message, result.violated, suite.options.judging
        )
        self.user_properties.append(
            (
                RESULT_PROPERTY,
                json.dumps(
                    {
                        "id": self.case.id,
                        "outcome": str(judged.outcome),
                        "message": judged.message,
                        "duration_s": result.duration_s,
                        "violated": list(judged.violated),
                        "origin": judged.origin,
                    }
                ),
            )
        )
        if judged.outcome is Outcome.SKIPPED:
            # Reported at the case, not at this line.
            raise pytest.skip.Exception(judged.message, _use_item_location=True)
        if judged.outcome is Outcome.ERROR:
            raise SuiteDefect(judged.message)
        if judged.outcome is Outcome.NOT_MET and self.known_failing is None:
            why = "SHOULD" if self.case.level is Level.SHOULD else f"{judged.origin} rule"
            pytest.xfail(f"recommendation not met ({why}): {judged.message}")
        if judged.outcome in (Outcome.FAILED, Outcome.NOT_MET):
            raise CaseFailure(judged.message)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, (CaseFailure, SuiteDefect)):
            return f"{self.case.id} [{self.case.level} {' '.join(self.case.requirements)}]\n" + str(
                excinfo.value
            )
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        path, line = self.case.source
        return path or self.path, max(line - 1, 0), f"{self.case.id} [{self.case.level}]"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pluginconf", "pluginconf conformance suite")
    group.addoption(
        "--pluginconf-plugin-cmd",
        metavar="CMD",
        help="run the plugin conformance suite against CMD (shell words); "
        f"{REFERENCE_WORD!r} for the bundled reference plugin",
    )
    group.addoption(
        "--pluginconf-host-cmd",
        metavar="CMD",
        help="run the host conformance suite against the host adapter CMD (shell words); "
        f"{REFERENCE_WORD!r} for the bundled reference host's adapter",
    )
    group.addoption(
        "--pluginconf-profile",
        choices=[p.value for p in Profile],
        help="transport, hooks or sdk (default: sdk for the reference plugin, else hooks)",
    )
    group.addoption("--pluginconf-run", action="append", default=[], metavar="GLOB")
    group.addoption("--pluginconf-skip", action="append", default=[], metavar="GLOB")
    group.addoption("--pluginconf-known-failing", metavar="FILE")
    group.addoption(
        "--pluginconf-target",
        default=DEFAULT_TARGET,
        metavar="NAME",
        help="the application preset (pluginconf list targets); go-plugin targets let only "
        "go-plugin's rules fail cases, pluginconf's own become xfails",
    )
    group.addoption("--pluginconf-strict", action="store_true")
    group.addoption("--pluginconf-auto-mtls", choices=["always", "never", "auto"], default=None)
    group.addoption("--pluginconf-magic-cookie", default=None, metavar="KEY=VALUE")
    group.addoption("--pluginconf-protocol-versions", default=None, metavar="V[,V...]")
    group.addoption("--pluginconf-start-timeout", type=float, default=60.0, metavar="SECONDS")
    group.addoption(
        "--pluginconf-max-body",
        type=int,
        default=None,
        metavar="BYTES",
        help=f"largest body a case sends (default: {DEFAULT_MAX_BODY} for the plugin suite, "
        f"{DEFAULT_HOST_MAX_BODY} for the host suite)",
    )
    group.addoption(
        "--pluginconf-one-process-at-a-time",
        action="store_true",
        help="keep at most one process of the plugin at a time (for a plugin that serves a "
        "fixed address; pluginconf plugin finds this out itself)",
    )
    group.addoption(
        "--pluginconf-no-preflight",
        action="store_true",
        help="do not start the plugin once before collecting (pluginconf plugin does its own)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "pluginconf: a pluginconf conformance case")
    plugin_text = config.getoption("pluginconf_plugin_cmd")
    host_text = config.getoption("pluginconf_host_cmd")
    if plugin_text is None and host_text is None:
        return
    if plugin_text is not None and host_text is not None:
        raise pytest.UsageError(
            "give --pluginconf-plugin-cmd or --pluginconf-host-cmd, not both: one pytest run "
            "checks one target"
        )
    text = plugin_text if plugin_text is not None else host_text
    assert text is not None
    command = [] if text.strip() == REFERENCE_WORD else shlex.split(text)
    max_body = config.getoption("pluginconf_max_body")
    options: PluginSuiteOptions | HostSuiteOptions
    try:
        if host_text is not None:
            suite_name, profile = "host", HOST_PROFILE
            options = build_host_options(
                command,
                start_timeout=config.getoption("pluginconf_start_timeout"),
                max_body=DEFAULT_HOST_MAX_BODY if max_body is None else max_body,
                target=config.getoption("pluginconf_target"),
                strict=config.getoption("pluginconf_strict"),
                auto_mtls=config.getoption("pluginconf_auto_mtls"),
            )
        else:
            suite_name = "plugin"
            options = build_options(
                command,
                profile=config.getoption("pluginconf_profile"),
                magic_cookie=config.getoption("pluginconf_magic_cookie"),
                protocol_versions=config.getoption("pluginconf_protocol_versions"),
                start_timeout=config.getoption("pluginconf_start_timeout"),
                max_body=DEFAULT_MAX_BODY if max_body is None else max_body,
                target=config.getoption("pluginconf_target"),
                strict=config.getoption("pluginconf_strict"),
                auto_mtls=config.getoption("pluginconf_auto_mtls"),
            )
            if config.getoption("pluginconf_one_process_at_a_time"):
                options = replace(options, one_process_at_a_time=True)
            profile = options.effective_profile
        cases = load_cases(suite_name)
        selection = Selection(
            profile,
            tuple(config.getoption("pluginconf_run")),
            tuple(config.getoption("pluginconf_skip")),
        )
        chosen = selection.apply(cases)
        known = load_known_failing(
            config.getoption("pluginconf_known_failing"), [c.id for c in cases]
        )
    except (ValueError, SelectionError) as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_CONFIG] = SuiteConfig(
        options, chosen, known, not config.getoption("pluginconf_no_preflight")
    )
    config.stash[_RUNNER] = CaseRunner(options)


def pytest_sessionstart(session: pytest.Session) -> None:
    suite = session.config.stash.get(_CONFIG, None)
    if suite is None or not suite.preflight or hasattr(session.config, "workerinput"):
        return
    try:
        options = check_target(suite.options)
    except PreflightError as exc:
        raise pytest.UsageError(str(exc)) from None
    if isinstance(options, PluginSuiteOptions) and options.one_process_at_a_time:
        _one_process_only(session.config, suite.options)
    session.config.stash[_CONFIG] = replace(suite, options=options)
    session.config.stash[_RUNNER] = CaseRunner(options)


def _one_process_only(config: pytest.Config, asked: PluginSuiteOptions | HostSuiteOptions) -> None:
    """A plugin on a fixed address cannot run in several pytest processes at once."""
    workers = config.getoption("numprocesses", None)
    several = workers not in (None, 0, 1)
    told = isinstance(asked, PluginSuiteOptions) and asked.one_process_at_a_time
    if several or (workers == 1 and not told):
        raise pytest.UsageError(
            "the plugin serves one fixed address: two processes of it, started at once, "
            "announced the same address (or the second could not start while the first held "
            "it), so that each would answer the other's calls. Run with -n 0 (pluginconf "
            "plugin does so itself), or -n 1 with --pluginconf-one-process-at-a-time"
        )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    suite = config.stash.get(_CONFIG, None)
    if suite is None:
        return
    for case in suite.cases:
        known = suite.known.reason_for(case.id)
        item = CaseItem.from_parent(
            session, name=case.id, nodeid=NODE_PREFIX + case.id, case=case, known_failing=known
        )
        item.add_marker(pytest.mark.pluginconf)
        if known is not None:
            item.add_marker(pytest.mark.xfail(reason=f"known failing: {known}", strict=True))
        items.append(item)


def pytest_sessionfinish(session: pytest.Session) -> None:
    runner = session.config.stash.get(_RUNNER, None)
    if runner is not None:
        runner.close()


def result_of(report: pytest.TestReport) -> dict[str, Any] | None:
    """The case result a report carries, when it is one of ours."""
    for name, value in report.user_properties:
        if name == RESULT_PROPERTY:
            parsed: dict[str, Any] = json.loads(str(value))
            return parsed
    return None
