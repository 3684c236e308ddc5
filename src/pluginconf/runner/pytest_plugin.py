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

import argparse
import asyncio
import shlex
from dataclasses import dataclass, replace
from typing import Any

import pytest

from pluginconf.runner.cli.arguments import DEFAULT_HOST_MAX_BODY, DEFAULT_MAX_BODY
from pluginconf.runner.cli.known_failing import KnownFailing, load_known_failing
from pluginconf.runner.cli.preflight import PreflightError, check_target
from pluginconf.runner.cli.shard import parse_shard, take_shard
from pluginconf.runner.cli.sizes import size_argument
from pluginconf.runner.engine import SuiteSession
from pluginconf.runner.host.session import HostSuiteSession
from pluginconf.runner.interrupt import run_interruptibly
from pluginconf.runner.model import Case, Level, Outcome, Profile
from pluginconf.runner.options import (
    HostSuiteOptions,
    PluginSuiteOptions,
    build_host_options,
    build_options,
)
from pluginconf.runner.registry import Selection, SelectionError, load_cases
from pluginconf.runner.reports.pytest_junit import JunitNaming
from pluginconf.runner.reports.result import Result, attach
from pluginconf.runner.targets import DEFAULT_TARGET
from pluginconf.runner.verdict import judge_result

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


class CaseRunner:
    """One event loop and one suite session per pytest process, made on first use."""

    def __init__(self, options: PluginSuiteOptions | HostSuiteOptions) -> None:
        self._options = options
        self._loop: asyncio.Runner | None = None
        self._session: SuiteSession | HostSuiteSession | None = None

    def run(self, case: Case) -> Result:
        if self._loop is None:
            self._loop = asyncio.Runner()
            if isinstance(self._options, HostSuiteOptions):
                self._session = HostSuiteSession(self._options)
            else:
                self._session = SuiteSession(self._options)
        assert self._session is not None
        return run_interruptibly(self._loop, self._session.run(case))

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
        judged = judge_result(self.case, result, suite.options.judging)
        # Properties of the JUnit testcase (pytest --junitxml), as pluginconf --junit-xml has.
        self.user_properties.extend(("requirement", rid) for rid in self.case.requirements)
        self.user_properties += [("level", str(self.case.level)), ("origin", judged.origin)]
        attach(self, RESULT_PROPERTY, judged)
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
        type=size_argument,
        default=None,
        metavar="SIZE",
        help="largest body a case sends, in bytes or with a unit (64MiB) (default: "
        f"{DEFAULT_MAX_BODY} for the plugin suite, {DEFAULT_HOST_MAX_BODY} for the host suite)",
    )
    group.addoption(
        "--pluginconf-one-process-at-a-time",
        action="store_true",
        help="keep at most one process of the plugin at a time (for a plugin that serves a "
        "fixed address; pluginconf plugin finds this out itself)",
    )
    # Sharding across CI machines (shard.py).
    group.addoption(
        "--pluginconf-shard",
        default=None,
        metavar="I/N",
        help="run only the I-th of N deterministic slices of the selected cases",
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
        shard_text = config.getoption("pluginconf_shard")
        if shard_text is not None and chosen:
            chosen = take_shard(chosen, parse_shard(shard_text))
        known = load_known_failing(
            config.getoption("pluginconf_known_failing"), [c.id for c in cases]
        )
    except (ValueError, SelectionError, argparse.ArgumentTypeError) as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_CONFIG] = SuiteConfig(
        options, chosen, known, not config.getoption("pluginconf_no_preflight")
    )
    config.stash[_RUNNER] = CaseRunner(options)
    config.pluginmanager.register(JunitNaming(config, suite_name, NODE_PREFIX), "pluginconf-junit")


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


class SuiteCollector(pytest.Collector):
    """The selected cases, as the collector ``pluginconf`` (node ids ``pluginconf::<case id>``)."""

    def collect(self) -> list[pytest.Item]:
        suite = self.config.stash[_CONFIG]
        items: list[pytest.Item] = []
        for case in suite.cases:
            known = suite.known.reason_for(case.id)
            item = CaseItem.from_parent(self, name=case.id, case=case, known_failing=known)
            item.add_marker(pytest.mark.pluginconf)
            if known is not None:
                item.add_marker(pytest.mark.xfail(reason=f"known failing: {known}", strict=True))
            items.append(item)
        return items


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if config.stash.get(_CONFIG, None) is None:
        return
    # Collected through the hooks, as a file's tests are: pytest's header and -k then count
    # the cases among the collected items ("collected 45 items / 43 deselected / 2 selected").
    name = NODE_PREFIX.rstrip(":")
    collector = SuiteCollector.from_parent(session, name=name, nodeid=name)
    report = config.hook.pytest_make_collect_report(collector=collector)
    config.hook.pytest_collectreport(report=report)
    items.extend(x for x in report.result if isinstance(x, pytest.Item))


def pytest_sessionfinish(session: pytest.Session) -> None:
    runner = session.config.stash.get(_RUNNER, None)
    if runner is not None:
        runner.close()
