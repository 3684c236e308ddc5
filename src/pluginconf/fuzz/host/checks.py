"""The SPEC's rules on what a host reported, as pure functions of transitions and events.

They judge transitions (SV-1, SV-2), restarts (SV-8, SV-9), process starts, configuration
changes (LC-3) and activation order (HK-1, LC-1), and return the problems found, so that
they can be tested on histories written by hand.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from pluginconf.control import control_pb2
from pluginconf.fuzz.host.bounds import CLOCK_SLACK_S
from pluginconf.fuzz.strategies.host import Policy, shown
from pluginconf.host.supervision.states import TRANSITIONS
from pluginconf.runner.host.fake_plugin import describe_error
from pluginconf.runner.host.observer import Observed, received
from pluginconf.v1 import hooks_pb2

Status = control_pb2.PluginStatus
Transition = control_pb2.Transition


# A running process's end, as the host may report it (SV-3, SV-7).
RUNNING_CRASH_KINDS = frozenset({"unexpected_exit", "health_check_failed"})
# How a call the plugin never answers may fail: at its deadline (HK-11), through an open
# circuit (SV-11), or with the process gone (SV-5, RR-3).
HUNG_CALL_KINDS = frozenset({"timeout", "circuit_open", "plugin_unavailable"})
# The transitions that enable a plugin (the starting of SV-1 after none, stopped or failed).
ENABLED_FROM = ("", "stopped", "failed")


@dataclass(frozen=True)
class ConfigChange:
    """A configuration sent (monotonic times), and whether the host said it was applied."""

    sent: float
    done: float
    configuration: Mapping[str, str]
    accepted: bool


def acceptable_configurations(
    changes: Sequence[ConfigChange], at: float
) -> list[Mapping[str, str]]:
    """The configurations a process activated at ``at`` may be given (LC-1: the complete
    current one). A change the host accepted before ``at`` replaces those that ended before
    it was sent; one sent meanwhile may have been applied after it, and one that was
    refused, or still pending at ``at``, may be current too."""
    candidates: list[ConfigChange] = []
    for change in changes:  # in the order sent
        if change.sent > at:
            break
        if change.accepted and change.done < at:
            candidates = [c for c in candidates if c.done > change.sent]
        candidates.append(change)
    return [c.configuration for c in candidates]


def post_key(post: hooks_pb2.Post) -> bytes:
    """A post's identity for comparison (map entries in order)."""
    return post.SerializeToString(deterministic=True)


def describe_step(step: control_pb2.FilterStep) -> str:
    return (
        f"{step.outcome} ({describe_error(step.error)})" if step.HasField("error") else step.outcome
    )


# -- SPEC checks on what the host reported -----------------------------------------------------


def transition_problems(status: Status) -> list[str]:
    """SV-1, SV-2: each transition is in the table, follows the one before, is dated in
    order, and a crash or failure names its error kind. The fakes answer no activation
    AppError, so `starting -> failed` (LC-4, LC-7) is wrong here too."""
    problems = []
    previous, previous_wall = "", 0.0
    for i, t in enumerate(status.transitions):
        move = f"transition {i} ({t.old_state or '(none)'} -> {t.new_state})"
        if t.old_state != previous:
            problems.append(
                f"{move} leaves {t.old_state!r}, but the plugin was {previous!r} (SV-2)"
            )
        if (t.old_state, t.new_state) not in TRANSITIONS:  # SV-1's table
            problems.append(f"{move} is not a transition of the SPEC's table (SV-1)")
        elif (t.old_state, t.new_state) == ("starting", "failed"):
            problems.append(
                f"{move}: only an activation AppError fails a start for good (LC-4, LC-7), "
                "and these fakes answer none"
            )
        if t.new_state in ("crashed", "failed") and not t.error_kind:
            problems.append(f"{move} carries no error kind (SV-2)")
        if t.wall_time + CLOCK_SLACK_S < previous_wall:
            problems.append(f"{move} is dated before the transition it follows (SV-2)")
        previous, previous_wall = t.new_state, t.wall_time
    if status.transitions and status.state != previous:
        problems.append(
            f"the state is {status.state!r}, but the last transition entered {previous!r}"
        )
    return problems


def _failures(
    transitions: Sequence[Transition], index: int, window_s: float, cleared_by: Collection[str]
) -> int:
    """Crashes within ``window_s`` up to transition ``index`` (a crash), counting back to
    the last start after one of ``cleared_by`` (the history a host keeps, SV-9)."""
    at = transitions[index].wall_time
    count = 0
    for t in reversed(transitions[: index + 1]):
        if t.new_state == "starting" and t.old_state in cleared_by:
            break
        if t.new_state == "crashed" and at - t.wall_time <= window_s:
            count += 1
    return count


