"""Fuzz campaigns as a pytest plugin, so that pytest-xdist can spread one over workers.

Registered through the ``pytest11`` entry point and inert unless asked for:

    pytest --pluginconf-fuzz plugin                          # the bundled reference plugin
    pytest --pluginconf-fuzz plugin --pluginconf-fuzz-cmd "./my-plugin" -n 4 \
           --pluginconf-fuzz-shares 4 --pluginconf-fuzz-db .fuzz-db
    pytest --pluginconf-fuzz host --pluginconf-fuzz-examples 200

Each selected property becomes ``--pluginconf-fuzz-shares`` items, one per share of the
examples, each with a seed of its own (the run's seed plus the share's index); every item
uses the same example database. xdist spreads the items over its workers, on this machine or
others (``--tx``). Each pytest process runs its items on one event loop, with one target
(a plugin process, or a host adapter) kept up between examples.
``pluginconf fuzz`` is this plugin under a console of its own (command.py).
"""

from __future__ import annotations

import asyncio
import math
import shlex
from dataclasses import dataclass
from typing import Any

import pytest

from pluginconf.fuzz.campaign import CampaignSettings, check_reproduce_blob, run_property
from pluginconf.fuzz.context import FuzzContext
from pluginconf.fuzz.database import check_database
from pluginconf.fuzz.model import FuzzProperty, FuzzTarget
from pluginconf.fuzz.registry import PropertySelectionError, load_properties, select
from pluginconf.fuzz.shard import WHOLE, Shard, parse_shard
from pluginconf.runner.cli.sizes import size_argument
from pluginconf.runner.model import Profile
from pluginconf.runner.options import (
    HostSuiteOptions,
    PluginSuiteOptions,
    build_host_options,
    build_options,
)
from pluginconf.runner.pytest_plugin import REFERENCE_WORD
from pluginconf.runner.reports.result import attach
from pluginconf.runner.targets import DEFAULT_TARGET

NODE_PREFIX = "pluginconf-fuzz::"
# The user property carrying a share's result, as JSON, to the controller and reports.
RESULT_PROPERTY = "pluginconf-fuzz"
DEFAULT_FUZZ_MAX_BODY = 4 * 1024 * 1024 + 64 * 1024
# Without --examples: each property runs its share of this (FuzzProperty.scale).
DEFAULT_EXAMPLES = 100


@dataclass(frozen=True)
class FuzzConfig:
    target: FuzzTarget
    options: PluginSuiteOptions | HostSuiteOptions
    properties: list[FuzzProperty]
    campaign: CampaignSettings
    shares: int
    # This machine's slice of the campaign (--shard): its shares are numbered after the
    # other machines', so that each draws seeds of its own.
    shard: Shard = WHOLE


_CONFIG = pytest.StashKey[FuzzConfig]()
_TARGET = pytest.StashKey["TargetHolder"]()


class TargetHolder:
    """One event loop and one target context per pytest process, made on first use."""

    def __init__(self, config: FuzzConfig) -> None:
        self._config = config
        self._loop: asyncio.Runner | None = None
        self._context: Any = None

    def context(self) -> FuzzContext:
        if self._context is None:
            self._loop = asyncio.Runner()
            options = self._config.options
            if isinstance(options, HostSuiteOptions):
                from pluginconf.fuzz.host.context import HostFuzzContext

                self._context = HostFuzzContext(self._loop, options)
            else:
                from pluginconf.fuzz.plugin.context import PluginFuzzContext

                self._context = PluginFuzzContext(self._loop, options)
        context: FuzzContext = self._context
        return context

    def close(self) -> None:
        if self._loop is not None:
            try:
                self._loop.run(self._context.aclose())
            finally:
                self._loop.close()
                self._loop = None
                self._context = None


class PropertyFailure(Exception):
    """The property failed; the message is the shrunk example and its evidence."""


class FuzzItem(pytest.Item):
    def __init__(self, *, prop: FuzzProperty, share: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prop = prop
        self.share = share

    def runtest(self) -> None:
        fuzz = self.config.stash[_CONFIG]
        base = fuzz.campaign
        share = fuzz.shard.first_share(fuzz.shares) + self.share
        seed = None if base.seed is None else base.seed + share
        examples = math.ceil(base.examples / fuzz.shard.total_shares(fuzz.shares))
        settings = CampaignSettings(
            examples, seed, base.database, base.reproduce, base.shrink, base.exact
        )
        result = run_property(self.prop, self.config.stash[_TARGET].context(), settings)
        attach(self, RESULT_PROPERTY, result)
        if result.failed:
            text = result.message
            if result.example:
                text += "\n\n" + result.example
            raise PropertyFailure(text)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, PropertyFailure):
            return f"{self.prop.full_id} [{' '.join(self.prop.requirements)}]\n{excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, self.name


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pluginconf-fuzz", "pluginconf fuzzing")
    add = group.addoption
    add("--pluginconf-fuzz", choices=["plugin", "host"], help="fuzz a plugin or a host")
    add(
        "--pluginconf-fuzz-cmd",
        default=REFERENCE_WORD,
        metavar="CMD",
        help=f"the plugin or host adapter (shell words); {REFERENCE_WORD!r} (default) for "
        "the bundled one",
    )
    add("--pluginconf-fuzz-examples", type=int, default=None, metavar="N")
    add("--pluginconf-fuzz-seed", type=int, default=None, metavar="N")
    add("--pluginconf-fuzz-db", default=None, metavar="DIR")
    add("--pluginconf-fuzz-shares", type=int, default=1, metavar="N")
    add("--pluginconf-fuzz-shard", default=None, metavar="I/N")
    add("--pluginconf-fuzz-property", action="append", default=[], metavar="GLOB")
    add("--pluginconf-fuzz-reproduce", default=None, metavar="BLOB")
    add("--pluginconf-fuzz-profile", choices=[p.value for p in Profile], default=None)
    add(
        "--pluginconf-fuzz-max-body",
        type=size_argument,
        default=DEFAULT_FUZZ_MAX_BODY,
        metavar="SIZE",
    )
    add("--pluginconf-fuzz-start-timeout", type=float, default=60.0, metavar="SECONDS")
    add("--pluginconf-fuzz-no-shrink", action="store_true")
    add("--pluginconf-fuzz-target", default=DEFAULT_TARGET, metavar="NAME")
    add("--pluginconf-fuzz-magic-cookie", default=None, metavar="KEY=VALUE")
    add("--pluginconf-fuzz-protocol-versions", default=None, metavar="V[,V...]")


