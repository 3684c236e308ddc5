"""What the plugin suite runs against, and how: the target command and its handshake."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pluginconf.host.launcher import LaunchSpec
from pluginconf.protocol.constants import DEFAULT_MAGIC_COOKIE, ENV_UNIX_SOCKET_DIR, MagicCookie
from pluginconf.protocol.handshake import PROTOCOL_GRPC
from pluginconf.runner.cli.arguments import DEFAULT_HOST_MAX_BODY, DEFAULT_MAX_BODY
from pluginconf.runner.model import Profile
from pluginconf.runner.targets import DEFAULT_TARGET, AutoMTLS, Target, target_named
from pluginconf.runner.verdict import Judging

# How reports name the bundled reference plugin.
REFERENCE_COMMAND = ("pluginconf", "reference-plugin")
# The suite reads messages up to this size, so that a plugin sending one over gRPC's 4 MiB
# limit is caught with its size (TR-11) instead of failing with RESOURCE_EXHAUSTED.
SUITE_MAX_RECEIVE = 64 * 1024 * 1024
SUITE_CHANNEL_OPTIONS: tuple[tuple[str, int | str], ...] = (
    ("grpc.max_receive_message_length", SUITE_MAX_RECEIVE),
    # Status details may quote a large request (a 4 MiB unknown service name, say).
    ("grpc.max_metadata_size", SUITE_MAX_RECEIVE),
    ("grpc.absolute_max_metadata_size", SUITE_MAX_RECEIVE),
)


@dataclass(frozen=True)
class PluginSuiteOptions:
    command: tuple[str, ...] = ()  # empty: the bundled reference plugin
    profile: Profile | None = None  # None: sdk for the reference plugin, hooks otherwise
    magic_cookie: MagicCookie = DEFAULT_MAGIC_COOKIE
    protocol_versions: tuple[int, ...] = (1,)
    start_timeout_s: float = 60.0
    max_body: int = DEFAULT_MAX_BODY
    # Extra environment for every launch (tests use it; a None value removes a variable).
    env: Mapping[str, str | None] = field(default_factory=dict)
    # The application whose host the suite plays, and how strictly its rules count.
    target: Target = field(default_factory=lambda: target_named(DEFAULT_TARGET))
    strict: bool = False
    auto_mtls: AutoMTLS = AutoMTLS.AUTO
    # The plugin serves one fixed address, so that two of its processes would answer each
    # other's calls: the suite runs one process of it at a time (preflight.py finds this).
    one_process_at_a_time: bool = False

    @property
    def is_reference(self) -> bool:
        return not self.command

    @property
    def effective_profile(self) -> Profile:
        if self.profile is not None:
            return self.profile
        if self.is_reference:
            return Profile.SDK
        return self.target.profile

    @property
    def judging(self) -> Judging:
        return Judging(self.target.decisive, self.strict)

    @property
    def argv(self) -> tuple[str, ...]:
        if self.command:
            return self.command
        return (sys.executable, "-m", "pluginconf", "reference-plugin")

    @property
    def report_target(self) -> list[str]:
        return list(self.command or REFERENCE_COMMAND)

    @property
    def speaks_grpc(self) -> bool:
        """Whether the suite can call the plugin: netrpc plugins (Mattermost's) it only
        starts, signals and watches."""
        return self.target.protocol == PROTOCOL_GRPC

    @property
    def always_auto_mtls(self) -> bool:
        return self.auto_mtls is AutoMTLS.ALWAYS

    def launch_spec(self, tmpdir: str | None = None, **changes: Any) -> LaunchSpec:
        """The LaunchSpec the target's host would use, with ``changes`` applied.

        The target's own environment (Vault's AutoMTLS switch, say) comes first, then the
        options' and the changes'; pytest's variables are removed, and so is
        PLUGIN_UNIX_SOCKET_DIR when the target's host does not set it. Under ``--auto-mtls
        always`` every launch sets PLUGIN_CLIENT_CERT unless a change says otherwise.
        ``tmpdir`` becomes the plugin's TMPDIR: the suite removes it after the process, and
        with it whatever the plugin left in its temporary directory.
        """
        # No host passes a test runner's variables on; some plugins change behaviour on them.
        env: dict[str, str | None] = {
            name: None for name in os.environ if name.startswith("PYTEST_")
        }
        if not self.target.sets_unix_socket_dir:
            env[ENV_UNIX_SOCKET_DIR] = None
        env.update(self.target.env)
        env.update(self.env)
        if tmpdir is not None:
            env["TMPDIR"] = tmpdir
        env.update(changes.pop("env", {}))
        spec = LaunchSpec(
            argv=self.argv,
            plugin_id="target",
            magic_cookie=self.magic_cookie,
            protocol_versions=self.protocol_versions,
            start_timeout_s=self.start_timeout_s,
            auto_mtls=self.always_auto_mtls,
            env=env,
            stderr_tail_lines=200,
            protocol=self.target.protocol,
        )
        return replace(spec, **changes)


# How reports name the bundled reference host's adapter.
REFERENCE_ADAPTER_COMMAND = ("pluginconf", "reference-host-adapter")


@dataclass(frozen=True)
class HostSuiteOptions:
    command: tuple[str, ...] = ()  # empty: the bundled reference host's adapter
    # How long the adapter has to serve HostControl, and the plugins' start timeout.
    start_timeout_s: float = 60.0
    max_body: int = DEFAULT_HOST_MAX_BODY
    # Extra environment for the adapter (tests use it; a None value removes a variable).
    env: Mapping[str, str | None] = field(default_factory=dict)
    # Which rules decide the run: a go-plugin target judges a host built on go-plugin's
    # client by go-plugin's rules. The host suite's cookie and versions stay pluginconf's.
    target: Target = field(default_factory=lambda: target_named(DEFAULT_TARGET))
    strict: bool = False
    auto_mtls: AutoMTLS = AutoMTLS.AUTO

    @property
    def judging(self) -> Judging:
        return Judging(self.target.decisive, self.strict)

    @property
    def is_reference(self) -> bool:
        return not self.command

    @property
    def argv(self) -> tuple[str, ...]:
        if self.command:
            return self.command
        return (sys.executable, "-m", "pluginconf", "reference-host-adapter")

    @property
    def report_target(self) -> list[str]:
        return list(self.command or REFERENCE_ADAPTER_COMMAND)


def _check_limits(start_timeout: float, max_body: int) -> None:
    if start_timeout <= 0:
        raise ValueError(f"--start-timeout {start_timeout:g} must be more than 0 seconds")
    if max_body < 0:
        raise ValueError(f"--max-body {max_body} must be 0 or more bytes")


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
    _check_limits(start_timeout, max_body)
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
    _check_limits(start_timeout, max_body)
    preset = target_named(target)
    return HostSuiteOptions(
        command=tuple(command),
        start_timeout_s=start_timeout,
        max_body=max_body,
        target=preset,
        strict=strict,
        auto_mtls=AutoMTLS(auto_mtls) if auto_mtls is not None else AutoMTLS.AUTO,
    )