def restart_problems(
    transitions: Sequence[Transition], policy: Policy, enables: Sequence[float]
) -> list[str]:
    """SV-8, SV-9, SV-1: after each crash the host restarts unless the crashes within the
    window reached the limit, gives up (`failed`, restart_limit) when they did, and a plugin
    leaves `stopped` or `failed` only when enabled.

    Whether disabling clears the failure history the SPEC leaves open, so a crash must lead
    to `failed` when the crashes since the last enable reach the limit, and may lead to it
    when those since the last start from `failed` (or the first) do."""
    problems = []
    window, limit = policy.restart_window_s, policy.restart_limit
    for i, t in enumerate(transitions):
        if t.new_state == "starting" and t.old_state in ENABLED_FROM:
            since = transitions[i - 1].wall_time if i else -math.inf
            if not any(since - CLOCK_SLACK_S <= e <= t.wall_time + CLOCK_SLACK_S for e in enables):
                problems.append(
                    f"transition {i} ({t.old_state or '(none)'} -> starting) came without an "
                    f"EnablePlugin: a plugin leaves {t.old_state or 'loaded'!r} only when "
                    "enabled (SV-1, SV-9)"
                )
        if t.new_state != "crashed" or i + 1 >= len(transitions):
            continue
        after = transitions[i + 1]
        certain = _failures(transitions, i, window - CLOCK_SLACK_S, ENABLED_FROM)
        possible = _failures(transitions, i, window + CLOCK_SLACK_S, ("", "failed"))
        if after.new_state == "restarting" and certain >= limit:
            problems.append(
                f"the crash of transition {i} is failure {certain} within {window:g}s "
                f"(restart_limit {limit}, restart_window {window:g}s): the host must put the "
                "plugin in `failed` (SV-9); it restarted it"
            )
        if after.new_state == "failed":
            if after.error_kind != "restart_limit":
                problems.append(
                    f"after the crash of transition {i} the plugin entered `failed` with error "
                    f"kind {after.error_kind!r}; giving up is reported as 'restart_limit' (SV-9)"
                )
            if possible < limit:
                problems.append(
                    f"the host gave up after the crash of transition {i}, failure {possible} "
                    f"within {window:g}s; with restart_limit {limit} it must restart the "
                    "plugin (SV-8, SV-9)"
                )
    return problems


def _state_at(transitions: Sequence[Transition], wall: float) -> str:
    state = "loaded"
    for t in transitions:
        if t.wall_time > wall:
            break
        state = t.new_state
    return state


def start_problems(transitions: Sequence[Transition], started: Sequence[Observed]) -> list[str]:
    """SV-1: a process starts only while its plugin is `starting`, one per start."""
    spans = [
        (t.wall_time, transitions[i + 1].wall_time if i + 1 < len(transitions) else math.inf, i)
        for i, t in enumerate(transitions)
        if t.new_state == "starting"
    ]
    problems = []
    per_start: dict[int, list[int]] = {}
    for event in started:
        if not any(lo - CLOCK_SLACK_S <= event.wall <= hi + CLOCK_SLACK_S for lo, hi, _ in spans):
            problems.append(
                f"process {event.pid} started when the plugin was "
                f"{_state_at(transitions, event.wall)!r}, not `starting`: processes start only "
                "when the plugin is enabled or restarted (SV-1, SV-9)"
            )
        inside = [i for lo, hi, i in spans if lo <= event.wall <= hi]
        if len(inside) == 1:
            per_start.setdefault(inside[0], []).append(event.pid)
    for index, pids in per_start.items():
        if len(pids) > 1:
            problems.append(
                f"processes {pids} all started during the one start of transition {index}; "
                "a start is one process (SV-1)"
            )
    return problems


def overlapping_changes(events: Sequence[Observed]) -> list[tuple[Observed, Observed]]:
    """Pairs of OnConfigurationChange calls to one process where the second arrived before
    the first had ended, from a fake's call and call_end events."""
    in_progress: dict[int, Observed] = {}
    pairs = []
    for event in sorted(events, key=lambda e: (e.pid, e.seq)):
        if event.get("hook") != "OnConfigurationChange":
            continue
        first = in_progress.get(event.pid)
        if event.event == "call":
            if first is not None:
                pairs.append((first, event))
            in_progress[event.pid] = event
        elif (
            event.event == "call_end"
            and first is not None
            and first.get("call") == event.get("call")
        ):
            del in_progress[event.pid]
    return pairs


def lifecycle_problems(
    calls: Sequence[Observed], configurations: Sequence[ConfigChange], pid: int
) -> list[str]:
    """HK-1, LC-1: the active process ``pid`` got Implemented first (its hook ``calls``), then
    OnConfigurationChange with the complete current configuration (of those sent,
    ``configurations``), then OnActivate."""
    hooks = [str(c.get("hook")) for c in calls]
    if not hooks or hooks[0] != "Implemented" or hooks.count("Implemented") != 1:
        return [
            f"process {pid} is active; its hook calls began {hooks[:4]}, Implemented must come "
            "first and once (HK-1)"
        ]
    lifecycle = [c for c in calls if c.get("hook") != "Implemented"][:2]
    if [c.get("hook") for c in lifecycle] != ["OnConfigurationChange", "OnActivate"]:
        return [
            f"process {pid} is active; after Implemented its hook calls began {hooks[1:4]}; "
            "expected OnConfigurationChange then OnActivate (LC-1)"
        ]
    got = dict(received(lifecycle[0], hooks_pb2.OnConfigurationChangeRequest).configuration)
    ok = acceptable_configurations(configurations, lifecycle[0].monotonic)
    if got not in [dict(c) for c in ok]:
        return [
            f"process {pid} was activated with the configuration {shown(got)}; the complete "
            f"current configuration was {shown(dict(ok[-1]) if ok else {})} (LC-1, LC-3, HK-14)"
        ]
    return []


def hung_notification_problem(results: Sequence[control_pb2.NotifyResult]) -> str | None:
    """A plugin that never answers MessageHasBeenPosted has one result, failed as a hung
    call does (NT-1, HK-11, SV-11)."""
    kinds = [r.error.kind if r.HasField("error") else "ok" for r in results]
    if len(kinds) == 1 and kinds[0] in HUNG_CALL_KINDS:
        return None
    return (
        f"its results were {kinds}; a plugin that never answers the notification has one, "
        f"failed with one of {sorted(HUNG_CALL_KINDS)} (NT-1, HK-11, SV-11)"
    )