def build_fuzz_config(
    target_name: str,
    command: list[str],
    *,
    examples: int | None,
    seed: int | None,
    database: str | None,
    shares: int,
    patterns: list[str],
    reproduce: str | None,
    profile: str | None,
    max_body: int,
    start_timeout: float,
    shrink: bool = True,
    app_target: str = DEFAULT_TARGET,
    magic_cookie: str | None = None,
    protocol_versions: str | None = None,
    shard: str | None = None,
) -> FuzzConfig:
    """Check a run's settings; ValueError (with what to do) when they do not hold."""
    if examples is not None and examples < 1:
        raise ValueError(f"--examples {examples}: give at least 1")
    if shares < 1:
        raise ValueError(f"-n {shares}: give at least 1 worker")
    if max_body < 0:
        raise ValueError(f"--max-body {max_body}: give a size in bytes, 0 or more")
    slice_ = _check_shard(shard, seed, reproduce)
    check_database(database)
    target = FuzzTarget(target_name)
    options: PluginSuiteOptions | HostSuiteOptions
    if target is FuzzTarget.HOST:
        options = build_host_options(command, start_timeout=start_timeout, max_body=max_body)
        chosen_profile = Profile.HOOKS
    else:
        # The target's host: its cookie, versions and environment (what --magic-cookie and
        # --protocol-versions do not override).
        options = build_options(
            command,
            profile=profile,
            magic_cookie=magic_cookie,
            protocol_versions=protocol_versions,
            start_timeout=start_timeout,
            max_body=max_body,
            target=app_target,
        )
        chosen_profile = options.effective_profile
    try:
        properties = select(load_properties(target), chosen_profile, patterns)
    except PropertySelectionError as exc:
        raise ValueError(str(exc)) from None
    if not properties:
        raise ValueError(f"no {target} property applies to the {chosen_profile} profile")
    if reproduce and len(properties) != 1:
        raise ValueError("--reproduce replays one property's example: select it with --property ID")
    if reproduce:
        check_reproduce_blob(reproduce)
    campaign = CampaignSettings(
        DEFAULT_EXAMPLES if examples is None else examples,
        seed,
        database,
        reproduce,
        shrink,
        exact=examples is not None,
    )
    return FuzzConfig(target, options, properties, campaign, 1 if reproduce else shares, slice_)


def _check_shard(text: str | None, seed: int | None, reproduce: str | None) -> Shard:
    if text is None:
        return WHOLE
    shard = parse_shard(text)
    if reproduce:
        raise ValueError(f"--shard {text}: --reproduce replays one example; leave --shard out")
    if seed is None and shard.count > 1:
        raise ValueError(
            f"--shard {text}: give every shard the same --seed, so that the shards draw "
            "distinct seeds of one campaign"
        )
    return shard


def pytest_configure(config: pytest.Config) -> None:
    target_name = config.getoption("pluginconf_fuzz")
    if target_name is None:
        return
    text: str = config.getoption("pluginconf_fuzz_cmd")
    command = [] if text.strip() == REFERENCE_WORD else shlex.split(text)
    try:
        fuzz = build_fuzz_config(
            target_name,
            command,
            examples=config.getoption("pluginconf_fuzz_examples"),
            seed=config.getoption("pluginconf_fuzz_seed"),
            database=config.getoption("pluginconf_fuzz_db"),
            shares=config.getoption("pluginconf_fuzz_shares"),
            patterns=config.getoption("pluginconf_fuzz_property"),
            reproduce=config.getoption("pluginconf_fuzz_reproduce"),
            profile=config.getoption("pluginconf_fuzz_profile"),
            max_body=config.getoption("pluginconf_fuzz_max_body"),
            start_timeout=config.getoption("pluginconf_fuzz_start_timeout"),
            shrink=not config.getoption("pluginconf_fuzz_no_shrink"),
            app_target=config.getoption("pluginconf_fuzz_target"),
            magic_cookie=config.getoption("pluginconf_fuzz_magic_cookie"),
            protocol_versions=config.getoption("pluginconf_fuzz_protocol_versions"),
            shard=config.getoption("pluginconf_fuzz_shard"),
        )
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_CONFIG] = fuzz
    config.stash[_TARGET] = TargetHolder(fuzz)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    fuzz = config.stash.get(_CONFIG, None)
    if fuzz is None:
        return
    for prop in fuzz.properties:
        for share in range(fuzz.shares):
            name = prop.full_id if fuzz.shares == 1 else f"{prop.full_id}[share{share}]"
            item = FuzzItem.from_parent(
                session, name=name, nodeid=NODE_PREFIX + name, prop=prop, share=share
            )
            items.append(item)


def pytest_sessionfinish(session: pytest.Session) -> None:
    holder = session.config.stash.get(_TARGET, None)
    if holder is not None:
        holder.close()
