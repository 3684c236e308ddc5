"""The host mutants judged under both targets: the outcome each case comes to, and what it names.

A host built on go-plugin's client is judged by go-plugin's rules (--target go-plugin): a
mutant that breaks only a rule of pluginconf's own is a recommendation not met there, one
that breaks a go-plugin (or Mattermost) rule still fails, and a case that needs a feature
the host declares it lacks is skipped with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from pluginconf.runner.model import Outcome


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
    _verdict("error-without-line", "host/launch/refuses/core-version", F, N, "HS-27"),
    # Mattermost calls Implemented with no health check first: HL-6 is pluginconf's.
    _verdict("calls-before-serving", "host/dispatch/implemented-first", F, N, "HL-6"),
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
    _verdict("refused-left-running", "host/launch/refuses/app-version", F, F, "HS-20"),
    _verdict("version-mismatch-unexplained", "host/launch/refuses/app-version", F, F, "HS-22"),
    # Every assertion of a refusal is reported, each with its rule.
    _verdict(
        "generic-error-kind+error-without-line+refused-left-running",
        "host/launch/refuses/protocol",
        F,
        F,
        "HS-20",
        "HS-25",
        "HS-27",
    ),
    # Field 6: go-plugin's own rule (HS-19) fails under both; pluginconf's TLS-10 is a
    # recommendation under go-plugin's targets.
    _verdict("six-fields-need-certificate", "host/handshake/empty-sixth-field", F, F, "HS-19"),
    _verdict("mtls-plaintext-fallback", "host/tls/no-plaintext-fallback/empty", F, N, "TLS-10"),
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
