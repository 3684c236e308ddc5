"""``host/launch/malformed-handshake``: a fake prints a broken handshake line, and the host
must refuse it with an error kind the SPEC allows for that very line (HS-18 to HS-21),
quoting it (HS-27).

``expected_refusals`` says which kinds those are; a line breaking several rules may be
refused for any of them.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from collections.abc import Collection

import grpc
from hypothesis import given

from pluginconf.fuzz.host.bounds import GONE_S
from pluginconf.fuzz.host.context import CLOSE_BOUND_S, HostFuzzContext
from pluginconf.fuzz.host.processes import processes, still_there
from pluginconf.fuzz.model import (
    FuzzProperty,
    FuzzTarget,
    HypothesisTest,
    PropertyFailed,
    PropertyNotApplicable,
)
from pluginconf.fuzz.strategies.handshake import malformed_lines
from pluginconf.protocol.handshake import NETWORKS, PROTOCOL_GRPC
from pluginconf.runner.host.fake_plugin import FakePlugin, describe_status
from pluginconf.runner.host.target import HostTarget
from pluginconf.runner.model import CaseFailed, CaseSkipped

# A line without '|' is skipped as noise (HS-18), and then only the start timeout ends the
# wait: short for those, so that they cost little; a start timeout comes out either way. Any
# other line is refused once printed, and the fake needs time to start and print it.
NOISE_START_TIMEOUT_S = 3.0
REFUSAL_START_TIMEOUT_S = 20.0
CONNECT_TIMEOUT_S = 5.0  # HS-20's default: an unreachable address takes this long
REFUSAL_BOUND_S = REFUSAL_START_TIMEOUT_S + CONNECT_TIMEOUT_S + 15.0
MALFORMED = "handshake_malformed"


def _version_kinds(text: str, accepted: Collection[int], mismatch: str) -> set[str]:
    """A version field: malformed unless ASCII digits; a mismatch when it reads (strictly,
    or as a lenient parser might with a sign or spaces) as a version not accepted."""
    kinds: set[str] = set()
    strict = text.isascii() and text.isdigit()
    if not strict:
        kinds.add(MALFORMED)
    lenient = text.strip()
    if lenient[:1] in "+-":
        lenient = lenient[1:]
    if (
        lenient.isascii()
        and lenient.isdigit()
        and (int(lenient) not in accepted or text[:1] == "-")
    ):
        kinds.add(mismatch)
    return kinds


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _loopback(address: str) -> bool:
    host, _, _ = address.rpartition(":")
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def expected_refusals(line: str, app_versions: Collection[int]) -> frozenset[str]:
    """Every error kind the SPEC allows a host to report for this handshake line; a line
    breaking several rules may be refused for any of them (the SPEC sets no order)."""
    if "|" not in line:
        return frozenset({"start_timeout"})  # HS-18: noise, skipped; nothing else comes
    parts = line.split("|")
    kinds: set[str] = set()
    if len(parts) not in (5, 6):
        kinds.add(MALFORMED)
    kinds |= _version_kinds(parts[0], {1}, "core_version_mismatch")
    if len(parts) > 1:
        kinds |= _version_kinds(parts[1], app_versions, "app_version_mismatch")
    network = parts[2] if len(parts) > 2 else ""
    if len(parts) > 2 and network not in NETWORKS:
        kinds.add("unknown_network")
    if len(parts) > 3:
        address = parts[3]
        if not address or (network == "tcp" and not _loopback(address)):
            kinds.add(MALFORMED)  # HS-20, HS-21
    if len(parts) > 4 and parts[4] != PROTOCOL_GRPC:
        kinds.add("unsupported_protocol")
        if not parts[4]:
            kinds.add(MALFORMED)
    if len(parts) == 6 and parts[5]:
        kinds.add("tls_error")  # TLS-11 (SHOULD); not base64 at all: HS-19
        if not _is_base64(parts[5]):
            kinds.add(MALFORMED)
    if kinds <= {"tls_error"}:
        # Well-formed (a host may ignore field 6, TLS-11 being a SHOULD): the address is
        # made up, so nothing answers there, or not gRPC (a TCP port something else holds).
        kinds |= {"unreachable", "not_serving", "implemented_failed"}
    return frozenset(kinds)


def _quotes(text: str, line: str) -> bool:
    """Whether ``text`` carries ``line`` (HS-27): as is, as a Python repr or a JSON string."""
    return any(
        form in text for form in (line, repr(line), json.dumps(line, ensure_ascii=False)[1:-1])
    )


def _app_versions(fake: FakePlugin) -> set[int]:
    """The versions the host offered the plugin (PLUGIN_PROTOCOL_VERSIONS), by its start."""
    started = fake.events("started")
    env = started[0].get("env", {}) if started else {}
    value = str(env.get("PLUGIN_PROTOCOL_VERSIONS", "1")) if isinstance(env, dict) else "1"
    versions = {int(v) for v in value.split(",") if v.strip().isascii() and v.strip().isdigit()}
    return versions or {1}


async def _refused(target: HostTarget, line: str) -> None:
    fake = await target.load(
        {"handshake": {"line": line}},
        name="hs",
        wait_active=False,
        restart_limit=1,
        start_timeout_s=NOISE_START_TIMEOUT_S if "|" not in line else REFUSAL_START_TIMEOUT_S,
        backoff_base_s=0.05,
        backoff_max_s=0.1,
    )
    status = await fake.watch_until(lambda s: s.state in ("failed", "active"), REFUSAL_BOUND_S)
    if status is None or status.state != "failed":
        shown_status = describe_status(status or await fake.status())
        raise PropertyFailed(
            f"the handshake line {line!r} was not refused: with restart limit 1 the plugin "
            f"must be `failed` within {REFUSAL_BOUND_S:g}s (HS-20, SV-9)\n{shown_status}\n"
            f"{fake.evidence()}"
        )
    crash = next((t for t in status.transitions if t.new_state == "crashed"), None)
    allowed = expected_refusals(line, _app_versions(fake))
    reported = crash.error_kind if crash is not None else "(no crashed transition)"
    if reported not in allowed:
        raise PropertyFailed(
            f"the host refused the handshake line {line!r} with error kind {reported!r}; for "
            f"this line the SPEC allows {sorted(allowed)} (HS-18, HS-20, HS-21, TLS-10, "
            f"TLS-11)\n{describe_status(status)}\n{fake.evidence()}"
        )
    if crash is not None and reported != "start_timeout":
        told = f"{crash.reason}\n{status.last_error}\n{crash.stderr_tail}"
        if not _quotes(told, line):
            raise PropertyFailed(
                f"the refusal of the handshake line {line!r} does not quote it (HS-27)\n"
                f"{describe_status(status)}"
            )
    left = await still_there(processes(fake), GONE_S)
    if left:
        raise PropertyFailed(
            f"the host refused the handshake line {line!r}, and {GONE_S:g}s later the plugin's "
            f"process is still there: {', '.join(p.describe() for p in left)}; a rejected "
            f"plugin's process group is terminated (HS-20, SV-16, SV-17)\n{fake.evidence()}"
        )


async def _check_refusal(ctx: HostFuzzContext, line: str) -> None:
    """One example: a target of its own, the refusal, and nothing left after it."""
    target = await ctx.open_target()
    problem = ""
    try:
        await _refused(target, line)
    except (PropertyFailed, CaseFailed) as exc:
        problem = str(exc)
    finally:
        try:
            await ctx.close_target(target)
        except PropertyFailed as exc:
            problem = f"{problem}\n{exc}".strip()
    if problem:
        raise PropertyFailed(problem)


def _one_line(line: str) -> bool:
    """What a fake can print as one line (its scenario refuses line breaks)."""
    return "\n" not in line and "\r" not in line


def _malformed(ctx: HostFuzzContext) -> HypothesisTest:
    @given(line=malformed_lines().filter(_one_line))
    def malformed_handshake(line: str) -> None:
        ctx.example()
        try:
            ctx.run(_check_refusal(ctx, line), REFUSAL_BOUND_S + CLOSE_BOUND_S, "the refusal")
        except CaseSkipped as exc:
            raise PropertyNotApplicable(str(exc)) from None
        except grpc.aio.AioRpcError as exc:
            raise PropertyFailed(
                f"a HostControl call failed with {exc.code().name}: {exc.details()}"
            ) from None

    return malformed_handshake


MALFORMED_HANDSHAKE = FuzzProperty(
    "launch/malformed-handshake",
    FuzzTarget.HOST,
    "a plugin printing any malformed handshake line is refused with an error kind the SPEC "
    "allows for that line, quoting it, and its process ends; a line without '|' is noise, "
    "and the start times out",
    ("HS-18", "HS-20", "HS-21", "HS-27", "TLS-10", "TLS-11"),
    _malformed,
    scale=0.02,
)
