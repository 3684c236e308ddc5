"""The mutant matrix: every plugin case fails against at least one broken plugin.

Each mutant is a plugin that breaks one rule on purpose: the reference plugin with a fault
switched on (tests/mutants/reference_mutant.py) or a fake-interpreter scenario
(fake_interpreters/README.md). ``BREAKS`` says which cases each must fail; the tests run every
mutant against those cases with the real runner, and check that together the mutants leave no
case unable to fail.
"""

from __future__ import annotations

import fnmatch
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pluginconf.runner.engine import SuiteSession
from pluginconf.runner.model import Outcome, Profile
from pluginconf.runner.options import PluginSuiteOptions
from pluginconf.runner.registry import load_cases

ROOT = Path(__file__).resolve().parent.parent
MUTANT = Path(__file__).resolve().parent / "mutants" / "reference_mutant.py"
FAKEPLUGIN = ROOT / "fake_interpreters" / "fakeplugin"

sys.path.insert(0, str(MUTANT.parent))
from reference_mutant import FAULTS  # noqa: E402


@dataclass(frozen=True)
class Mutant:
    name: str
    breaks: tuple[str, ...]  # case ids (or globs) it must fail
    scenario: dict[str, object] | None = None  # a fakeplugin scenario instead of a fault
    options: dict[str, object] = field(default_factory=dict)

    def command(self, tmp_path: Path) -> tuple[str, ...]:
        if self.scenario is None:
            return (sys.executable, str(MUTANT), self.name, "--state-dir", str(tmp_path))
        path = tmp_path / f"{self.name}.json"
        path.write_text(json.dumps(self.scenario))
        return (sys.executable, str(FAKEPLUGIN), str(path))


MUTANTS = [
    # transport
    Mutant("handshake-crlf", ("plugin/handshake/line-format",)),
    Mutant(
        "noise-before-handshake",
        ("plugin/handshake/first-bytes",),
        scenario={"noise_before_handshake": ["starting up..."]},
    ),
    Mutant("listen-after-handshake", ("plugin/handshake/serving-at-handshake",)),
    Mutant("ignore-cookie", ("plugin/handshake/magic-cookie-*",)),
    Mutant(
        "version-lowest",
        ("plugin/handshake/version-negotiation",),
        options={"protocol_versions": (1, 2)},
    ),
    Mutant("version-exit-none-common", ("plugin/handshake/version-none-common",)),
    Mutant("version-invalid-fatal", ("plugin/handshake/version-invalid-entries",)),
    Mutant("socket-outside-dir", ("plugin/transport/unix-socket-dir",)),
    Mutant("socket-world-accessible", ("plugin/transport/unix-socket-mode",)),
    Mutant("tcp", ("plugin/transport/prefers-unix",)),
    Mutant(
        "tcp-ignore-port-range",
        ("plugin/transport/tcp-port-range", "plugin/transport/tcp-bad-port-range"),
    ),
    Mutant("exit-without-cleanup", ("plugin/transport/socket-removed",)),
    Mutant(
        "receive-limit-1mib",
        ("plugin/transport/accepts-4mib-messages", "plugin/hooks/payload-large"),
    ),
    Mutant("mtls-ignored", ("plugin/mtls/handshake-certificate", "plugin/mtls/refuses-plaintext")),
    Mutant("mtls-fixed-key", ("plugin/mtls/fresh-key-per-process",)),
    Mutant("mtls-no-client-auth", ("plugin/mtls/refuses-*-certificate",)),
    Mutant("mtls-bad-cert-ignored", ("plugin/mtls/unusable-client-certificate",)),
    Mutant("mtls-tls-1.0", ("plugin/mtls/tls-1.2-or-later",)),
    Mutant("mtls-p521", ("plugin/mtls/p256-key",)),
    Mutant("not-serving", ("plugin/health/serving",), scenario={"health": "NOT_SERVING"}),
    Mutant("health-any-service", ("plugin/health/unknown-service",)),
    Mutant(
        "ignore-shutdown",
        (
            "plugin/controller/shutdown",
            "plugin/controller/sigterm",
            "plugin/controller/exit-status",
            "plugin/transport/socket-removed",
        ),
        scenario={"ignore_shutdown": True},
    ),
    Mutant("exit-status-1", ("plugin/controller/exit-status",)),
    Mutant("sigint-exits", ("plugin/controller/sigint-ignored",)),
    Mutant("ignore-host-exit", ("plugin/controller/host-exit",)),
    Mutant(
        "grandchild",
        ("plugin/controller/no-orphans",),
        scenario={"spawn_grandchild": {"seconds": 60}},
    ),
    Mutant("no-stdio", ("plugin/stdio/served",)),
    Mutant("broker-ends-on-unusable", ("plugin/broker/unusable-announcements",)),
    # hooks
    Mutant("implemented-lie", ("plugin/hooks/implemented-consistent",)),
    Mutant("implemented-duplicates", ("plugin/hooks/implemented-stable",)),
    Mutant("exit-on-deactivate", ("plugin/hooks/lifecycle-sequence",)),
    Mutant("exception-escapes", ("plugin/hooks/payload-empty",)),
    Mutant("crash-on-non-bmp", ("plugin/hooks/payload-unicode",)),
    Mutant("oversize-answer", ("plugin/hooks/message-limit",)),
    Mutant(
        "serialized-calls",
        ("plugin/hooks/concurrent-calls", "plugin/sdk/concurrency/32-streams"),
    ),
    Mutant("rpc-limit", ("plugin/hooks/health-under-load",)),
    Mutant("fd-leak", ("plugin/hooks/endurance",)),
    Mutant("body-before-init", ("plugin/serve-http/framing",)),
    # the conformance plugin's behaviours
    Mutant("no-posts-hook", ("plugin/sdk/implemented-all",)),
    Mutant("filter-broken", ("plugin/sdk/filter/*",)),
    Mutant("command-strips", ("plugin/sdk/commands/echo",)),
    Mutant("unknown-command-crashes", ("plugin/sdk/commands/unknown",)),
    Mutant("lifecycle-unlogged", ("plugin/sdk/commands/lifecycle",)),
    Mutant("config-unsorted", ("plugin/sdk/commands/posts-and-config",)),
    Mutant("kv-local", ("plugin/sdk/hostapi/kv",)),
    Mutant("log-dropped", ("plugin/sdk/hostapi/log-and-config",)),
    Mutant("broker-no-wait", ("plugin/sdk/hostapi/late-announcement",)),
    Mutant("no-hostapi-crashes", ("plugin/sdk/hostapi/no-broker",)),
    Mutant("stdio-swapped", ("plugin/sdk/stdio/capture",)),
    Mutant("stdio-replayed", ("plugin/sdk/stdio/single-delivery",)),
    Mutant("no-grace", ("plugin/sdk/controller/grace",)),
    Mutant(
        "echo-flip-65536",
        (
            "plugin/sdk/echo/65537",
            "plugin/sdk/echo/271828",
            "plugin/sdk/echo/314159",
            "plugin/sdk/echo/16777216",
            "plugin/sdk/echo/max-body",
        ),
    ),
    Mutant("echo-appends-newline", ("plugin/sdk/echo/*",)),
    Mutant("bytes-extra-byte", ("plugin/sdk/bytes/*",)),
    Mutant(
        "oversize-frames",
        ("plugin/sdk/limits/message-size", "plugin/sdk/limits/frame-size"),
    ),
    Mutant(
        "echo-buffers",
        ("plugin/sdk/streaming/response-before-request-end", "plugin/sdk/memory/echo-max-body"),
    ),
    Mutant("flush-ignored", ("plugin/sdk/streaming/flush",)),
    Mutant("disconnect-swallowed", ("plugin/sdk/cancel/reaches-handler",)),
    Mutant("half-close-is-end", ("plugin/sdk/cancel/half-close-without-end",)),
    Mutant("first-header-value", ("plugin/sdk/headers/request-multi-valued",)),
    Mutant("path-decoded", ("plugin/sdk/headers/request-line",)),
    Mutant("headers-ungrouped", ("plugin/sdk/headers/response-multi-valued",)),
    Mutant("status-off-by-one", ("plugin/sdk/status/*",)),
    Mutant("handler-error-as-status", ("plugin/sdk/errors/before-response",)),
    Mutant("truncation-hidden", ("plugin/sdk/errors/after-response-started",)),
    Mutant("delay-ignored", ("plugin/sdk/routes/sha256-and-delay",)),
]

