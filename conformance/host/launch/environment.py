"""Launching: the environment the host sets, the socket directory and the process group.

The environment cases read what each fake reported at its start (its ``started`` event), and
name each variable the host got wrong, with its value and the rule it breaks. The decoys that
only a pluginconf host must scrub (PLUGIN_UNIX_SOCKET_DIR, PLUGIN_CLIENT_CERT,
PLUGIN_MULTIPLEX_GRPC) are inherited only by the hosts of the cases that check them: a host
that passes its environment through, as go-plugin's client does, fails those cases and no
other.
"""

from __future__ import annotations

from typing import Any

import psutil

from pluginconf.runner import Profile, case, check, skip
from pluginconf.runner.host.fake_start import (
    CLIENT_CERT,
    MULTIPLEX,
    SOCKET_DIR,
    certificate_findings,
    handshake_findings,
    multiplex_findings,
    socket_dir_findings,
    started_env,
)
from pluginconf.runner.host.target import HostTarget

from ._helpers import check_findings, started_event_env


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
