"""The host mutant matrix: every host case fails against at least one broken host.

Each mutant is the reference host's adapter with one fault switched on, a host that breaks
one rule on purpose (tests/mutants/host_mutant.py). ``HOST_MUTANTS`` says which cases each
must fail; the tests run every mutant against those cases with the real runner (one adapter
per mutant, as `pluginconf host -- python tests/mutants/host_mutant.py FAULT` would), and
check that together the mutants leave no host case unable to fail.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pluginconf.runner.host_session import HostSuiteSession
from pluginconf.runner.model import Outcome
from pluginconf.runner.options import HostSuiteOptions
from pluginconf.runner.registry import load_cases
from pluginconf.runner.targets import target_named
from pluginconf.runner.verdict import Judged, Judging, judge

MUTANT = Path(__file__).resolve().parent / "mutants" / "host_mutant.py"
MIB = 1024 * 1024
# CI runs the heavy transfers at a reduced size; the full suite sends 256 MiB.
HEAVY_BYTES = int(os.environ.get("PLUGINCONF_HEAVY_BYTES", str(256 * MIB)))

sys.path.insert(0, str(MUTANT.parent))
from host_mutant import FAULTS  # noqa: E402


@dataclass(frozen=True)
class HostMutant:
    name: str  # the fault
    breaks: tuple[str, ...]  # case ids (or globs) it must fail
    heavy: bool = False  # runs a heavy case (pytest -m heavy)
    options: dict[str, object] = field(default_factory=dict)  # HostSuiteOptions fields

    @property
    def id(self) -> str:
        return f"{self.name}-heavy" if self.heavy else self.name


# Where a case can only fail by waiting for a plugin to become active that never does, the
# suite's start timeout (which bounds that wait, and the adapter's start) is cut from 30 s.
SHORT_START = {"start_timeout_s": 6}
# Mutants whose cases fail only once a bound of the case has passed (a 30 s flood, a 15 s
# start timeout, a 10 s wait...), longest first: started first, they do not end the run alone.
SLOW = (
    "no-stderr-drain",
    "stderr-drain-stops",
    "no-stdout-drain",
    "stdout-stops-at-long-line",
    "buffers-bodies",
    "never-sigkill",
    "ignores-start-timeout",
    "generic-error-kind",
    "crash-restarts-all",
    "no-health-checks",
)

HOST_MUTANTS = [
    # launching
    HostMutant("inherited-env-wins", ("host/launch/environment",)),
    HostMutant("multiplex-passed", ("host/launch/no-inherited-secrets",)),
    HostMutant("client-cert-passed", ("host/launch/no-inherited-secrets",)),
    HostMutant(
        "environment-passed-through",
        ("host/launch/socket-dir", "host/launch/no-inherited-secrets"),
    ),
    HostMutant("shared-socket-dir", ("host/launch/socket-dir",)),
    HostMutant("no-process-group", ("host/launch/process-group",)),
    HostMutant(
        "generic-error-kind",
        (
            "host/launch/refuses/*",
            "host/launch/exited-before-handshake",
            "host/health/never-serving",
        ),
    ),
    HostMutant("stderr-tail-one-line", ("host/launch/exited-before-handshake",)),
    HostMutant("error-without-line", ("host/launch/refuses/core-version",)),
    HostMutant("refused-left-running", ("host/launch/refuses/app-version",)),
    HostMutant("ignores-start-timeout", ("host/launch/start-timeout",)),
    HostMutant("start-timeout-halved", ("host/launch/start-timeout",)),
    HostMutant("noise-refused", ("host/launch/noise-before-handshake",), options=SHORT_START),
    HostMutant("no-stderr-drain", ("host/launch/stderr-flood/before",)),
    HostMutant("stderr-drain-stops", ("host/launch/stderr-flood/after",)),
    HostMutant("no-stdout-drain", ("host/launch/stdout-flood/*",)),
    HostMutant("stdout-stops-at-long-line", ("host/launch/stdout-flood/long-lines",)),
    HostMutant("tcp-unsupported", ("host/launch/tcp-plugin",), options=SHORT_START),
    HostMutant("mtls-ignored", ("host/launch/mtls",)),
    # health and activation
    HostMutant(
        "calls-before-serving",
        ("host/health/waits-for-serving", "host/dispatch/implemented-first"),
    ),
    HostMutant("checks-empty-service", ("host/health/waits-for-serving",)),
    HostMutant("slow-health-poll", ("host/health/waits-for-serving",)),
    HostMutant("no-health-checks", ("host/health/hung-plugin-restarted",)),
    HostMutant("activation-order-swapped", ("host/dispatch/activation-order",)),
    HostMutant("activation-error-restarts", ("host/dispatch/activation-error",)),
    HostMutant("configuration-error-ignored", ("host/dispatch/configuration-error",)),
    HostMutant("restart-without-configuration", ("host/crash/restart-after-kill",)),
    # hooks
    HostMutant("calls-unimplemented-hooks", ("host/dispatch/unimplemented-never-called",)),
    HostMutant("payload-strings-trimmed", ("host/dispatch/payloads-exact",)),
    HostMutant("app-error-trips-breaker", ("host/dispatch/app-error",)),
    HostMutant("hook-deadline-not-sent", ("host/dispatch/hook-deadline",)),
    HostMutant("configuration-changes-concurrent", ("host/dispatch/configuration-change",)),
    HostMutant(
        "crash-restarts-all", ("host/dispatch/isolation", "host/chaos/kills-during-traffic")
    ),
    HostMutant("fan-out-sequential", ("host/dispatch/fan-out",)),
    HostMutant("notify-waits-longer", ("host/dispatch/fan-out",)),
    HostMutant("timeout-reported-late", ("host/dispatch/hook-deadline",)),
    # filters
    HostMutant("filter-chain-reversed", ("host/filters/chain-order",)),
    HostMutant("keep-takes-response-post", ("host/filters/keep-ignores-post",)),
    HostMutant("reject-does-not-stop", ("host/filters/reject-stops",)),
    HostMutant("filter-fails-closed", ("host/filters/fails-open/*",)),
    # the HTTP front
    HostMutant(
        "content-length-dropped",
        ("host/serve-http/body-exact/0", "host/serve-http/request-fields"),
    ),
    HostMutant(
        "last-body-frame-lost",
        (
            "host/serve-http/body-exact/1",
            "host/serve-http/body-exact/65535",
            "host/serve-http/body-exact/65536",
            "host/serve-http/body-exact/65537",
            "host/serve-http/body-exact/1048577",
            "host/serve-http/body-exact/4194305",
            "host/serve-http/body-exact/16777216",
            "host/serve-http/status-codes/200",
        ),
    ),
    HostMutant(
        # The case is skipped under a smaller --max-body; the 413 comes before any body byte.
        "default-body-limit",
        ("host/serve-http/body-exact/268435456",),
        heavy=True,
        options={"max_body": 256 * MIB},
    ),
    HostMutant("hop-by-hop-forwarded", ("host/serve-http/hop-by-hop",)),
    HostMutant("response-hop-by-hop-forwarded", ("host/serve-http/hop-by-hop",)),
    HostMutant("response-headers-joined", ("host/serve-http/response-headers",)),
    HostMutant(
        "status-always-200",
        tuple(f"host/serve-http/status-codes/{n}" for n in (201, 204, 301, 404, 418, 500, 503)),
    ),
    HostMutant(
        "buffers-bodies",
        (
            "host/serve-http/response-streams",
            "host/serve-http/response-unflushed",
            "host/serve-http/full-duplex",
            "host/serve-http/request-streams",
        ),
    ),
    HostMutant(
        "buffers-bodies",
        ("host/serve-http/bounded-memory",),
        heavy=True,
        options={"max_body": HEAVY_BYTES},
    ),
    HostMutant("client-disconnect-ignored", ("host/serve-http/client-disconnect",)),
    HostMutant("502-becomes-500", ("host/serve-http/crash-before-response",)),
    HostMutant("truncated-as-complete", ("host/serve-http/crash-after-start",)),
    HostMutant("inactive-404", ("host/serve-http/inactive-503",)),
    HostMutant("serve-http-unlisted", ("host/serve-http/not-implemented-404",)),
    HostMutant("serve-http-deadline", ("host/serve-http/no-deadline",)),
    # crashes
    HostMutant("no-restart", ("host/crash/give-up",)),
    HostMutant("exit-unwatched", ("host/crash/detection-within-1s",)),
    HostMutant("exit-zero-is-stop", ("host/crash/exit-zero-is-crash",)),
    HostMutant("exit-noticed-late", ("host/crash/restart-after-kill",)),
    HostMutant("retries-until-deadline", ("host/crash/in-flight-fails-fast",)),
    HostMutant("no-backoff", ("host/crash/backoff",)),
    HostMutant("backoff-too-long", ("host/crash/backoff",)),
    # Under the pluginconf target, a host that declares no supervision fails the one case
    # that says what every host must have; the cases that need supervision are skipped.
    HostMutant("no-supervision", ("host/capabilities/declared",)),
    HostMutant("no-circuit-breaker", ("host/crash/circuit-opens", "host/crash/circuit-503")),
    HostMutant("half-open-lets-all-through", ("host/crash/circuit-half-opens",)),
    HostMutant("deactivate-through-circuit", ("host/crash/circuit-bypass",)),
    # stopping
    HostMutant("no-on-deactivate", ("host/shutdown/sequence",)),
    HostMutant("deactivate-unlisted", ("host/shutdown/no-deactivate-when-not-listed",)),
    HostMutant("never-sigkill", ("host/shutdown/ignores-shutdown-killed",)),
    HostMutant("no-sigterm-step", ("host/shutdown/ignores-shutdown-killed",)),
    HostMutant("stop-waits-tripled", ("host/shutdown/ignores-shutdown-killed",)),
    HostMutant(
        "kills-pid-only",
        (
            "host/launch/refuses/protocol",
            "host/launch/start-timeout",
            "host/crash/reaped",
            "host/shutdown/ignores-shutdown-killed",
        ),
    ),
    HostMutant("socket-dir-kept", ("host/shutdown/no-leaks", "host/crash/reaped")),
]

CASES = load_cases("host")


def _selected(mutant: HostMutant) -> list[str]:
    return [c.id for c in CASES if any(fnmatch.fnmatchcase(c.id, p) for p in mutant.breaks)]


def test_every_host_case_has_a_mutant_that_it_fails():
    covered = {case_id for m in HOST_MUTANTS for case_id in _selected(m)}
    uncovered = [c.id for c in CASES if c.id not in covered]
    assert not uncovered, f"host cases no mutant breaks (they could never fail): {uncovered}"


def test_every_fault_is_in_the_matrix_and_every_pattern_matches():
    named = {m.name for m in HOST_MUTANTS}
    assert named == set(FAULTS), (
        f"faults without a matrix entry: {sorted(set(FAULTS) - named)}; "
        f"entries without a fault: {sorted(named - set(FAULTS))}"
    )
    for mutant in HOST_MUTANTS:
        assert mutant.breaks, f"{mutant.id} lists no case: every fault must fail one"
        for pattern in mutant.breaks:
            assert fnmatch.filter([c.id for c in CASES], pattern), (mutant.name, pattern)
    ids = [m.id for m in HOST_MUTANTS]
    assert len(ids) == len(set(ids)), ids


def test_heavy_cases_run_only_in_heavy_entries():
    heavy = {c.id for c in CASES if c.heavy}
    for mutant in HOST_MUTANTS:
        runs_heavy = bool(heavy & set(_selected(mutant)))
        assert runs_heavy == mutant.heavy, (mutant.id, sorted(heavy & set(_selected(mutant))))


def _params() -> list[object]:
    params = []
    for m in sorted(HOST_MUTANTS, key=lambda m: SLOW.index(m.name) if m.name in SLOW else 99):
        bound = 60 + sum(c.timeout_s for c in CASES if c.id in set(_selected(m)))
        marks = [pytest.mark.timeout(bound)] + ([pytest.mark.heavy] if m.heavy else [])
        params.append(pytest.param(m, id=m.id, marks=marks))
    return params


@pytest.mark.parametrize("mutant", _params())
async def test_host_mutant_fails_its_cases(mutant: HostMutant):
    settings: dict[str, object] = {"start_timeout_s": 30, **mutant.options}
    options = HostSuiteOptions(
        command=(sys.executable, str(MUTANT), mutant.name),
        **settings,  # type: ignore[arg-type]
    )
    cases = [c for c in CASES if c.id in set(_selected(mutant))]
    results = {}
    async with HostSuiteSession(options) as session:
        for case in cases:
            results[case.id] = await session.run(case)
    wrong = {
        case_id: f"{r.outcome}: {r.message[:600]}"
        for case_id, r in results.items()
        if r.outcome is not Outcome.FAILED
    }
    assert not wrong, f"host mutant {mutant.name} should fail these cases, but: {wrong}"


# -- verdicts under targets ------------------------------------------------------------------
# A host built on go-plugin's client is judged by go-plugin's rules (--target go-plugin): a
# mutant that breaks only a rule of pluginconf's own is a recommendation not met there, one
# that breaks a go-plugin (or Mattermost) rule still fails, and a case that needs a feature
# the host declares it lacks is skipped with the reason.


@dataclass(frozen=True)
class TargetVerdict:
    faults: tuple[str, ...]
    case_id: str
    pluginconf: Outcome  # the reported outcome under the default target
    go_plugin: Outcome  # ... and under --target go-plugin
    violated: frozenset[str]  # what the failure names, under either target
    message: str = ""  # under --target go-plugin, in the reported message


def _verdict(faults: str, case_id: str, pc: Outcome, gp: Outcome, *ids: str, message: str = ""):
    return TargetVerdict(tuple(faults.split("+")), case_id, pc, gp, frozenset(ids), message)


F, N, S = Outcome.FAILED, Outcome.NOT_MET, Outcome.SKIPPED
TARGET_VERDICTS = [
    # Rules of pluginconf's own: go-plugin's client breaks them too.
    _verdict("noise-refused", "host/launch/noise-before-handshake", F, N, "HS-24"),
    _verdict("no-sigterm-step", "host/shutdown/ignores-shutdown-killed", F, N, "SV-22"),
    _verdict("kills-pid-only", "host/launch/refuses/protocol", F, N, "HS-25"),
    _verdict("kills-pid-only", "host/crash/reaped", F, N, "SV-16"),
    _verdict("generic-error-kind", "host/launch/refuses/garbage", F, N, "HS-25"),
    _verdict("filter-chain-reversed", "host/filters/chain-order", F, N, "FL-8"),
    _verdict("stdout-stops-at-long-line", "host/launch/stdout-flood/long-lines", F, N, "IO-10"),
    _verdict("environment-passed-through", "host/launch/socket-dir", F, N, "HS-4"),
    _verdict(
        "environment-passed-through", "host/launch/no-inherited-secrets", F, N, "HS-23", "HS-7"
    ),
    # go-plugin's rules (and Mattermost's, which the hooks layer follows).
    _verdict("never-sigkill", "host/shutdown/ignores-shutdown-killed", F, F, "SV-14"),
    _verdict("inherited-env-wins", "host/launch/environment", F, F, "HS-6"),
    _verdict("no-stdout-drain", "host/launch/stdout-flood/short-lines", F, F, "IO-9"),
    _verdict("no-on-deactivate", "host/shutdown/sequence", F, F, "SV-21"),
    _verdict("error-without-line", "host/launch/refuses/core-version", F, F, "HS-22"),
    _verdict("refused-left-running", "host/launch/refuses/app-version", F, F, "HS-20"),
    # Every assertion of a refusal is reported, each with its rule.
    _verdict(
        "generic-error-kind+error-without-line+refused-left-running",
        "host/launch/refuses/protocol",
        F,
        F,
        "HS-20",
        "HS-22",
        "HS-25",
    ),
    # Missing capabilities: the case cannot check what it is about.
    _verdict(
        "no-supervision",
        "host/crash/restart-after-kill",
        S,
        S,
        message="the host declares no restarts of crashed plugins (HostCapabilities.restarts)",
    ),
    _verdict("no-supervision", "host/crash/exit-zero-is-crash", S, S),
    _verdict(
        "no-supervision",
        "host/capabilities/declared",
        F,
        S,
        "SV-7",
        "SV-8",
        "SV-9",
        "SV-10",
        "SV-11",
        "SV-12",
        "SV-13",
        message="the host declares no restarts of crashed plugins",
    ),
]


# Cases that run differently under the two targets (not only judged differently): each
# target gets a run of its own for them.
PER_TARGET_CASES = {"host/capabilities/declared"}


def _target_params() -> list[object]:
    by_faults: dict[tuple[str, ...], list[TargetVerdict]] = {}
    for verdict in TARGET_VERDICTS:
        by_faults.setdefault(verdict.faults, []).append(verdict)
    return [
        pytest.param(faults, verdicts, id="+".join(faults))
        for faults, verdicts in by_faults.items()
    ]


def _problems(verdict: TargetVerdict, target: str, judged: Judged) -> list[str]:
    wanted = verdict.go_plugin if target == "go-plugin" else verdict.pluginconf
    problems = []
    if judged.outcome is not wanted:
        problems.append(f"reported {judged.outcome} under {target}, expected {wanted}")
    if wanted is not Outcome.SKIPPED and not verdict.violated <= set(judged.violated):
        problems.append(f"breaks {judged.violated}, expected {sorted(verdict.violated)}")
    if target == "go-plugin" and verdict.message not in judged.message:
        problems.append(f"the message lacks {verdict.message!r}")
    return problems


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("faults", "verdicts"), _target_params())
async def test_a_broken_host_is_judged_by_the_rules_of_its_target(
    faults: tuple[str, ...], verdicts: list[TargetVerdict]
):
    """Each case runs once, under --target go-plugin, and its result is judged as both
    targets would judge it: the targets differ in which origins decide, not in what the
    cases do (but for PER_TARGET_CASES, which run under each target)."""
    by_id = {c.id: c for c in CASES}
    wrong = {}
    runs = [("go-plugin", [v for v in verdicts if v.case_id not in PER_TARGET_CASES], True)]
    per_target = [v for v in verdicts if v.case_id in PER_TARGET_CASES]
    if per_target:
        runs += [("go-plugin", per_target, False), ("pluginconf", per_target, False)]
    for target, chosen, judge_both in runs:
        if not chosen:
            continue
        options = HostSuiteOptions(
            command=(sys.executable, str(MUTANT), *faults),
            start_timeout_s=30,
            target=target_named(target),
        )
        async with HostSuiteSession(options) as session:
            for verdict in chosen:
                case = by_id[verdict.case_id]
                result = await session.run(case)
                judgings = {target: options.judging}
                if judge_both:
                    judgings["pluginconf"] = Judging()
                for name, judging in judgings.items():
                    judged = judge(case, result.outcome, result.message, result.violated, judging)
                    problems = _problems(verdict, name, judged)
                    if problems:
                        wrong[f"{case.id} ({name})"] = (
                            "; ".join(problems) + f"\n{judged.message[:1500]}"
                        )
    assert not wrong, wrong


async def test_a_host_passing_its_environment_through_fails_only_the_cases_about_it():
    """One cause, one case: the decoys only a pluginconf host must scrub reach only the hosts
    of the cases that check them, so a host that passes its environment through to plugins,
    as go-plugin's client does, fails those and no other; under --target go-plugin they are
    recommendations not met."""
    options = HostSuiteOptions(
        command=(sys.executable, str(MUTANT), "environment-passed-through"),
        start_timeout_s=30,
        target=target_named("go-plugin"),
    )
    launch = [c for c in CASES if c.id.startswith("host/launch/")]
    outcomes = {}
    async with HostSuiteSession(options) as session:
        for case in launch:
            result = await session.run(case)
            judged = judge(case, result.outcome, result.message, result.violated, options.judging)
            outcomes[case.id] = judged.outcome
    not_passed = {k: v for k, v in outcomes.items() if v is not Outcome.PASSED}
    assert not_passed == {
        "host/launch/socket-dir": Outcome.NOT_MET,
        "host/launch/no-inherited-secrets": Outcome.NOT_MET,
    }
