"""The handshake line: its format, that nothing precedes it, and serving once it is out."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pluginconf.protocol.constants import HEALTH_SERVICE_NAME
from pluginconf.runner import Profile, case, check, expect
from pluginconf.runner.plugin.target import PluginTarget
from pluginconf.runner.timing import Yardstick

from .._helpers import bytes_before_handshake, handshake_bytes, judge_bound, show

_DECIMAL = re.compile(r"^(0|[1-9][0-9]*)$")


_STD_B64_UNPADDED = re.compile(r"^[A-Za-z0-9+/]+$")


@dataclass
class _LineProblems:
    """What is wrong with a handshake line, by the requirement each problem breaks."""

    form: list[str] = field(default_factory=list)  # HS-12: framing, fields, whitespace
    fields: list[str] = field(default_factory=list)  # HS-13: the values of fields 1 to 5
    certificate: list[str] = field(default_factory=list)  # HS-14: field 6


def _line_problems(
    raw: bytes, offered: tuple[int, ...], protocol: str, auto_mtls: bool
) -> _LineProblems:
    found = _LineProblems()
    if not raw.endswith(b"\n"):
        found.form.append("the line does not end with \\n")
    if raw.endswith(b"\r\n") or b"\r" in raw:
        found.form.append("the line contains \\r (it must end with a single \\n)")
    try:
        text = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        found.form.append("the line is not UTF-8")
        return found
    fields = text.split("|")
    if len(fields) not in (5, 6):
        found.form.append(f"{len(fields)} '|'-separated fields; expected 5 or 6")
        if len(fields) < 5:
            return found
    for i, value in enumerate(fields, 1):
        if value != value.strip():
            found.form.append(f"field {i} {value!r} has surrounding whitespace")
    core, app, network, address, proto = (f.strip() for f in fields[:5])
    if core != "1":
        found.fields.append(f"CORE is {core!r}; expected 1")
    if not _DECIMAL.match(app):
        found.fields.append(f"APP {app!r} is not a decimal without sign or leading zeros")
    elif int(app) not in offered:
        found.fields.append(f"APP {app} is not one of the offered versions {offered}")
    if network == "unix":
        if not os.path.isabs(address):
            found.fields.append(f"unix ADDR {address!r} is not an absolute path")
    elif network == "tcp":
        host, _, port = address.rpartition(":")
        if host != "127.0.0.1" or not port.isdigit():
            found.fields.append(f"tcp ADDR {address!r} is not 127.0.0.1:PORT")
    else:
        found.fields.append(f"NETWORK {network!r} is not unix or tcp")
    if proto != protocol:
        found.fields.append(f"PROTOCOL {proto!r} is not {protocol}")
    certificate = fields[5] if len(fields) > 5 else ""
    if auto_mtls and not certificate:
        found.certificate.append("no certificate (field 6) although PLUGIN_CLIENT_CERT was set")
    elif auto_mtls and not _STD_B64_UNPADDED.match(certificate):
        found.certificate.append(
            "field 6 is not unpadded standard base64 (RFC 4648 §4 without '=')"
        )
    elif certificate and not auto_mtls:
        found.certificate.append("a certificate (field 6) without AutoMTLS having been asked for")
    return found


@case(
    "plugin/handshake/line-format",
    requirements=["HS-12", "HS-13", "HS-14"],
    profile=Profile.TRANSPORT,
)
async def line_format(t: PluginTarget) -> None:
    """
    Purpose: The handshake line is one that every go-plugin host parses the same way.
    Procedure: Start the plugin as the target's host does and take the line it writes on
      stdout.
    Asserts: The line ends with a single newline and no carriage return, and has five or six
      '|'-separated fields without surrounding whitespace (HS-12); CORE is 1, APP is an
      offered version in plain decimal, NETWORK is unix (ADDR an absolute path) or tcp (ADDR
      127.0.0.1:PORT), PROTOCOL is the target's (grpc; netrpc for Mattermost) (HS-13);
      without AutoMTLS a sixth field is empty, and when the host always uses AutoMTLS it
      holds the certificate in unpadded standard base64 (HS-14).
    """
    shared = await t.shared(calls=False)
    raw = handshake_bytes(shared.launched)
    found = _line_problems(
        raw,
        t.options.protocol_versions,
        t.options.target.protocol,
        shared.launched.client_cert is not None,
    )
    for problems, rule in (
        (found.form, "HS-12"),
        (found.fields, "HS-13"),
        (found.certificate, "HS-14"),
    ):
        check(
            not problems,
            f"handshake line {show(raw)}:\n" + "\n".join(problems),
            requirement=rule,
        )


@case("plugin/handshake/first-bytes", requirements=["HS-15"], profile=Profile.TRANSPORT)
async def first_bytes(t: PluginTarget) -> None:
    """
    Purpose: Nothing precedes the handshake on stdout, which go-plugin hosts read as the
      handshake whatever it is.
    Procedure: Start the plugin and read its stdout up to the handshake line.
    Asserts: The handshake line is the first byte the process wrote to stdout.
    """
    shared = await t.shared(calls=False)
    before = bytes_before_handshake(shared.launched)
    expect(
        not before,
        f"{len(before)} bytes on stdout before the handshake line, first: {show(before)}",
    )


# A first call on a new connection gets this long: a deadlock guard. A server that is not
# listening refuses the connection at once (the call does not wait for readiness).
_FIRST_CALL_GUARD_S = 10.0


# HS-16 asks that the server serve when the line is written: its first call is answered as
# any call to a serving server is, in milliseconds. The suite allows 1 s, judged against a
# minimal gRPC server's answer timed just then.
_FIRST_ANSWER_S = 1.0


@dataclass
class _FirstCall:
    took_s: float | None = None
    failure: str | None = None  # how the first call failed, when it did
    shutdown: str | None = None  # how Shutdown was answered


async def _first_call(t: PluginTarget) -> _FirstCall:
    """Start the plugin; time a health check made on a new connection as soon as the line is
    read, then call Shutdown on the same listener."""
    seen = _FirstCall()
    fresh = await t.launch(connect=False)
    started = time.monotonic()
    tls = None
    if fresh.launched.client_cert is not None:
        tls = await fresh.connect_tls(fresh.launched.client_cert)
        channel = tls.channel
    else:
        channel = grpc.aio.insecure_channel(fresh.launched.target())
    try:
        health = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=HEALTH_SERVICE_NAME)
        try:
            await health.Check(request, timeout=_FIRST_CALL_GUARD_S, wait_for_ready=False)
        except grpc.aio.AioRpcError as exc:
            seen.failure = f"{exc.code().name}: {exc.details()}"
            return seen
        seen.took_s = time.monotonic() - started
        fresh.channel = channel
        seen.shutdown = (await fresh.request_shutdown()).outcome
        return seen
    finally:
        fresh.channel = None
        if tls is not None:
            await tls.close()
        else:
            await channel.close(None)


@case(
    "plugin/handshake/serving-at-handshake",
    requirements=["HS-16", "TR-9", "CT-1"],
    profile=Profile.TRANSPORT,
)
async def serving_at_handshake(t: PluginTarget) -> None:
    """
    Purpose: A host may call the plugin the moment it reads the handshake.
    Procedure: Start the plugin; as soon as the line is read, make one health check on a new
      connection without waiting for readiness (a single attempt: a connection refused or
      reset fails it at once) and time its answer, then call GRPCController/Shutdown on the
      same listener. An answer slower than 1 s is set beside a minimal gRPC server's first
      answer on a new connection timed just then, and measured again on a new process (up
      to three times).
    Asserts: The health check is answered at the first attempt, within 1 s (HS-16); Shutdown
      is served on the handshake's listener, OK or UNAVAILABLE, not UNIMPLEMENTED (CT-1,
      TR-9).
    """
    t.needs_calls()
    seen: list[_FirstCall] = []

    async def first_call_once() -> float | None:
        seen.append(await _first_call(t))
        return seen[-1].took_s

    timed = await judge_bound(
        _FIRST_ANSWER_S, first_call_once, Yardstick.CONNECT, "the first call after the handshake"
    )
    first = seen[0]
    expect(
        first.failure is None,
        f"a health check right after the handshake failed with {first.failure}; the server "
        "must accept calls at its address before the line is written",
        requirement="HS-16",
    )
    check(timed.met, timed.evidence(), requirement="HS-16")
    check(
        first.shutdown in ("ok", "unavailable"),
        f"GRPCController/Shutdown on the handshake's listener answered {first.shutdown}",
        requirement=["CT-1", "TR-9"],
    )
