"""Launching: the environment the host sets, the handshakes it refuses, and its start timeout."""

from __future__ import annotations

import os
import re
import stat
import time
from dataclasses import dataclass
from typing import Any

import psutil
from cryptography import x509

from pluginconf.runner import Profile, case, case_each, expect, fail
from pluginconf.runner.adapter_process import INHERITED_DECOYS
from pluginconf.runner.host_target import FakePlugin, HostTarget, describe_status

from ._helpers import command_answer, expect_crash_kind

COOKIE_KEY, COOKIE_VALUE = "PLUGINCONF_MAGIC_COOKIE", "pluginconf"
_VERSIONS = re.compile(r"^[0-9]+(,[0-9]+)*$")


async def started_env(plugin: FakePlugin) -> dict[str, str]:
    event = await plugin.wait_event("started", why="the plugin process should have started")
    env: dict[str, str] = event.get("env", {})
    return env


@case(
    "host/launch/environment",
    requirements=["HS-1", "HS-2", "HS-3", "HS-6"],
    profile=Profile.HOOKS,
)
async def environment(t: HostTarget) -> None:
    """
    Purpose: A plugin learns the cookie, the versions and the port range from its environment.
    Procedure: The adapter runs with wrong values of these variables in its own environment
      (as a host may inherit them); load a fake plugin and read the environment it started with.
    Asserts: The cookie is PLUGINCONF_MAGIC_COOKIE=pluginconf; PLUGIN_PROTOCOL_VERSIONS is a
      comma list of decimal integers including 1; PLUGIN_MIN_PORT and PLUGIN_MAX_PORT are
      ports with min <= max; none of them is the inherited value.
    """
    plugin = await t.load()
    env = await started_env(plugin)
    problems = []
    if env.get(COOKIE_KEY) != COOKIE_VALUE:
        problems.append(f"{COOKIE_KEY}={env.get(COOKIE_KEY)!r}, expected {COOKIE_VALUE!r} (HS-1)")
    versions = env.get("PLUGIN_PROTOCOL_VERSIONS", "")
    if not _VERSIONS.match(versions) or "1" not in versions.split(","):
        problems.append(
            f"PLUGIN_PROTOCOL_VERSIONS={versions!r}, expected decimal integers separated by "
            "commas, including 1 (HS-2)"
        )
    low, high = env.get("PLUGIN_MIN_PORT", ""), env.get("PLUGIN_MAX_PORT", "")
    if not (low.isdigit() and high.isdigit() and 1 <= int(low) <= int(high) <= 65535):
        problems.append(
            f"PLUGIN_MIN_PORT={low!r} and PLUGIN_MAX_PORT={high!r}, expected ports with "
            "1 <= min <= max <= 65535 (HS-3)"
        )
    for key in (COOKIE_KEY, "PLUGIN_PROTOCOL_VERSIONS", "PLUGIN_MIN_PORT", "PLUGIN_MAX_PORT"):
        if env.get(key) == INHERITED_DECOYS[key]:
            problems.append(f"{key} is the value the host inherited, not its own (HS-6)")
    expect(not problems, "the plugin's environment is wrong:\n  " + "\n  ".join(problems))


@case("host/launch/socket-dir", requirements=["HS-4"], profile=Profile.HOOKS)
async def socket_dir(t: HostTarget) -> None:
    """
    Purpose: Each plugin process gets a private directory for its socket.
    Procedure: Load two fake plugins and read PLUGIN_UNIX_SOCKET_DIR from each one's start,
      while they run.
    Asserts: Each is an absolute path to an existing directory of mode 0700 owned by the
      host's user, the two differ, and neither is the value the host inherited.
    """
    first, second = await t.load(name="a"), await t.load(name="b")
    dirs = []
    for plugin in (first, second):
        path = (await started_env(plugin)).get("PLUGIN_UNIX_SOCKET_DIR", "")
        expect(path, f"PLUGIN_UNIX_SOCKET_DIR is not set for {plugin.plugin_id!r} (HS-4)")
        expect(
            path != INHERITED_DECOYS["PLUGIN_UNIX_SOCKET_DIR"],
            "PLUGIN_UNIX_SOCKET_DIR is the value the host inherited (HS-4, HS-6)",
        )
        expect(os.path.isabs(path), f"PLUGIN_UNIX_SOCKET_DIR {path!r} is not absolute (HS-4)")
        try:
            info = os.stat(path)
        except OSError as exc:
            fail(f"PLUGIN_UNIX_SOCKET_DIR {path!r} cannot be read: {exc.strerror} (HS-4)")
        expect(stat.S_ISDIR(info.st_mode), f"{path!r} is not a directory (HS-4)")
        mode = stat.S_IMODE(info.st_mode)
        expect(mode == 0o700, f"{path!r} has mode {mode:04o}, expected 0700 (HS-4)")
        if t.host_pid:
            owner = psutil.Process(t.host_pid).uids().effective
            expect(info.st_uid == owner, f"{path!r} is owned by uid {info.st_uid}, not the host's")
        dirs.append(path)
    expect(dirs[0] != dirs[1], f"two plugin processes were given the same directory {dirs[0]!r}")


