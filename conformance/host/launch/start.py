"""Launching: the start timeout, output around the handshake, tcp and AutoMTLS plugins."""

from __future__ import annotations

import time

from cryptography import x509

from pluginconf.control import control_pb2
from pluginconf.fake.scenario.spec import FloodWhen
from pluginconf.runner import Profile, case, case_each, check, expect, fail
from pluginconf.runner.host.fake_plugin import FakePlugin, describe_status
from pluginconf.runner.host.fake_start import CLIENT_CERT, certificate_findings
from pluginconf.runner.host.target import HostTarget
from pluginconf.runner.model import CaseFailed
from pluginconf.runner.timing import Yardstick, judge_time

from .._helpers import command_answer, crash_transition
from ._helpers import check_findings, check_gone, started_event_env

START_TIMEOUT_S = 1.5


# How soon after its start timeout a host gives up, on an unloaded machine: the SPEC says
# only that it rejects the plugin when the timeout expires.
GIVE_UP_WITHIN_S = 1.0


# When the first fake was stopped before it started its grandchild: a generous deadlock
# guard, so that the second one does start it.
GROUP_PROBE_START_TIMEOUT_S = 10.0


async def _time_out_one(
    t: HostTarget, start_timeout_s: float = START_TIMEOUT_S
) -> tuple[FakePlugin, control_pb2.PluginStatus, float]:
    """A fake that never handshakes, with the short start timeout: the plugin, the host's
    status once it gave up, and when it was asked to enable it (wall clock)."""
    plugin = await t.load(
        {"never_handshake": True, "spawn_grandchild": True},
        enable=False,
        restart_limit=1,
        start_timeout_s=start_timeout_s,
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
      fake, against the same-run yardstick of a process start. If the host stopped the fake
      before it started its grandchild (a loaded machine), one more with a 10 s start
      timeout, for the process group.
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
    if not plugin.events("grandchild"):
        # Under load the fake was stopped before it started its grandchild, so the group
        # was never put to the test (HS-25): once more, with time enough to start one.
        slow, _, _ = await _time_out_one(t, GROUP_PROBE_START_TIMEOUT_S)
        await check_gone(t, slow, "HS-20", "the timed-out plugin (a second one)")

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
# When a stderr flood starts: before or after the handshake.
STDERR_FLOODS: tuple[FloodWhen, ...] = ("before", "after")


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
    STDERR_FLOODS,
    requirements=["IO-9"],
    profile=Profile.HOOKS,
)
async def stderr_flood(t: HostTarget, when: FloodWhen) -> None:
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
