"""Launching: the handshakes the host refuses, and a plugin that exits before its handshake."""

from __future__ import annotations

from dataclasses import dataclass

from pluginconf.fake.scenario.spec import ScenarioSpec
from pluginconf.protocol.constants import CORE_PROTOCOL_VERSION
from pluginconf.runner import Profile, case, case_each, check, fail
from pluginconf.runner.host.fake_plugin import FakePlugin, describe_status
from pluginconf.runner.host.target import HostTarget

from .._helpers import crash_transition
from ._helpers import check_gone, names, quotes, started_event_env, without_line


@dataclass(frozen=True)
class Refusal:
    name: str
    kind: str
    # A handshake line the fake writes instead of its own; the error must quote it (HS-27).
    line: str = ""
    other: ScenarioSpec | None = None  # another scenario instead
    # The rule that makes the host refuse: HS-20 where go-plugin's client refuses too; the
    # pluginconf rules where it does not (it loses an unknown network's error, never checks
    # that the address answers or is loopback, and takes the first line as the handshake).
    refused_by: str = "HS-20"
    # What HS-22 has the error name, as go-plugin's client does: the field at fault as the
    # line has it (the whole line when it has fewer than four fields), and what the host
    # expects instead ("core", "app" or "protocol").
    named: str = ""
    expected: str = ""

    @property
    def scenario(self) -> ScenarioSpec:
        base: ScenarioSpec = {"spawn_grandchild": True}
        if self.line:
            base["handshake"] = {"line": self.line}
        elif self.other is not None:
            base.update(self.other)
        return base

    @property
    def killed_by(self) -> str:
        """The rule that has the host kill the refused process: HS-20 where go-plugin's
        client refuses (and kills) it too, HS-25 otherwise."""
        return "HS-20" if self.refused_by in ("HS-20", "HS-24") else "HS-25"

    def __str__(self) -> str:
        return self.name


REFUSALS = (
    Refusal(
        "core-version", "core_version_mismatch", "2|1|unix|/x|grpc", named="2", expected="core"
    ),
    Refusal("app-version", "app_version_mismatch", "1|7|unix|/x|grpc", named="7", expected="app"),
    Refusal("network", "unknown_network", "1|1|udp|/x|grpc", refused_by="HS-25"),
    Refusal(
        "protocol",
        "unsupported_protocol",
        "1|1|unix|/x|netrpc",
        named="netrpc",
        expected="protocol",
    ),
    Refusal("garbage", "handshake_malformed", "garbage|", named="garbage|"),
    Refusal("non-integer-version", "handshake_malformed", "1|x|unix|/x|grpc", named="x"),
    # A digit to str.isdigit(), not to int(): found by fuzzing the reference host's parser.
    Refusal("non-ascii-digit", "handshake_malformed", "\u00b2|1|unix|/x|grpc", named="\u00b2"),
    Refusal(
        "non-loopback-tcp", "handshake_malformed", "1|1|tcp|192.0.2.1:4000|grpc", refused_by="HS-21"
    ),
    Refusal("unreachable", "unreachable", "1|1|unix|/nonexistent/x.sock|grpc", refused_by="HS-25"),
    Refusal("stdout-closed", "handshake_eof", other={"handshake": {"close_stdout": True}}),
    Refusal(
        "too-much-noise",
        "too_much_noise",
        other={"noise_before_handshake": 65},
        refused_by="HS-24",
    ),
)


async def _expected_values(plugin: FakePlugin, refusal: Refusal) -> list[str]:
    """What the host expects instead of the refused field (HS-22)."""
    if refusal.expected == "core":
        return [str(CORE_PROTOCOL_VERSION)]
    if refusal.expected == "app":
        env = await started_event_env(plugin)
        return [v for v in env.get("PLUGIN_PROTOCOL_VERSIONS", "").split(",") if v]
    if refusal.expected == "protocol":
        return ["grpc"]
    return []