@case(
    "host/launch/no-inherited-secrets",
    requirements=["HS-5", "HS-7"],
    profile=Profile.HOOKS,
)
async def no_inherited_secrets(t: HostTarget) -> None:
    """
    Purpose: Without AutoMTLS the plugin sees no client certificate, and never multiplexing.
    Procedure: The adapter inherits PLUGIN_CLIENT_CERT and PLUGIN_MULTIPLEX_GRPC; load a fake
      plugin without AutoMTLS and read its environment.
    Asserts: Neither variable is in the plugin's environment.
    """
    env = await started_env(await t.load())
    for key, rule in (("PLUGIN_CLIENT_CERT", "HS-5"), ("PLUGIN_MULTIPLEX_GRPC", "HS-7")):
        expect(
            key not in env,
            f"{key}={env.get(key)!r} reached the plugin; the host must remove it ({rule})",
        )


@case("host/launch/process-group", requirements=["HS-8"], profile=Profile.HOOKS)
async def process_group(t: HostTarget) -> None:
    """
    Purpose: The host can signal the whole plugin, and the plugin cannot read the host's input.
    Procedure: Load a fake plugin; it reports its process group and what its stdio are.
    Asserts: Its process group id is its pid; stdin is /dev/null; stdout and stderr are pipes.
    """
    plugin = await t.load()
    started = await plugin.wait_event("started")
    expect(
        started.get("pgid") == started.pid,
        f"the plugin's process group is {started.get('pgid')}, not its own pid {started.pid} "
        "(HS-8: the plugin leads a new process group)",
    )
    stdio: dict[str, str] = started.get("stdio", {})
    stdin = stdio.get("0", "")
    expect(stdin == "/dev/null", f"the plugin's stdin is {stdin!r}, not /dev/null (HS-8)")
    for fd, name in (("1", "stdout"), ("2", "stderr")):
        expect(
            stdio.get(fd, "").startswith("pipe:"),
            f"the plugin's {name} is {stdio.get(fd)!r}, not a pipe the host reads (HS-8)",
        )


@dataclass(frozen=True)
class Refusal:
    name: str
    kind: str
    # A handshake line the fake writes instead of its own; the error must quote it (HS-22).
    line: str = ""
    other: tuple[tuple[str, Any], ...] = ()  # another scenario instead

    @property
    def scenario(self) -> dict[str, Any]:
        return {"handshake": {"line": self.line}} if self.line else dict(self.other)

    def __str__(self) -> str:
        return self.name


REFUSALS = (
    Refusal("core-version", "core_version_mismatch", "2|1|unix|/x|grpc"),
    Refusal("app-version", "app_version_mismatch", "1|7|unix|/x|grpc"),
    Refusal("network", "unknown_network", "1|1|udp|/x|grpc"),
    Refusal("protocol", "unsupported_protocol", "1|1|unix|/x|netrpc"),
    Refusal("garbage", "handshake_malformed", "garbage|"),
    Refusal("non-integer-version", "handshake_malformed", "1|x|unix|/x|grpc"),
    # A digit to str.isdigit(), not to int(): found by fuzzing the reference host's parser.
    Refusal("non-ascii-digit", "handshake_malformed", "\u00b2|1|unix|/x|grpc"),
    Refusal("non-loopback-tcp", "handshake_malformed", "1|1|tcp|192.0.2.1:4000|grpc"),
    Refusal("unreachable", "unreachable", "1|1|unix|/nonexistent/x.sock|grpc"),
    Refusal("stdout-closed", "handshake_eof", other=(("handshake", {"close_stdout": True}),)),
    Refusal("too-much-noise", "too_much_noise", other=(("noise_before_handshake", 65),)),
)


@case_each(
    "host/launch/refuses/{}",
    REFUSALS,
    requirements=["HS-18", "HS-20", "HS-21", "HS-22"],
    profile=Profile.HOOKS,
)
async def refuses(t: HostTarget, refusal: Refusal) -> None:
    """
    Purpose: A plugin whose handshake cannot be used ({value}) is refused, and its process ends.
    Procedure: Load a fake plugin with that handshake (restart limit 1, so the first failure is
      the last); wait for the host to give up on it.
    Asserts: The host reports a `crashed` transition with the SPEC's error kind; the reason
      carries the offending line; the plugin process is gone.
    """
    plugin = await t.load(refusal.scenario, wait_active=False, restart_limit=1)
    status = await plugin.wait_state("failed", timeout_s=20.0)
    crashed = expect_crash_kind(status, refusal.kind, "HS-20")
    if refusal.line:
        expect(
            refusal.line in crashed.reason or refusal.line in status.last_error,
            f"the error does not quote the handshake line {refusal.line!r} (HS-22)\n"
            f"{describe_status(status)}",
        )
    left = await t.wait_gone(plugin.pids(), timeout_s=5.0)
    expect(
        not left,
        f"the refused plugin's process {left} still runs 5 s after the host gave up on it; "
        f"the host must terminate it (HS-20)\n{plugin.evidence()}",
    )


