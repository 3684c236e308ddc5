"""AutoMTLS, host side: the host's certificate, the TLS versions it takes, and what it does
with field 6 of the handshake when it did or did not ask for AutoMTLS (TLS-4 to TLS-11).

The certificate cases read PLUGIN_CLIENT_CERT as each fake reported it at its start, over
several processes: a certificate is made afresh for each (or each run), and an encoding bug
may show for some lengths only. The refusal cases use fakes that serve plaintext whatever
the host asks, as plugins built without AutoMTLS do: a host that falls back to plaintext
would get a working plugin, and so is seen doing it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from pluginconf.fake.scenario.spec import SixthField
from pluginconf.runner import Level, Profile, case, case_each, check, fail, skip
from pluginconf.runner.host.fake_plugin import FakePlugin, describe_status
from pluginconf.runner.host.fake_start import CLIENT_CERT, started_env
from pluginconf.runner.host.target import HostTarget

from .._helpers import crash_transition

# States in which the host has stopped trying to start a plugin.
GAVE_UP = ("crashed", "failed", "stopped")
# Processes whose certificates are checked: several, as a certificate made per process may
# be wrong for some lengths or serial numbers only.
SAMPLES = 4
# TLS-4: the validity starts at least this long before the certificate is made.
BACKDATED_S = 30


async def host_certificates(t: HostTarget, count: int) -> list[tuple[FakePlugin, Any]]:
    """Start ``count`` fakes with AutoMTLS; each one's PLUGIN_CLIENT_CERT as it reported it,
    parsed, and the wall time of its start. A value that is no PEM certificate fails."""
    t.require_auto_mtls()
    plugins = [
        await t.load(name=f"cert{n}", auto_mtls=True, wait_active=False) for n in range(count)
    ]
    found = []
    for plugin in plugins:
        started = await plugin.wait_event("started", why="the plugin process should have started")
        pem = started_env(started).get(CLIENT_CERT, "")
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
        except ValueError as exc:
            fail(
                f"plugin {plugin.plugin_id!r} was started with {CLIENT_CERT}={pem[:80]!r}, not "
                f"a PEM certificate ({exc}): none of what TLS-4 asks of it can hold",
                requirement="TLS-4",
            )
        found.append((plugin, (cert, started.wall)))
    return found


def _extension(cert: x509.Certificate, kind: type[Any]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def certificate_problems(cert: x509.Certificate, started_wall: float) -> list[str]:
    """What a certificate lacks of TLS-4 (empty when nothing)."""
    problems = []
    san = _extension(cert, x509.SubjectAlternativeName)
    names = san.get_values_for_type(x509.DNSName) if san is not None else []
    if "localhost" not in names:
        problems.append(f"subjectAltName DNS names {names}, without 'localhost'")
    basic = _extension(cert, x509.BasicConstraints)
    if basic is None or not basic.ca:
        problems.append(f"basicConstraints {basic}, not CA:true")
    usage = _extension(cert, x509.KeyUsage)
    if usage is None or not (usage.digital_signature and usage.key_cert_sign):
        problems.append(f"keyUsage {usage}, without both digitalSignature and keyCertSign")
    eku = _extension(cert, x509.ExtendedKeyUsage)
    purposes = list(eku) if eku is not None else []
    for oid, name in (
        (ExtendedKeyUsageOID.SERVER_AUTH, "serverAuth"),
        (ExtendedKeyUsageOID.CLIENT_AUTH, "clientAuth"),
    ):
        if oid not in purposes:
            problems.append(f"extendedKeyUsage {[p._name for p in purposes]}, without {name}")
    not_before = cert.not_valid_before_utc.timestamp()
    # Made before the process started: its validity starts 30 s before that, at the latest.
    if not_before > started_wall - BACKDATED_S:
        problems.append(
            f"notBefore {cert.not_valid_before_utc:%H:%M:%S} is only "
            f"{started_wall - not_before:.1f} s before the plugin process started, which came "
            f"after the certificate was made; it must be at least {BACKDATED_S} s before"
        )
    if cert.not_valid_after_utc.timestamp() <= time.time():
        problems.append(f"notAfter {cert.not_valid_after_utc} has passed while the process runs")
    return problems


@case("host/tls/host-certificate", requirements=["TLS-4"], profile=Profile.HOOKS)
async def host_certificate(t: HostTarget) -> None:
    """
    Purpose: The host's AutoMTLS certificate is one that go-plugin plugins accept as client
      certificate and trust anchor.
    Procedure: With AutoMTLS, start four fake plugins and read the PLUGIN_CLIENT_CERT each
      was given (several certificates, as one may be made per process). Skipped when the
      host has no AutoMTLS.
    Asserts: Each certificate has a subjectAltName DNS name localhost, basicConstraints
      CA:true, keyUsage digitalSignature and keyCertSign, extendedKeyUsage serverAuth and
      clientAuth, a notBefore at least 30 s before the process started (it was made before
      that) and a notAfter still ahead while the process runs.
    """
    for plugin, (cert, started_wall) in await host_certificates(t, SAMPLES):
        problems = certificate_problems(cert, started_wall)
        check(
            not problems,
            f"the certificate the host gave plugin {plugin.plugin_id!r} (serial "
            f"{cert.serial_number:x}) breaks TLS-4:\n  " + "\n  ".join(problems),
            requirement="TLS-4",
        )


@case("host/tls/host-curve", requirements=["TLS-5"], profile=Profile.HOOKS, level=Level.SHOULD)
async def host_curve(t: HostTarget) -> None:
    """
    Purpose: The host's certificate uses a key that grpcio-based plugins can verify.
    Procedure: With AutoMTLS, start two fake plugins and read PLUGIN_CLIENT_CERT. Skipped
      when the host has no AutoMTLS.
    Asserts: Each certificate's key is ECDSA on P-256 (go-plugin's P-521 cannot be verified
      by grpcio-based peers).
    """
    for plugin, (cert, _) in await host_certificates(t, 2):
        key = cert.public_key()
        curve = key.curve.name if isinstance(key, ec.EllipticCurvePublicKey) else type(key).__name__
        check(
            curve == "secp256r1",
            f"the host's certificate for plugin {plugin.plugin_id!r} has a {curve} key; "
            "ECDSA P-256 (secp256r1) is what every peer can verify (TLS-5)",
            requirement="TLS-5",
        )


async def expect_refused(
    plugin: FakePlugin, what: str, requirement: str, tls_error: bool = True
) -> None:
    """The host gives the plugin up without a Hooks call reaching it, and, with
    ``tls_error``, reports it with the error kind tls_error; a failure breaks
    ``requirement``."""
    status = await plugin.wait_status(
        lambda s: s.state == "active" or any(tr.new_state in GAVE_UP for tr in s.transitions),
        "refused",
        timeout_s=30.0,
    )
    calls = [str(c.get("hook")) for c in plugin.calls()]
    if status.state == "active" or calls:
        fail(
            f"the host took a plugin {what}: it is {status.state} and the plugin received "
            f"{calls or 'no Hooks call'} ({requirement})\n"
            f"{describe_status(status)}\n{plugin.evidence()}",
            requirement=requirement,
        )
    if not tls_error:
        return
    crashed = crash_transition(status)
    check(
        crashed is not None and crashed.error_kind == "tls_error",
        f"the host refused a plugin {what} with the error kind "
        f"{crashed.error_kind if crashed else '(no crashed transition)'!r}; "
        f"expected 'tls_error' ({requirement})\n{describe_status(status)}",
        requirement=requirement,
    )


@case("host/tls/refuses-old-tls", requirements=["TLS-6"], profile=Profile.HOOKS)
async def refuses_old_tls(t: HostTarget) -> None:
    """
    Purpose: The host speaks TLS 1.2 or later to its plugins, never an earlier version.
    Procedure: With AutoMTLS, load a fake that serves TLS 1.0 and 1.1 only, with the
      certificate of its handshake (restart limit 1). Skipped when the host has no AutoMTLS.
    Asserts: The plugin never becomes active and receives no Hooks call (the error kind is
      checked by host/tls/no-plaintext-fallback/handshake-fails).
    """
    t.require_auto_mtls()
    plugin = await t.load(
        {"tls": {"serve": "tls1.1"}}, auto_mtls=True, wait_active=False, restart_limit=1
    )
    # The error kind of a failed TLS handshake is TLS-10's, checked there.
    await expect_refused(plugin, "that serves only TLS 1.0 and 1.1", "TLS-6", tls_error=False)


@dataclass(frozen=True)
class Fallback:
    """A plugin that serves plaintext though the host set PLUGIN_CLIENT_CERT, and the sixth
    field it sends."""

    name: str
    sixth_field: SixthField
    what: str

    def __str__(self) -> str:
        return self.name


FALLBACKS = (
    Fallback("missing", "absent", "whose handshake has five fields"),
    Fallback("empty", "empty", "whose handshake's sixth field is empty"),
    Fallback("not-a-certificate", "not-a-certificate", "whose sixth field is not a certificate"),
    Fallback(
        "handshake-fails", "certificate", "that sends a certificate but serves no TLS with it"
    ),
)


@case_each(
    "host/tls/no-plaintext-fallback/{}",
    FALLBACKS,
    requirements=["TLS-10"],
    profile=Profile.HOOKS,
)
async def no_plaintext_fallback(t: HostTarget, fallback: Fallback) -> None:
    """
    Purpose: A host that asked for AutoMTLS never talks to a plugin in plaintext ({value}).
    Procedure: With AutoMTLS, load a fake that serves plaintext, as a plugin built without
      AutoMTLS does, and whose handshake's sixth field is missing, empty, not a certificate,
      or a certificate it serves no TLS with (restart limit 1). Skipped when the host has no
      AutoMTLS.
    Asserts: The plugin never becomes active and receives no Hooks call; the host reports a
      `crashed` transition of kind tls_error.
    """
    t.require_auto_mtls()
    plugin = await t.load(
        {"tls": {"serve": "plain", "sixth_field": fallback.sixth_field}},
        auto_mtls=True,
        wait_active=False,
        restart_limit=1,
    )
    await expect_refused(plugin, fallback.what, "TLS-10")


@case(
    "host/tls/unrequested-certificate",
    requirements=["TLS-11"],
    profile=Profile.HOOKS,
    level=Level.SHOULD,
)
async def unrequested_certificate(t: HostTarget) -> None:
    """
    Purpose: A host that did not ask for AutoMTLS refuses a plugin that sends a certificate
      (a go-plugin client panics on one).
    Procedure: Without AutoMTLS, load a fake whose handshake carries a certificate in field
      6 while it serves plaintext (restart limit 1). Skipped under --auto-mtls always.
    Asserts: The plugin never becomes active and receives no Hooks call; the host reports a
      `crashed` transition of kind tls_error.
    """
    if t.always_auto_mtls:
        skip("--auto-mtls always: every plugin is started with PLUGIN_CLIENT_CERT")
    plugin = await t.load(
        {"tls": {"serve": "plain", "sixth_field": "certificate"}},
        wait_active=False,
        restart_limit=1,
    )
    await expect_refused(plugin, "that sent a certificate the host did not ask for", "TLS-11")