@case_each(
    "host/launch/refuses/{}",
    REFUSALS,
    requirements=["HS-20", "HS-21", "HS-22", "HS-24", "HS-25", "HS-27"],
    profile=Profile.HOOKS,
)
async def refuses(t: HostTarget, refusal: Refusal) -> None:
    """
    Purpose: A plugin whose handshake cannot be used ({value}) is refused, and its process
      group ends.
    Procedure: Load a fake plugin with that handshake, which has started a grandchild in its
      process group (restart limit 1, so the first failure is the last); wait for the host to
      give up on it.
    Asserts: The host refuses the plugin, with a `crashed` transition (HS-20, or HS-21, HS-24,
      HS-25 for the refusals go-plugin's client does not make); of the SPEC's error kind
      (HS-25); whose reason names what it refused, as go-plugin's client does: a line of
      fewer than four fields, the field at fault, and the versions or protocol the host
      expects (HS-22, for HS-20's refusals); and quotes the whole offending line (HS-27); the
      plugin process is gone (HS-20; HS-25 after the refusals go-plugin does not make), and
      so is the grandchild (HS-25). Every assertion is reported.
    """
    plugin = await t.load(refusal.scenario, wait_active=False, restart_limit=1)
    status = await plugin.wait_given_up(timeout_s=20.0)
    crashed = crash_transition(status)
    if crashed is None:
        fail(
            f"the host did not refuse a plugin whose handshake is unusable ({refusal.name}): it "
            f"reports no `crashed` transition\n{describe_status(status)}",
            requirement=refusal.refused_by,
        )
    # HS-21 names its own kind: a non-loopback address reported otherwise was not refused
    # for what it is (a host that tried to connect to it reports it unreachable).
    kind_rules = ["HS-21", "HS-25"] if refusal.refused_by == "HS-21" else ["HS-25"]
    check(
        crashed.error_kind == refusal.kind,
        f"the host reported the error kind {crashed.error_kind!r}; expected {refusal.kind!r} "
        f"({', '.join(kind_rules)})\n{describe_status(status)}",
        requirement=kind_rules,
    )
    told = f"{crashed.reason}\n{status.last_error}"
    if refusal.named:
        # The expected values are looked for in the refusal's own reason (the last error may
        # be the give-up's, "restart limit 1"), outside the quoted line, which may hold the
        # same digits in another field (the core version 1 as the APP of "2|1|...").
        apart = without_line(crashed.reason, refusal.line)
        missing = [refusal.named] if not names(told, refusal.named) else []
        missing += [v for v in await _expected_values(plugin, refusal) if not names(apart, v)]
        check(
            not missing,
            f"the error does not name {', '.join(map(repr, missing))}: refusing the handshake "
            f"line {refusal.line!r} it must name what it refused and what the host expects "
            f"instead, as go-plugin's client does (HS-22)\n{describe_status(status)}",
            requirement="HS-22",
        )
    if refusal.line:
        check(
            quotes(told, refusal.line),
            f"the error does not quote the whole handshake line {refusal.line!r} (HS-27)\n"
            f"{describe_status(status)}",
            requirement="HS-27",
        )
    await check_gone(t, plugin, refusal.killed_by, "the refused plugin")


@case(
    "host/launch/exited-before-handshake",
    requirements=["HS-20", "HS-25", "HS-26"],
    profile=Profile.HOOKS,
)
async def exited_before_handshake(t: HostTarget) -> None:
    """
    Purpose: A plugin that dies before its handshake is reported with how it died.
    Procedure: Load a fake plugin that writes 25 lines to stderr and exits with status 3
      before any handshake (restart limit 1).
    Asserts: A `crashed` transition (HS-20) of kind exited_before_handshake (HS-25) with exit
      status 3 whose stderr tail (or reason) holds at least the last 20 lines (HS-26).
    """
    lines = [f"fakeplugin: config problem {n} of 25" for n in range(1, 26)]
    plugin = await t.load(
        {"handshake": {"exit_before": 3, "stderr": "\n".join(lines)}},
        wait_active=False,
        restart_limit=1,
    )
    status = await plugin.wait_given_up(timeout_s=20.0)
    crashed = crash_transition(status)
    if crashed is None:
        fail(
            f"the host reports no `crashed` transition for a plugin that exited before its "
            f"handshake (HS-20)\n{describe_status(status)}",
            requirement="HS-20",
        )
    check(
        crashed.error_kind == "exited_before_handshake",
        f"the host reported the error kind {crashed.error_kind!r}; expected "
        f"'exited_before_handshake' (HS-25)\n{describe_status(status)}",
        requirement="HS-25",
    )
    check(
        crashed.has_exit_status and crashed.exit_status == 3,
        f"the transition carries exit status "
        f"{crashed.exit_status if crashed.has_exit_status else 'none'}; expected 3 (HS-26)",
        requirement="HS-26",
    )
    reported = f"{crashed.stderr_tail}\n{crashed.reason}".splitlines()
    missing = [line for line in lines[-20:] if line not in reported]
    check(
        not missing,
        f"{len(missing)} of the plugin's last 20 stderr lines are not in the error, e.g. "
        f"{missing[0] if missing else ''!r} (HS-26: at least the last 20 lines); stderr "
        f"tail reported: {crashed.stderr_tail!r}",
        requirement="HS-26",
    )
