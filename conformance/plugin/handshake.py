"""Handshake and environment: what the plugin prints, and how it treats what the host sets."""

from __future__ import annotations

import os
import re

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pluginconf.host.errors import LaunchError
from pluginconf.protocol.constants import ENV_PROTOCOL_VERSIONS, HEALTH_SERVICE_NAME
from pluginconf.runner import Profile, case, case_each, expect, fail
from pluginconf.runner.target import PluginTarget

from ._helpers import bytes_before_handshake, handshake_bytes, refusal_problems, show

_DECIMAL = re.compile(r"^(0|[1-9][0-9]*)$")
# An entry of PLUGIN_PROTOCOL_VERSIONS that no plugin can take for a version (HS-11).
_JUNK_VERSION = "not-a-version"


def _line_problems(raw: bytes, offered: tuple[int, ...]) -> list[str]:
    problems = []
    if not raw.endswith(b"\n"):
        problems.append("the line does not end with \\n")
    if raw.endswith(b"\r\n") or b"\r" in raw:
        problems.append("the line contains \\r (it must end with a single \\n)")
    try:
        text = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        return [*problems, "the line is not UTF-8"]
    fields = text.split("|")
    if len(fields) not in (5, 6):
        return [*problems, f"{len(fields)} '|'-separated fields; expected 5 or 6"]
    for i, value in enumerate(fields, 1):
        if value != value.strip():
            problems.append(f"field {i} {value!r} has surrounding whitespace")
    core, app, network, address, protocol = fields[:5]
    if core != "1":
        problems.append(f"CORE is {core!r}; expected 1")
    if not _DECIMAL.match(app):
        problems.append(f"APP {app!r} is not a decimal without sign or leading zeros")
    elif int(app) not in offered:
        problems.append(f"APP {app} is not one of the offered versions {offered}")
    if network == "unix":
        if not os.path.isabs(address):
            problems.append(f"unix ADDR {address!r} is not an absolute path")
    elif network == "tcp":
        host, _, port = address.rpartition(":")
        if host != "127.0.0.1" or not port.isdigit():
            problems.append(f"tcp ADDR {address!r} is not 127.0.0.1:PORT")
    else:
        problems.append(f"NETWORK {network!r} is not unix or tcp")
    if protocol != "grpc":
        problems.append(f"PROTOCOL {protocol!r} is not grpc")
    if len(fields) == 6 and fields[5]:
        problems.append("a certificate (field 6) without AutoMTLS having been asked for")
    return problems


@case(
    "plugin/handshake/line-format",
    requirements=["HS-12", "HS-13", "HS-14"],
    profile=Profile.TRANSPORT,
)
async def line_format(t: PluginTarget) -> None:
    """
    Purpose: The handshake line is one that every go-plugin host parses the same way.
    Procedure: Start the plugin as a host does and take the line it writes on stdout.
    Asserts: The line ends with a single newline and no carriage return; it has five or six
      '|'-separated fields without surrounding whitespace; CORE is 1; APP is an offered
      version in plain decimal; NETWORK is unix (ADDR an absolute path) or tcp (ADDR
      127.0.0.1:PORT); PROTOCOL is grpc; without AutoMTLS a sixth field is empty.
    """
    shared = await t.shared()
    raw = handshake_bytes(shared.launched)
    problems = _line_problems(raw, t.options.protocol_versions)
    expect(not problems, f"handshake line {show(raw)}:\n" + "\n".join(problems))


@case("plugin/handshake/first-bytes", requirements=["HS-15"], profile=Profile.TRANSPORT)
async def first_bytes(t: PluginTarget) -> None:
    """
    Purpose: Nothing precedes the handshake on stdout, which go-plugin hosts read as the
      handshake whatever it is.
    Procedure: Start the plugin and read its stdout up to the handshake line.
    Asserts: The handshake line is the first byte the process wrote to stdout.
    """
    shared = await t.shared()
    before = bytes_before_handshake(shared.launched)
    expect(
        not before,
        f"{len(before)} bytes on stdout before the handshake line, first: {show(before)}",
    )


@case(
    "plugin/handshake/serving-at-handshake",
    requirements=["HS-16", "TR-9", "CT-1"],
    profile=Profile.TRANSPORT,
)
async def serving_at_handshake(t: PluginTarget) -> None:
    """
    Purpose: A host may call the plugin the moment it reads the handshake.
    Procedure: Start the plugin; as soon as the line is read, make one health check on a new
      connection without waiting for readiness (one attempt, 1 s deadline: a server that
      is up answers in milliseconds), then call GRPCController/Shutdown on the same listener.
    Asserts: The health check answers at the first attempt, within 1 s; Shutdown is served
      (OK or UNAVAILABLE, not UNIMPLEMENTED).
    """
    fresh = await t.launch(connect=False)
    channel = grpc.aio.insecure_channel(fresh.launched.target())
    try:
        health = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=HEALTH_SERVICE_NAME)
        try:
            await health.Check(request, timeout=1, wait_for_ready=False)
        except grpc.aio.AioRpcError as exc:
            fail(
                f"a health check right after the handshake failed with {exc.code().name}: "
                f"{exc.details()}; the server must accept calls at {fresh.handshake.address} "
                "before the line is written"
            )
        fresh.channel = channel
        answer = await fresh.request_shutdown()
        expect(
            answer.outcome in ("ok", "unavailable"),
            f"GRPCController/Shutdown on the handshake's listener answered {answer.outcome}",
        )
    finally:
        fresh.channel = None
        await channel.close(None)


