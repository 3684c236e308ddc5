"""What a fake plugin saw when it started: its environment, checked variable by variable
against what the host must set (HS-1 to HS-7, HS-23), and why it exited before serving.

The launch cases assert on these findings; any case whose plugin never became active shows
them, so that a host that passes a wrong variable is told which one, with its value, rather
than that a plugin "was not active".
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509

from pluginconf.runner.host.observer import Observed

COOKIE_KEY, COOKIE_VALUE = "PLUGINCONF_MAGIC_COOKIE", "pluginconf"
VERSIONS = "PLUGIN_PROTOCOL_VERSIONS"
MIN_PORT, MAX_PORT = "PLUGIN_MIN_PORT", "PLUGIN_MAX_PORT"
SOCKET_DIR = "PLUGIN_UNIX_SOCKET_DIR"
CLIENT_CERT = "PLUGIN_CLIENT_CERT"
MULTIPLEX = "PLUGIN_MULTIPLEX_GRPC"
_DECIMAL_LIST = re.compile(r"^[0-9]+(,[0-9]+)*$")
_SHOWN = 60


def _show(value: str) -> str:
    return repr(value) if len(value) <= _SHOWN else f"{value[:_SHOWN]!r}... ({len(value)} chars)"


@dataclass(frozen=True)
class EnvFinding:
    """One variable of the plugin's environment that is wrong, and the rule it breaks."""

    variable: str
    value: str | None  # None: not set
    problem: str
    requirement: str
    # How the variables are shown, when the finding is about two of them.
    shown: str = ""

    def describe(self) -> str:
        if self.shown:
            shown = self.shown
        elif self.value is None:
            shown = f"{self.variable} unset"
        else:
            shown = f"{self.variable}={_show(self.value)}"
        return f"{shown}: {self.problem} ({self.requirement})"


def _inherited(key: str, value: str | None, inherited: Mapping[str, str]) -> bool:
    return value is not None and inherited.get(key) == value


def _precedence(key: str, value: str | None, inherited: Mapping[str, str]) -> EnvFinding | None:
    if _inherited(key, value, inherited):
        return EnvFinding(
            key,
            value,
            "the value the host itself inherited; the host's own value must take precedence",
            "HS-6",
        )
    return None


def handshake_findings(env: Mapping[str, str], inherited: Mapping[str, str]) -> list[EnvFinding]:
    found: list[EnvFinding] = []
    for key in (COOKIE_KEY, VERSIONS, MIN_PORT, MAX_PORT):
        decoy = _precedence(key, env.get(key), inherited)
        if decoy is not None:
            found.append(decoy)
    taken = {f.variable for f in found}
    cookie = env.get(COOKIE_KEY)
    if COOKIE_KEY not in taken and cookie != COOKIE_VALUE:
        found.append(
            EnvFinding(COOKIE_KEY, cookie, f"the application's cookie is {COOKIE_VALUE!r}", "HS-1")
        )
    versions = env.get(VERSIONS)
    if VERSIONS not in taken and (
        versions is None or not _DECIMAL_LIST.match(versions) or "1" not in versions.split(",")
    ):
        found.append(
            EnvFinding(
                VERSIONS,
                versions,
                "expected decimal integers separated by commas, without spaces, including 1",
                "HS-2",
            )
        )
    low, high = env.get(MIN_PORT), env.get(MAX_PORT)
    if not taken & {MIN_PORT, MAX_PORT} and not (
        low is not None
        and high is not None
        and low.isdigit()
        and high.isdigit()
        and 1 <= int(low) <= int(high) <= 65535
    ):
        found.append(
            EnvFinding(
                MIN_PORT,
                low,
                "expected ports with 1 <= min <= max <= 65535",
                "HS-3",
                f"{MIN_PORT}={low!r} and {MAX_PORT}={high!r}",
            )
        )
    return found


def socket_dir_findings(env: Mapping[str, str], inherited: Mapping[str, str]) -> list[EnvFinding]:
    path = env.get(SOCKET_DIR)
    if path is None:
        return [EnvFinding(SOCKET_DIR, None, "the host must make a directory per process", "HS-4")]
    if _inherited(SOCKET_DIR, path, inherited):
        return [
            EnvFinding(
                SOCKET_DIR,
                path,
                "the value the host inherited, passed through; the host must make a new "
                "directory for each process",
                "HS-4",
            )
        ]
    if not os.path.isabs(path):
        return [EnvFinding(SOCKET_DIR, path, "not an absolute path", "HS-4")]
    return []


def certificate_findings(
    env: Mapping[str, str], inherited: Mapping[str, str], auto_mtls: bool
) -> list[EnvFinding]:
    pem = env.get(CLIENT_CERT)
    if not auto_mtls:
        if pem is None:
            return []
        why = (
            "the value the host inherited, passed through"
            if _inherited(CLIENT_CERT, pem, inherited)
            else "set"
        )
        return [
            EnvFinding(
                CLIENT_CERT,
                pem,
                f"{why} though AutoMTLS is off; the host must remove it",
                "HS-23",
            )
        ]
    if pem is None:
        return [EnvFinding(CLIENT_CERT, None, "AutoMTLS is on: the host's certificate", "HS-5")]
    decoy = _precedence(CLIENT_CERT, pem, inherited)
    if decoy is not None:
        return [decoy]
    try:
        x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        return [EnvFinding(CLIENT_CERT, pem, f"not a PEM certificate ({exc})", "HS-5")]
    return []


def multiplex_findings(env: Mapping[str, str], inherited: Mapping[str, str]) -> list[EnvFinding]:
    value = env.get(MULTIPLEX)
    if value is None:
        return []
    why = (
        "passed through from the host's own environment"
        if _inherited(MULTIPLEX, value, inherited)
        else "set"
    )
    return [EnvFinding(MULTIPLEX, value, f"{why}; the host must never pass it", "HS-7")]


def environment_findings(
    env: Mapping[str, str], inherited: Mapping[str, str], auto_mtls: bool
) -> list[EnvFinding]:
    """Every wrong variable of a plugin's environment ``env``, given the decoys the adapter
    ``inherited`` and whether the plugin was started with AutoMTLS."""
    return [
        *handshake_findings(env, inherited),
        *socket_dir_findings(env, inherited),
        *certificate_findings(env, inherited, auto_mtls),
        *multiplex_findings(env, inherited),
    ]


def started_env(event: Observed) -> dict[str, str]:
    """The handshake variables a fake reported in its ``started`` event."""
    env = event.get("env", {})
    return {str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {}


def describe_start(
    started: Observed,
    exiting: Observed | None,
    inherited: Mapping[str, str],
    auto_mtls: bool,
) -> str:
    """What process ``started.pid`` saw at its start, and why it exited if it did so early."""
    lines = [f"  process {started.pid} at its start:"]
    findings = environment_findings(started_env(started), inherited, auto_mtls)
    lines += [f"    {f.describe()}" for f in findings] or ["    its environment was as required"]
    if exiting is not None and exiting.get("reason") in ("magic_cookie", "cannot_serve"):
        lines.append(
            f"    it refused to serve and exited with status {exiting.get('status')}: "
            f"{exiting.get('problem') or exiting.get('reason')}"
        )
    return "\n".join(lines)