CASES = load_cases("plugin")


def _selected(mutant: Mutant) -> list[str]:
    return [c.id for c in CASES if any(fnmatch.fnmatchcase(c.id, p) for p in mutant.breaks)]


def test_every_case_has_a_mutant_that_it_fails():
    covered = {case_id for m in MUTANTS for case_id in _selected(m)}
    uncovered = [c.id for c in CASES if c.id not in covered]
    assert not uncovered, f"cases no mutant breaks (they could never fail): {uncovered}"


def test_every_fault_is_in_the_matrix_and_every_pattern_matches():
    named = {m.name for m in MUTANTS if m.scenario is None}
    assert named == set(FAULTS), (
        f"faults without a matrix entry: {sorted(set(FAULTS) - named)}; "
        f"entries without a fault: {sorted(named - set(FAULTS))}"
    )
    for mutant in MUTANTS:
        for pattern in mutant.breaks:
            assert fnmatch.filter([c.id for c in CASES], pattern), (mutant.name, pattern)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
async def test_mutant_fails_its_cases(mutant, tmp_path):
    options = PluginSuiteOptions(
        command=mutant.command(tmp_path),
        profile=Profile.SDK,
        start_timeout_s=30,
        **mutant.options,  # type: ignore[arg-type]
    )
    cases = [c for c in CASES if c.id in set(_selected(mutant))]
    results = {}
    async with SuiteSession(options) as session:
        for case in cases:
            results[case.id] = await session.run(case)
    wrong = {
        case_id: f"{r.outcome}: {r.message[:300]}"
        for case_id, r in results.items()
        if r.outcome is not Outcome.FAILED
    }
    assert not wrong, f"{mutant.name} should fail these cases, but: {wrong}"