@case(
    "host/launch/exited-before-handshake",
    requirements=["HS-20", "HS-22"],
    profile=Profile.HOOKS,
)
async def exited_before_handshake(t: HostTarget) -> None:
    """
    Purpose: A plugin that dies before its handshake is reported with how it died.
    Procedure: Load a fake plugin that writes 25 lines to stderr and exits with status 3
      before any handshake (restart limit 1).
    Asserts: A `crashed` transition of kind exited_before_handshake with exit status 3 whose
      stderr tail (or reason) holds at least the last 20 lines.
    """
    lines = [f"fakeplugin: config problem {n} of 25" for n in range(1, 26)]
    plugin = await t.load(
        {"handshake": {"exit_before": 3, "stderr": "\n".join(lines)}},
        wait_active=False,
        restart_limit=1,
    )
    status = await plugin.wait_state("failed", timeout_s=20.0)
    crashed = expect_crash_kind(status, "exited_before_handshake", "HS-20")
    expect(
        crashed.has_exit_status and crashed.exit_status == 3,
        f"the transition carries exit status "
        f"{crashed.exit_status if crashed.has_exit_status else 'none'}; expected 3 (HS-22)",
    )
    reported = f"{crashed.stderr_tail}\n{crashed.reason}".splitlines()
    missing = [line for line in lines[-20:] if line not in reported]
    expect(
        not missing,
        f"{len(missing)} of the plugin's last 20 stderr lines are not in the error, e.g. "
        f"{missing[0] if missing else ''!r} (HS-22: at least the last 20 lines); stderr "
        f"tail reported: {crashed.stderr_tail!r}",
    )


@case("host/launch/start-timeout", requirements=["HS-20"], profile=Profile.HOOKS)
async def start_timeout(t: HostTarget) -> None:
    """
    Purpose: A plugin that never writes its handshake does not hang its host.
    Procedure: Load a fake plugin that never handshakes, with a start timeout of 1.5 s.
    Asserts: The host reports a `crashed` transition of kind start_timeout between 1.4 s and
      5 s after it was asked to enable the plugin, and the process is gone.
    """
    plugin = await t.load(
        {"never_handshake": True}, enable=False, restart_limit=1, start_timeout_s=1.5
    )
    enabled_at = time.time()  # the host starts the process after this
    await plugin.enable()
    status = await plugin.wait_state("crashed", "failed", timeout_s=15.0)
    crashed = expect_crash_kind(status, "start_timeout", "HS-20")
    waited = crashed.wall_time - enabled_at
    expect(
        1.4 <= waited <= 5.0,
        f"the host gave up {waited:.2f} s after it was asked to start the plugin; the start "
        "timeout is 1.5 s",
    )
    left = await t.wait_gone(plugin.pids(), timeout_s=5.0)
    expect(not left, f"the timed-out plugin's process {left} still runs (HS-20)")


@case("host/launch/noise-before-handshake", requirements=["HS-18"], profile=Profile.HOOKS)
async def noise_before_handshake(t: HostTarget) -> None:
    """
    Purpose: Lines a plugin prints before its handshake (a library's banner) are skipped.
    Procedure: Load a fake plugin that prints 3 lines without '|' before its handshake.
    Asserts: The plugin becomes active and answers a command.
    """
    plugin = await t.load({"noise_before_handshake": 3})
    command_answer(await plugin.command("/after-noise"), plugin)


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
    size = 16 * 1024 * 1024
    plugin = await t.load({"flood_stderr": {"bytes": size, "when": when}}, wait_active=False)
    await plugin.wait_event(
        "flood_done",
        timeout_s=30.0,
        why=f"the plugin's {size} bytes to stderr should have been read by the host (IO-9)",
    )
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
    requirements=["HS-5", "TLS-8", "TLS-9"],
    profile=Profile.HOOKS,
)
async def mtls(t: HostTarget) -> None:
    """
    Purpose: With AutoMTLS the host hands the plugin its certificate and talks TLS to it.
    Procedure: Load a fake plugin with AutoMTLS on; the fake serves TLS, requires the host's
      certificate from PLUGIN_CLIENT_CERT, and sends its own in the handshake.
    Asserts: PLUGIN_CLIENT_CERT holds a PEM certificate (not the inherited value), the plugin
      becomes active and answers a command over the mutual TLS connection.
    """
    plugin = await t.load(auto_mtls=True)
    pem = (await started_env(plugin)).get("PLUGIN_CLIENT_CERT", "")
    expect(pem != INHERITED_DECOYS["PLUGIN_CLIENT_CERT"], "PLUGIN_CLIENT_CERT is the inherited one")
    try:
        x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        fail(f"PLUGIN_CLIENT_CERT is not a PEM certificate ({exc}): {pem[:80]!r} (HS-5)")
    command_answer(await plugin.command("/over-tls"), plugin)