@case_each(
    "plugin/handshake/magic-cookie-{}",
    ["missing", "wrong"],
    requirements=["HS-9"],
    profile=Profile.TRANSPORT,
)
async def magic_cookie_refused(t: PluginTarget, variant: str) -> None:
    """
    Purpose: A plugin started without its application's cookie ({value}) refuses to run, so
      that running it by hand explains itself instead of waiting for a host.
    Procedure: Start the plugin with the cookie variable {value}, otherwise as a host does.
    Asserts: It exits with status 1 within 5 s, has written nothing to stdout and has not
      listened in the socket directory, and its stderr says it is a plugin.
    """
    cookie = t.options.magic_cookie
    value = None if variant == "missing" else cookie.value + "-wrong"
    fresh = await t.spawn(magic_cookie=None, env={cookie.key: value})
    problems = await refusal_problems(fresh, status=1)
    stderr = fresh.stderr_text()
    where = f"cookie {cookie.key} {'unset' if value is None else '=' + repr(value)}"
    if fresh.exit_status is not None and os.listdir(fresh.launched.socket_dir):
        problems.append(f"it left {os.listdir(fresh.launched.socket_dir)} in the socket dir")
    if fresh.exit_status is not None and "plugin" not in stderr.lower():
        problems.append(f"stderr does not say it is a plugin: {show(stderr)}")
    expect(not problems, f"with the {where}: " + "; ".join(problems))


async def _answered_version(t: PluginTarget, offered: str | None) -> int:
    """The APP version the plugin's handshake gives when offered ``offered`` (None: unset)."""
    env = {ENV_PROTOCOL_VERSIONS: offered}
    try:
        fresh = await t.launch(connect=False, env=env)
    except LaunchError as exc:
        if exc.line is None:
            fail(
                f"offered PLUGIN_PROTOCOL_VERSIONS={offered!r}, the plugin gave no "
                f"handshake:\n{exc}"
            )
        line = exc.line
    else:
        line = handshake_bytes(fresh.launched).decode("utf-8", "replace").strip()
        await fresh.close()
    fields = line.split("|")
    if len(fields) < 2 or not fields[1].isdigit():
        fail(f"offered {offered!r}, the handshake {line!r} has no APP version")
    return int(fields[1])


async def _supported(t: PluginTarget) -> list[int]:
    """The host's versions the plugin takes when each is offered alone."""
    offered = t.options.protocol_versions
    if len(offered) == 1:
        return list(offered)  # the shared process took it
    return [v for v in offered if await _answered_version(t, str(v)) == v]


@case("plugin/handshake/version-negotiation", requirements=["HS-10"], profile=Profile.TRANSPORT)
async def version_negotiation(t: PluginTarget) -> None:
    """
    Purpose: Host and plugin agree on the newest application protocol they share.
    Procedure: Find which of the host's versions the plugin takes when offered alone; then
      offer all of them, in reverse order, with a much higher version the plugin cannot know.
    Asserts: The plugin answers the highest of the versions it took (or the unknown one, if
      it really speaks it).
    """
    await t.shared()
    supported = await _supported(t)
    expect(supported, f"the plugin took none of the versions {t.options.protocol_versions}")
    unknown = max(t.options.protocol_versions) + 1000
    offered = [*reversed(t.options.protocol_versions), unknown]
    answer = await _answered_version(t, ",".join(map(str, offered)))
    expect(
        answer in (max(supported), unknown),
        f"offered {offered}, the plugin answered {answer}; it takes {supported} one at a "
        f"time, so the highest common version is {max(supported)}",
    )


@case("plugin/handshake/version-none-common", requirements=["HS-10"], profile=Profile.TRANSPORT)
async def version_none_common(t: PluginTarget) -> None:
    """
    Purpose: Without a common version the plugin still answers, so that the host can report
      the mismatch with both sides' versions.
    Procedure: Offer only a version far above the host's; then start it with
      PLUGIN_PROTOCOL_VERSIONS unset.
    Asserts: Both times the plugin writes a handshake, offering a version no higher than the
      lowest of the host's versions it takes.
    """
    supported = await _supported(t)
    lowest = min(supported or t.options.protocol_versions)
    unknown = max(t.options.protocol_versions) + 1000
    for offered in (str(unknown), None):
        answer = await _answered_version(t, offered)
        expect(
            answer <= lowest or answer == unknown,
            f"offered {offered!r}, the plugin answered {answer}; with no common version it "
            f"must offer its lowest, and it takes {lowest}",
        )


@case(
    "plugin/handshake/version-invalid-entries",
    requirements=["HS-11"],
    profile=Profile.TRANSPORT,
)
async def version_invalid_entries(t: PluginTarget) -> None:
    """
    Purpose: A malformed entry in PLUGIN_PROTOCOL_VERSIONS does not stop negotiation.
    Procedure: Offer "not-a-version" followed by the host's versions.
    Asserts: The plugin negotiates as if the entry were absent and warns on stderr, naming
      the entry.
    """
    shared = await t.shared()
    expected = shared.launched.handshake.app_version if shared.launched.handshake else None
    offered = ",".join([_JUNK_VERSION, *map(str, t.options.protocol_versions)])
    try:
        fresh = await t.launch(connect=False, env={ENV_PROTOCOL_VERSIONS: offered})
    except LaunchError as exc:
        fail(f"offered {offered!r}, the plugin did not start:\n{exc}")
    answer = fresh.handshake.app_version
    await fresh.close()
    stderr = fresh.stderr_text()
    expect(
        answer == expected,
        f"offered {offered!r}, the plugin answered {answer}, "
        f"not {expected} as without the bad entry",
    )
    expect(
        _JUNK_VERSION in stderr,
        f"offered {offered!r}, the plugin's stderr does not name the ignored entry: "
        f"{show(stderr, 400)}",
    )
