"""Launching: the environment the host sets, the handshakes it refuses, and its start timeout.

The environment cases read what each fake reported at its start (its ``started`` event), and
name each variable the host got wrong, with its value and the rule it breaks. The decoys that
only a pluginconf host must scrub (PLUGIN_UNIX_SOCKET_DIR, PLUGIN_CLIENT_CERT,
PLUGIN_MULTIPLEX_GRPC) are inherited only by the hosts of the cases that check them: a host
that passes its environment through, as go-plugin's client does, fails those cases and no
other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psutil
from cryptography import x509

from pluginconf.control import control_pb2
from pluginconf.runner import Profile, case, case_each, check, expect, fail, skip
from pluginconf.runner.fake_start import (
    CLIENT_CERT,
    MULTIPLEX,
    SOCKET_DIR,
    EnvFinding,
    certificate_findings,
    handshake_findings,
    multiplex_findings,
    socket_dir_findings,
    started_env,
)
from pluginconf.runner.host_target import FakePlugin, HostTarget, describe_status
from pluginconf.runner.model import CaseFailed
from pluginconf.runner.timing import Yardstick, judge_time

from ._helpers import command_answer, crash_transition, kill_left


async def started_event_env(plugin: FakePlugin) -> dict[str, str]:
    event = await plugin.wait_event("started", why="the plugin process should have started")
    return started_env(event)


def check_findings(findings: list[EnvFinding], plugin: FakePlugin) -> None:
    """Each wrong variable is its own failure, naming the rule it breaks."""
    for finding in findings:
        check(
            False,
            f"plugin {plugin.plugin_id!r}, at its start: {finding.describe()}",
            requirement=finding.requirement,
        )


@case(
    "host/launch/environment",
    requirements=["HS-1", "HS-2", "HS-3", "HS-6"],
    profile=Profile.HOOKS,
)
async def environment(t: HostTarget) -> None:
    """
    Purpose: A plugin learns the cookie, the versions and the port range from its environment.
    Procedure: The adapter runs with wrong values of these variables in its own environment
      (as a host may inherit them); load a fake plugin and read the environment it reported
      at its start.
    Asserts: The cookie is PLUGINCONF_MAGIC_COOKIE=pluginconf (HS-1); PLUGIN_PROTOCOL_VERSIONS
      is a comma list of decimal integers including 1 (HS-2); PLUGIN_MIN_PORT and
      PLUGIN_MAX_PORT are ports with min <= max (HS-3); none of them is the inherited value
      (HS-6). Each wrong variable is reported with its value.
    """
    plugin = await t.load(wait_active=False)
    env = await started_event_env(plugin)
    check_findings(handshake_findings(env, t.adapter.inherited), plugin)


@case("host/launch/socket-dir", requirements=["HS-4"], profile=Profile.HOOKS)
async def socket_dir(t: HostTarget) -> None:
    """
    Purpose: Each plugin process gets a private directory for its socket.
    Procedure: Start a host of the case's own whose environment holds a decoy
      PLUGIN_UNIX_SOCKET_DIR; load two fake plugins; each reports PLUGIN_UNIX_SOCKET_DIR, and
      what that directory is, at its start.
    Asserts: Each is an absolute path, not the inherited one, to an existing directory of mode
      0700 owned by the host's user, and the two differ.
    """
    host = await t.with_scrubbed_decoys(SOCKET_DIR)
    first, second = (
        await host.load(name="a", wait_active=False),
        await host.load(name="b", wait_active=False),
    )
    dirs = []
    for plugin in (first, second):
        started = await plugin.wait_event("started", why="the plugin process should have started")
        env = started_env(started)
        findings = socket_dir_findings(env, host.adapter.inherited)
        check_findings(findings, plugin)
        if findings:
            continue
        path = env[SOCKET_DIR]
        seen: dict[str, Any] = started.get("socket_dir") or {}
        where = f"{SOCKET_DIR}={path!r} of plugin {plugin.plugin_id!r}, at the plugin's start"
        if not seen.get("exists"):
            check(False, f"{where}, cannot be read: {seen.get('error')} (HS-4)", requirement="HS-4")
            continue
        check(seen.get("is_dir"), f"{where}, is not a directory (HS-4)", requirement="HS-4")
        mode = int(seen.get("mode", 0))
        check(
            mode == 0o700,
            f"{where}, has mode {mode:04o}, expected 0700 (HS-4)",
            requirement="HS-4",
        )
        if host.host_pid:
            owner = psutil.Process(host.host_pid).uids().effective
            check(
                seen.get("uid") == owner,
                f"{where}, is owned by uid {seen.get('uid')}, not the host's {owner} (HS-4)",
                requirement="HS-4",
            )
        dirs.append(path)
    if len(dirs) == 2:
        check(
            dirs[0] != dirs[1],
            f"two plugin processes were given the same directory {dirs[0]!r} (HS-4)",
            requirement="HS-4",
        )


@case(
    "host/launch/no-inherited-secrets",
    requirements=["HS-23", "HS-7"],
    profile=Profile.HOOKS,
)
async def no_inherited_secrets(t: HostTarget) -> None:
    """
    Purpose: Without AutoMTLS the plugin sees no client certificate, and never multiplexing.
    Procedure: Start a host of the case's own whose environment holds PLUGIN_CLIENT_CERT and
      PLUGIN_MULTIPLEX_GRPC; load a fake plugin without AutoMTLS and
      read the environment it reported at its start.
    Asserts: PLUGIN_CLIENT_CERT is not in the plugin's environment (HS-23; not checked under
      --auto-mtls always), nor PLUGIN_MULTIPLEX_GRPC (HS-7).
    """
    host = await t.with_scrubbed_decoys(CLIENT_CERT, MULTIPLEX)
    plugin = await host.load(wait_active=False)
    env = await started_event_env(plugin)
    check_findings(multiplex_findings(env, host.adapter.inherited), plugin)
    if plugin.auto_mtls:
        skip(
            "--auto-mtls always: every plugin is started with AutoMTLS, so HS-23 (no "
            "certificate without it) does not apply; PLUGIN_MULTIPLEX_GRPC was checked (HS-7)"
        )
    check_findings(certificate_findings(env, host.adapter.inherited, False), plugin)


@case("host/launch/process-group", requirements=["HS-8"], profile=Profile.HOOKS)
async def process_group(t: HostTarget) -> None:
    """
    Purpose: The host can signal the whole plugin, and the plugin cannot read the host's input.
    Procedure: Load a fake plugin; it reports its process group and what its stdio are.
    Asserts: Its process group id is its pid; stdin is /dev/null; stdout and stderr are pipes.
    """
    plugin = await t.load(wait_active=False)
    started = await plugin.wait_event("started")
    check(
        started.get("pgid") == started.pid,
        f"the plugin's process group is {started.get('pgid')}, not its own pid {started.pid} "
        "(HS-8: the plugin leads a new process group)",
        requirement="HS-8",
    )
    stdio: dict[str, str] = started.get("stdio", {})
    stdin = stdio.get("0", "")
    check(
        stdin == "/dev/null",
        f"the plugin's stdin is {stdin!r}, not /dev/null (HS-8)",
        requirement="HS-8",
    )
    for fd, name in (("1", "stdout"), ("2", "stderr")):
        check(
            stdio.get(fd, "").startswith("pipe:"),
            f"the plugin's {name} is {stdio.get(fd)!r}, not a pipe the host reads (HS-8)",
            requirement="HS-8",
        )


@dataclass(frozen=True)
class Refusal:
    name: str
    kind: str
    # A handshake line the fake writes instead of its own; the error must quote it (HS-22).
    line: str = ""
    other: tuple[tuple[str, Any], ...] = ()  # another scenario instead
    # The rule that makes the host refuse: HS-20 where go-plugin's client refuses too; the
    # pluginconf rules where it does not (it loses an unknown network's error, never checks
    # that the address answers or is loopback, and takes the first line as the handshake).
    refused_by: str = "HS-20"

    @property
    def scenario(self) -> dict[str, Any]:
        base: dict[str, Any] = {"spawn_grandchild": True}
        base.update({"handshake": {"line": self.line}} if self.line else dict(self.other))
        return base

    @property
    def killed_by(self) -> str:
        """The rule that has the host kill the refused process: HS-20 where go-plugin's
        client refuses (and kills) it too, HS-25 otherwise."""
        return "HS-20" if self.refused_by in ("HS-20", "HS-24") else "HS-25"

    def __str__(self) -> str:
        return self.name


REFUSALS = (
    Refusal("core-version", "core_version_mismatch", "2|1|unix|/x|grpc"),
    Refusal("app-version", "app_version_mismatch", "1|7|unix|/x|grpc"),
    Refusal("network", "unknown_network", "1|1|udp|/x|grpc", refused_by="HS-25"),
    Refusal("protocol", "unsupported_protocol", "1|1|unix|/x|netrpc"),
    Refusal("garbage", "handshake_malformed", "garbage|"),
    Refusal("non-integer-version", "handshake_malformed", "1|x|unix|/x|grpc"),
    # A digit to str.isdigit(), not to int(): found by fuzzing the reference host's parser.
    Refusal("non-ascii-digit", "handshake_malformed", "\u00b2|1|unix|/x|grpc"),
    Refusal(
        "non-loopback-tcp", "handshake_malformed", "1|1|tcp|192.0.2.1:4000|grpc", refused_by="HS-21"
    ),
    Refusal("unreachable", "unreachable", "1|1|unix|/nonexistent/x.sock|grpc", refused_by="HS-25"),
    Refusal("stdout-closed", "handshake_eof", other=(("handshake", {"close_stdout": True}),)),
    Refusal(
        "too-much-noise",
        "too_much_noise",
        other=(("noise_before_handshake", 65),),
        refused_by="HS-24",
    ),
)


async def check_gone(
    t: HostTarget, plugin: FakePlugin, killed_by: str, what: str, wait_s: float = 5.0
) -> None:
    """The plugin's processes, and the other members of their process groups, are gone
    ``wait_s`` after the host gave up: the process under ``killed_by``, the others under
    HS-25 (the host terminates the whole group). What is left is killed."""
    processes = plugin.pids()
    left = await t.wait_gone(processes, timeout_s=wait_s, members=t.group_member_pids())
    running = [p for p in left if p in processes]
    check(
        not running,
        f"{what}: its process {running} still runs {wait_s:g} s after the host gave up on it; "
        f"the host must kill it ({killed_by})\n{plugin.evidence()}",
        requirement=killed_by,
    )
    others = [p for p in left if p not in processes]
    check(
        not others,
        f"{what}: processes {others} of its process group still run {wait_s:g} s after the "
        f"host gave up on it; the host must terminate the plugin's process group (HS-25)",
        requirement="HS-25",
    )
    kill_left(left)


@case_each(
    "host/launch/refuses/{}",
    REFUSALS,
    requirements=["HS-20", "HS-21", "HS-22", "HS-24", "HS-25"],
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
      (HS-25); whose reason quotes the offending line (HS-22); the plugin process is gone
      (HS-20; HS-25 after the refusals go-plugin does not make), and so is the grandchild
      (HS-25). Every assertion is reported.
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
    check(
        crashed.error_kind == refusal.kind,
        f"the host reported the error kind {crashed.error_kind!r}; expected {refusal.kind!r} "
        f"(HS-25)\n{describe_status(status)}",
        requirement="HS-25",
    )
    if refusal.line:
        check(
            refusal.line in crashed.reason or refusal.line in status.last_error,
            f"the error does not quote the handshake line {refusal.line!r} (HS-22)\n"
            f"{describe_status(status)}",
            requirement="HS-22",
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


START_TIMEOUT_S = 1.5
# How soon after its start timeout a host gives up, on an unloaded machine: the SPEC says
# only that it rejects the plugin when the timeout expires.
GIVE_UP_WITHIN_S = 1.0


async def _time_out_one(t: HostTarget) -> tuple[FakePlugin, control_pb2.PluginStatus, float]:
    """A fake that never handshakes, with the short start timeout: the plugin, the host's
    status once it gave up, and when it was asked to enable it (wall clock)."""
    plugin = await t.load(
        {"never_handshake": True, "spawn_grandchild": True},
        enable=False,
        restart_limit=1,
        start_timeout_s=START_TIMEOUT_S,
    )
    enabled_at = time.time()  # the host starts the process after this
    await plugin.enable()
    guard = 20.0
    status = await plugin.watch_until(
        lambda s: any(tr.new_state in ("crashed", "failed") for tr in s.transitions), guard
    )
    if status is None:
        fail(
            f"{guard:g}s after it was asked to start a plugin that never handshakes, with a start "
            f"timeout of {START_TIMEOUT_S:g}s, the host had not given up on it (HS-18, HS-20)"
            f"\n{describe_status(await plugin.status())}\n{plugin.evidence()}",
            requirement=["HS-18", "HS-20"],
        )
    return plugin, status, enabled_at


@case("host/launch/start-timeout", requirements=["HS-18", "HS-20", "HS-25"], profile=Profile.HOOKS)
async def start_timeout(t: HostTarget) -> None:
    """
    Purpose: A plugin that never writes its handshake does not hang its host.
    Procedure: Load a fake plugin that never handshakes (it has started a grandchild in its
      process group), with a start timeout of 1.5 s; time the host's `crashed` transition
      from the moment it was asked to enable the plugin. A late one is timed again, on a new
      fake, against the same-run yardstick of a process start.
    Asserts: The host reports a `crashed` transition (HS-20) of kind start_timeout (HS-25),
      not before 1.5 s (HS-18) and within 1 s of it (HS-18, HS-20, judged against the
      yardstick); the process is gone (HS-20) and so is the grandchild (HS-25).
    """
    plugin, status, enabled_at = await _time_out_one(t)
    crashed = crash_transition(status)
    if crashed is None:
        fail(
            f"the host reports no `crashed` transition\n{describe_status(status)}",
            requirement="HS-20",
        )
    check(
        crashed.error_kind == "start_timeout",
        f"the host reported the error kind {crashed.error_kind!r}; expected 'start_timeout' "
        f"(HS-25)\n{describe_status(status)}",
        requirement="HS-25",
    )
    waited = crashed.wall_time - enabled_at
    check(
        waited >= START_TIMEOUT_S - 0.1,
        f"the host gave up {waited:.2f} s after it was asked to start the plugin, before its "
        f"start timeout of {START_TIMEOUT_S:g} s (HS-18)\n{describe_status(status)}",
        requirement="HS-18",
    )
    await check_gone(t, plugin, "HS-20", "the timed-out plugin")

    async def again() -> float | None:
        _, later, asked = await _time_out_one(t)
        transition = crash_transition(later)
        return None if transition is None else transition.wall_time - asked - START_TIMEOUT_S

    verdict = await judge_time(
        GIVE_UP_WITHIN_S,
        again,
        Yardstick.START,
        f"the host giving up after the start timeout of {START_TIMEOUT_S:g} s",
        seen=[waited - START_TIMEOUT_S],
    )
    check(verdict.met, verdict.evidence() + " (HS-18, HS-20)", requirement=["HS-18", "HS-20"])


@case("host/launch/noise-before-handshake", requirements=["HS-24"], profile=Profile.HOOKS)
async def noise_before_handshake(t: HostTarget) -> None:
    """
    Purpose: Lines a plugin prints before its handshake (a library's banner) are skipped.
    Procedure: Load a fake plugin that prints 3 lines without '|' before its handshake.
    Asserts: The plugin becomes active and answers a command (HS-24; go-plugin's client takes
      the first line for the handshake and refuses the plugin).
    """
    plugin = await t.load({"noise_before_handshake": 3}, wait_active=False)
    status = await plugin.wait_status(
        lambda s: s.state in ("active", "failed", "crashed"), "active", timeout_s=30.0
    )
    expect(
        status.state == "active",
        f"a plugin that printed 3 lines without '|' before its handshake was refused; up to "
        f"64 such lines must be skipped (HS-24)\n{describe_status(status)}",
    )
    command_answer(await plugin.command("/after-noise"), plugin)


# Not a SPEC bound: how long the suite gives a host to read a flood at all.
FLOOD_GUARD_S = 30.0
FLOOD_BYTES = 16 * 1024 * 1024


async def expect_flood_read(plugin: FakePlugin, stream: str, requirement: str) -> None:
    await plugin.wait_event(
        "flood_done",
        timeout_s=FLOOD_GUARD_S,
        where=lambda e: e.get("stream") == stream,
        why=f"the plugin's {FLOOD_BYTES} bytes to {stream} should have been read by the host "
        f"({requirement})",
        requirement=requirement,
    )


@case_each(
    "host/launch/stderr-flood/{}",
    ("before", "after"),
    requirements=["IO-9"],
    profile=Profile.HOOKS,
)
async def stderr_flood(t: HostTarget, when: str) -> None:
    """
    Purpose: A plugin that writes a lot to stderr ({value} its handshake) never blocks.
    Procedure: Load a fake plugin that writes 16 MiB to its stderr pipe from a thread, {value}
      its handshake, 256 times a pipe's buffer; wait for the write to complete.
    Asserts: The flood completes within 30 s, the plugin becomes active and answers a command.
    """
    plugin = await t.load({"flood_stderr": {"bytes": FLOOD_BYTES, "when": when}}, wait_active=False)
    await expect_flood_read(plugin, "stderr", "IO-9")
    await plugin.wait_active()
    command_answer(await plugin.command("/after-flood"), plugin)


# Lines a go-plugin host reads (up to 64 KiB: IO-9), and lines past the 64 KiB at which
# go-plugin's client stops reading stdout (IO-10).
STDOUT_LINES = {"short-lines": (1024, "IO-9"), "long-lines": (256 * 1024, "IO-10")}


@case_each(
    "host/launch/stdout-flood/{}",
    tuple(STDOUT_LINES),
    requirements=["IO-9", "IO-10"],
    profile=Profile.HOOKS,
)
async def stdout_flood(t: HostTarget, lines: str) -> None:
    """
    Purpose: A plugin that writes a lot to stdout after its handshake, in {value}, never blocks.
    Procedure: Load a fake plugin that writes 16 MiB to its stdout pipe from a thread right
      after its handshake, in lines of 1 KiB (short-lines) or 256 KiB (long-lines); wait for
      the write to complete.
    Asserts: The flood completes within 30 s (IO-9 for lines up to 64 KiB, IO-10 for longer
      ones), the plugin becomes active and answers a command.
    """
    line_bytes, requirement = STDOUT_LINES[lines]
    plugin = await t.load(
        {"flood_stdout": {"bytes": FLOOD_BYTES, "line_bytes": line_bytes}}, wait_active=False
    )
    await expect_flood_read(plugin, "stdout", requirement)
    await plugin.wait_active()
    command_answer(await plugin.command("/after-flood"), plugin)


@case("host/launch/tcp-plugin", requirements=["TR-8", "HS-3"], profile=Profile.HOOKS)
async def tcp_plugin(t: HostTarget) -> None:
    """
    Purpose: The host runs plugins that listen on TCP, as go-plugin plugins do on some systems.
    Procedure: Load a fake plugin that listens on 127.0.0.1 within the host's port range.
    Asserts: It becomes active and answers a command.
    """
    plugin = await t.load({"network": "tcp"})
    command_answer(await plugin.command("/over-tcp"), plugin)


@case(
    "host/launch/mtls",
    requirements=["HS-5", "HS-6", "TLS-8", "TLS-9"],
    profile=Profile.HOOKS,
)
async def mtls(t: HostTarget) -> None:
    """
    Purpose: With AutoMTLS the host hands the plugin its certificate and talks TLS to it.
    Procedure: Start a host of the case's own whose environment holds a decoy
      PLUGIN_CLIENT_CERT; load a fake plugin with AutoMTLS on; the fake
      serves TLS, requires the host's certificate from PLUGIN_CLIENT_CERT, and sends its own
      in the handshake. Skipped under --auto-mtls never.
    Asserts: PLUGIN_CLIENT_CERT holds a PEM certificate (HS-5), not the inherited value
      (HS-6); the plugin becomes active and answers a command over the mutual TLS connection
      (TLS-8, TLS-9).
    """
    t.require_auto_mtls()
    host = await t.with_scrubbed_decoys(CLIENT_CERT)
    plugin = await host.load(auto_mtls=True, wait_active=False)
    env = await started_event_env(plugin)
    findings = certificate_findings(env, host.adapter.inherited, True)
    check_findings(findings, plugin)
    if findings:
        return  # the fake cannot serve TLS with that certificate: nothing more to see
    x509.load_pem_x509_certificate(env[CLIENT_CERT].encode())
    try:
        await plugin.wait_active()
        command_answer(await plugin.command("/over-tls"), plugin)
    except CaseFailed as exc:
        # With the right certificate, a plugin that does not start, or answer, over mutual
        # TLS says that the host did not present it or did not trust the plugin's.
        raise CaseFailed(str(exc), ["TLS-8", "TLS-9"]) from None
